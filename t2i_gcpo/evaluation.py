"""Held-out evaluation of a policy: sample every prompt, score the images with the training
reward and with a judge, and measure where GCPO's credit falls.

Every prompt is sampled `samples_per_prompt` times from a generator seeded with `seed`, in
chunks of `batch_prompts` prompts, guided against the null prompt (so the null branch's
log-probs come with the samples). Reported, each the mean over the images it is defined on:

    reward/mean, reward/<name>        the reward (a reward_models.CombinedReward) and its parts
    oracle/<tag>, oracle/all          the judge's accuracy per prompt category (metadata "tag")
                                      and over all images
    oracle/geneval                    the mean of the per-category accuracies (GenEval's score)
    objects/extra                     objects the judge found beyond those the prompt asks for,
                                      an image (GenEval prompts, judges whose verdicts give
                                      details["found"]): GenEval's rules ignore them outside
                                      counting, so a policy trained on them learns to scatter
                                      objects, and this is where it shows
    credit/<negative>/object_auroc    AUROC of the credit for the tokens of the objects the judge
                                      found against the other tokens (0.5 = chance, 1 = perfect)
    credit/<negative>/precision_at_k  the share of object tokens among the K highest-credit
    credit/<negative>/chance_at_k     tokens (K = the number of object tokens), and its chance
    credit/<negative>/localization    credit inside the objects over their area share (1 = uniform)
    credit/<negative>/blame_auroc     the blame test: right images with one named object redrawn
                                      wrongly in place (by a judge with `wrong_version`), scored
                                      again; AUROC of the credit for the redrawn tokens
    credit/<negative>/blame_first_auroc  the same for the first redrawn token in raster order
                                      alone, against the untouched tokens: where the wrong
                                      object is decided (a policy that copies the rest of
                                      an object from it credits little else)

`<negative>` is one of NEGATIVE_VIEWS: "null" (the CFG null prompt), "caption" (each record's
negative caption), "attribute" (a GenEval record with one class, colour or count changed, or
two colours swapped) and "position" (the relation changed or the two objects swapped; position
prompts only). The credit is `preset`'s (GCPO's for a preset with uniform credit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch

from reward_models import Judge, RewardError, Verdict, WrongVersions
from t2i_gcpo.algos import (
    GCPO,
    AlgorithmPreset,
    credit_preset,
    localization_ratio,
    patch_coverage,
    precision_at_k,
    token_auroc,
)
from t2i_gcpo.data import PromptRecord
from t2i_gcpo.data.geneval import is_geneval, objects_asked
from t2i_gcpo.data.negatives import NEGATIVE_VIEWS, attribute_caption, prompts_vocabulary
from t2i_gcpo.logging_utils import short_names
from t2i_gcpo.policies import Policy, Rollout, score_tokens


def sampled_batches(
    policy: Policy,
    records: Sequence[PromptRecord],
    samples_per_prompt: int,
    cfg_scale: float,
    batch_prompts: int = 16,
    seed: int = 0,
) -> Iterator[tuple[list[PromptRecord], Rollout, torch.Tensor, list[dict]]]:
    """Sample every record `samples_per_prompt` times: yields (the chunk's records, rollout,
    images (N, 3, H, W), the N samples' metadata)."""
    generator = torch.Generator(device=policy.device).manual_seed(seed)
    for start in range(0, len(records), batch_prompts):
        chunk = list(records[start : start + batch_prompts])
        rollout = policy.sample(
            [r.prompt for r in chunk],
            samples_per_prompt=samples_per_prompt,
            cfg_scale=cfg_scale,
            generator=generator,
        )
        metadata = [chunk[i].metadata for i in rollout.prompt_index.tolist()]
        yield chunk, rollout, policy.decode(rollout.tokens), metadata


def verdict_coverage(verdicts: Sequence[Verdict], grid: tuple[int, int]) -> torch.Tensor:
    """N verdicts -> (N, T): the share of each token's patch covered by the found objects."""
    rows = []
    for verdict in verdicts:
        masks = verdict.masks
        union = masks.any(dim=0) if len(masks) else torch.zeros(masks.shape[-2:], dtype=bool)
        rows.append(patch_coverage(union, grid).flatten())
    return torch.stack(rows)


def judge_images(
    judge: Judge, images: torch.Tensor, prompts: list[str], metadata: list[dict]
) -> list[Verdict]:
    """The judge's verdicts, any error re-raised as a RewardError that says what to change."""
    try:
        return judge.judge(images, prompts, metadata)
    except Exception as err:
        raise RewardError(
            f"the judge {getattr(judge, 'name', type(judge).__name__)!r} cannot judge these "
            f"prompts ({type(err).__name__}: {err}); give prompts with the metadata it reads, "
            "or no judge"
        ) from err


def view_negatives(
    records: Sequence[PromptRecord], view: str, vocab: tuple[list, list], seed: int
) -> list[str | None] | None:
    """One caption per record for a negative view, None for a record it does not apply to;
    None (not a list) for the null view."""
    if view not in NEGATIVE_VIEWS:
        raise ValueError(f"negative view {view!r}; expected one of {tuple(NEGATIVE_VIEWS)}")
    if view == "null":
        return None
    if view == "caption":
        return [r.negative_prompt for r in records]
    kinds = NEGATIVE_VIEWS[view]
    return [
        attribute_caption(r, *vocab, seed, kinds) if is_geneval(r.metadata) else None
        for r in records
    ]


def credit_figures(credit: torch.Tensor, coverage: torch.Tensor) -> dict[str, torch.Tensor]:
    """Credit (N, T) against the found objects' coverage (N, T) -> per-sample figures (N,)."""
    objects = coverage > 0
    precision, chance = precision_at_k(credit, objects)
    return {
        "object_auroc": token_auroc(credit, objects),
        "precision_at_k": precision,
        "chance_at_k": chance,
        "localization": localization_ratio(credit, coverage),
    }


def view_logprobs(
    policy: Policy,
    prompts: list[str],
    tokens: torch.Tensor,
    captions: list[str | None] | None,
    recorded: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs (N, T) of rows of tokens under a view's negative (one caption per row, None
    where the view does not apply; `captions=None`: the null prompt, taken from `recorded` when
    given), and the rows (N,) bool where the view applies."""
    if captions is None:
        rows = torch.ones(len(prompts), dtype=torch.bool)
        logp = recorded if recorded is not None else score_tokens(policy, prompts, tokens, "null")
        return logp.float(), rows
    rows = torch.tensor([c is not None for c in captions], dtype=torch.bool)
    filled = [c if c is not None else p for c, p in zip(captions, prompts, strict=True)]
    return score_tokens(policy, prompts, tokens, filled), rows


def wrong_images(
    policy: Policy,
    judge: WrongVersions,
    rollout: Rollout,
    images: torch.Tensor,
    verdicts: Sequence[Verdict],
    metadata: Sequence[dict],
    seed: int,
) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """The blame test's samples: for each right image the judge can make wrong in one place,
    (its sample index, its tokens with the redrawn ones spliced in (M, T), which tokens were
    replaced (M, T) bool)."""
    index, rows, moved = [], [], []
    prompts = rollout.sample_prompts
    for i, verdict in enumerate(verdicts):
        if not verdict.correct:
            continue
        edited = judge.wrong_version(images[i], prompts[i], metadata[i], seed + i)
        if edited is None:
            continue
        tokens = policy.encode(edited[None])[0].to(rollout.tokens.device)
        changed = tokens != rollout.tokens[i]
        if changed.any():
            index.append(i)
            rows.append(tokens)
            moved.append(changed.cpu())
    if not index:
        empty = torch.zeros(0, rollout.tokens.shape[1])
        return [], empty.long(), empty.bool()
    return index, torch.stack(rows), torch.stack(moved)


def first_tokens(moved: torch.Tensor) -> torch.Tensor:
    """moved (M, T) bool -> (M, T) bool: each row's first True (in raster order) alone."""
    return moved & (moved.cumsum(dim=1) == 1)


@torch.no_grad()
def evaluate_policy(
    policy: Policy,
    records: Sequence[PromptRecord],
    samples_per_prompt: int = 4,
    cfg_scale: float | None = None,
    reward=None,
    judge: Judge | None = None,
    preset: AlgorithmPreset | None = None,
    negative_views: Sequence[str] = ("null", "attribute"),
    blame: bool = True,
    batch_prompts: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """The figures listed in the module docstring, as {name: mean}.

    reward: a CombinedReward (None: no reward figures). judge: a reward_models.Judge (None: no
    accuracy or credit figures); the blame test needs one with `wrong_version` and `blame`.
    negative_views: the NEGATIVE_VIEWS to report the credit figures for ("caption" only when
    every record has a negative caption). cfg_scale None: the policy's default.
    """
    if judge is not None and not isinstance(judge, Judge):
        raise TypeError(f"judge must have a judge() method (reward_models.Judge); got {judge!r}")
    scale = policy.default_cfg_scale if cfg_scale is None else cfg_scale
    preset = credit_preset(preset or GCPO)
    views = [v for v in negative_views if v != "caption" or all(r.negative_prompt for r in records)]
    views = views if judge is not None else []
    blame = blame and isinstance(judge, WrongVersions)
    vocab = prompts_vocabulary(records)
    values: dict[str, list[torch.Tensor]] = defaultdict(list)
    batches = sampled_batches(policy, records, samples_per_prompt, scale, batch_prompts, seed)
    for chunk, rollout, images, metadata in batches:
        prompts = rollout.sample_prompts
        if reward is not None:
            _add_rewards(values, reward(images, prompts, metadata))
        if judge is None:
            continue
        verdicts = judge_images(judge, images, prompts, metadata)
        _add_accuracy(values, verdicts, metadata)
        coverage = verdict_coverage(verdicts, tuple(policy.grid))
        found = coverage.sum(dim=1) > 0
        logp_pos = rollout.logp_pos.float()
        per_view = {}
        for view in views:
            negatives = view_negatives(chunk, view, vocab, seed)
            captions = None if negatives is None else [negatives[i] for i in rollout.prompt_index]
            per_view[view] = captions
            logp_neg, rows = view_logprobs(
                policy, prompts, rollout.tokens, captions, rollout.logp_neg
            )
            credit = preset.token_credit(logp_pos, logp_neg)[1].cpu()
            keep = rows & found
            for name, figure in credit_figures(credit[keep], coverage[keep]).items():
                values[f"credit/{view}/{name}"].append(figure)
        if blame and views:
            index, tokens, moved = wrong_images(
                policy, judge, rollout, images, verdicts, metadata, seed
            )
            if not index:
                continue
            spliced_prompts = [prompts[i] for i in index]
            spliced_pos = score_tokens(policy, spliced_prompts, tokens)
            for view, captions in per_view.items():
                chosen = None if captions is None else [captions[i] for i in index]
                logp_neg, rows = view_logprobs(policy, spliced_prompts, tokens, chosen)
                credit = preset.token_credit(spliced_pos, logp_neg)[1].cpu()
                values[f"credit/{view}/blame_auroc"].append(token_auroc(credit[rows], moved[rows]))
                first = first_tokens(moved[rows])
                values[f"credit/{view}/blame_first_auroc"].append(
                    token_auroc(credit[rows], first, first | ~moved[rows])
                )
    return _means(values)


def _add_rewards(values: dict[str, list[torch.Tensor]], result) -> None:
    """Append a RewardResult's valid totals and per-reward values to `values`."""
    values["reward/mean"].append(result.total[result.valid].cpu())
    names = short_names(list(result.per_reward))
    for label, scores in result.per_reward.items():
        values[f"reward/{names[label]}"].append(scores[result.valid].cpu())


def _add_accuracy(values, verdicts: Sequence[Verdict], metadata: Sequence[dict]) -> None:
    """Append each verdict to "oracle/all" and to its category's "oracle/<tag>", and the objects
    it found beyond its prompt's to "objects/extra" when it says how many it found."""
    correct = torch.tensor([float(v.correct) for v in verdicts])
    values["oracle/all"].append(correct)
    for meta, right, verdict in zip(metadata, correct, verdicts, strict=True):
        values[f"oracle/{meta.get('tag', 'untagged')}"].append(right[None])
        found = verdict.details.get("found")
        if isinstance(found, int) and is_geneval(meta):
            values["objects/extra"].append(torch.tensor([float(found - objects_asked(meta))]))


def _means(values: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """{name: mean over the finite values}, plus "oracle/geneval": the mean of the per-tag
    accuracies."""
    out = {}
    for key, parts in sorted(values.items()):
        joined = torch.cat(parts).float()
        joined = joined[joined.isfinite()]
        if joined.numel():
            out[key] = joined.mean().item()
    tags = [v for k, v in out.items() if k.startswith("oracle/") and k != "oracle/all"]
    if tags:
        out["oracle/geneval"] = sum(tags) / len(tags)
    return out
