"""Held-out evaluation of a policy: sample every prompt, score the images with the training
reward and with a judge, and measure where GCPO's credit falls on the objects the judge found.

Every prompt is sampled `samples_per_prompt` times from a generator seeded with `seed`, in
chunks of `batch_prompts` prompts, guided against the null prompt (so the null branch's
log-probs come with the samples). Reported, each averaged over the samples:

    reward/mean, reward/<name>      the reward (a reward_models.CombinedReward) and its parts
    oracle/<tag>, oracle/all        the judge's accuracy per prompt category (metadata "tag")
                                    and over all images
    localization/<negative>         credit inside the found objects over their area share
                                    (1.0 = uniform), per negative of `negative_modes`
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch

from reward_models import Judge, RewardError, Verdict
from t2i_gcpo.algos import GCPO, AlgorithmPreset, credit_preset, localization_ratio, patch_coverage
from t2i_gcpo.data import PromptRecord, resolve_negatives
from t2i_gcpo.logging_utils import short_names
from t2i_gcpo.policies import Policy, Rollout, negative_logprobs


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


def usable_modes(records: Sequence[PromptRecord], modes: Sequence[str]) -> list[str]:
    """`modes` without "caption" unless every record has a negative caption."""
    return [m for m in modes if m != "caption" or all(r.negative_prompt for r in records)]


@torch.no_grad()
def evaluate_policy(
    policy: Policy,
    records: Sequence[PromptRecord],
    samples_per_prompt: int = 4,
    cfg_scale: float | None = None,
    reward=None,
    judge: Judge | None = None,
    preset: AlgorithmPreset | None = None,
    negative_modes: Sequence[str] = ("null", "caption"),
    batch_prompts: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """The figures listed in the module docstring, as {name: mean}.

    reward: a CombinedReward (None: no reward figures). judge: a reward_models.Judge (None: no
    accuracy or credit figures). The credit is `preset`'s (GCPO's when None or when the preset
    gives uniform credit); "caption" is measured only when every record has a negative caption.
    cfg_scale None: the policy's default.
    """
    if judge is not None and not isinstance(judge, Judge):
        raise TypeError(f"judge must have a judge() method (reward_models.Judge); got {judge!r}")
    scale = policy.default_cfg_scale if cfg_scale is None else cfg_scale
    preset = credit_preset(preset or GCPO)
    modes = usable_modes(records, negative_modes) if judge is not None else []
    values: dict[str, list[torch.Tensor]] = defaultdict(list)
    batches = sampled_batches(policy, records, samples_per_prompt, scale, batch_prompts, seed)
    for chunk, rollout, images, metadata in batches:
        prompts = rollout.sample_prompts
        if reward is not None:
            _add_rewards(values, reward(images, prompts, metadata))
        if judge is None:
            continue
        verdicts = judge_images(judge, images, prompts, metadata)
        correct = torch.tensor([float(v.correct) for v in verdicts])
        values["oracle/all"].append(correct)
        for meta, right in zip(metadata, correct, strict=True):
            values[f"oracle/{meta.get('tag', 'untagged')}"].append(right[None])
        coverage = verdict_coverage(verdicts, tuple(policy.grid))
        for mode in modes:
            negatives = resolve_negatives(chunk, mode)
            logp_neg = negative_logprobs(policy, rollout, negatives)
            credit = preset.token_credit(rollout.logp_pos.float(), logp_neg)[1]
            ratios = localization_ratio(credit.cpu(), coverage)
            values[f"localization/{mode}"].append(ratios[~ratios.isnan()])
    means = {key: torch.cat(parts).float() for key, parts in sorted(values.items())}
    return {key: v.mean().item() for key, v in means.items() if v.numel()}


def _add_rewards(values: dict[str, list[torch.Tensor]], result) -> None:
    """Append a RewardResult's valid totals and per-reward values to `values`."""
    values["reward/mean"].append(result.total[result.valid].cpu())
    names = short_names(list(result.per_reward))
    for label, scores in result.per_reward.items():
        values[f"reward/{names[label]}"].append(scores[result.valid].cpu())
