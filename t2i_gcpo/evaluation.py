"""Held-out evaluation of a policy: sample each prompt, decode, score with the shapes oracle."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch

from t2i_gcpo.policies.base import Rollout
from t2i_gcpo.prompts import PromptRecord
from t2i_gcpo.toy.assets import DEFAULT_CFG_SCALE
from t2i_gcpo.toy.oracle import evaluate_batch


def sampled_batches(
    policy,
    records: Sequence[PromptRecord],
    samples_per_prompt: int,
    cfg_scale: float,
    batch_prompts: int = 16,
    seed: int = 0,
) -> Iterator[tuple[Rollout, torch.Tensor, list[dict]]]:
    """Sample every record `samples_per_prompt` times (null-prompt guidance), `batch_prompts`
    prompts at a time, from a generator seeded with `seed`: yields (rollout, images (N, 3, H, W),
    the N samples' metadata)."""
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
        yield rollout, policy.decode(rollout.tokens), metadata


@torch.no_grad()
def oracle_accuracy(
    policy,
    records: Sequence[PromptRecord],
    samples_per_prompt: int = 4,
    cfg_scale: float = DEFAULT_CFG_SCALE,
    batch_prompts: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """Strict accuracy per metadata tag and overall ("all"), over samples_per_prompt samples."""
    figures = shapes_evaluation(
        policy,
        records,
        samples_per_prompt,
        cfg_scale,
        negative_modes=(),
        batch_prompts=batch_prompts,
        seed=seed,
    )
    return {key.split("/", 1)[1]: value for key, value in figures.items()}


@torch.no_grad()
def shapes_evaluation(
    policy,
    records: Sequence[PromptRecord],
    samples_per_prompt: int = 4,
    cfg_scale: float = DEFAULT_CFG_SCALE,
    preset=None,
    negative_modes: Sequence[str] = ("null", "caption"),
    batch_prompts: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """Oracle strict accuracy per tag ("oracle/<tag>") and the credit's localization ratio
    ("localization/<mode>") for each negative mode, on the same samples.

    The credit is `preset`'s (GCPO's when None or when the preset gives uniform credit);
    "caption" uses each record's negative_prompt and is skipped when a record has none."""
    from t2i_gcpo.algos import GCPO
    from t2i_gcpo.credit_probe import (
        credit_preset,
        localization_ratio,
        negative_logprobs,
        shapes_object_coverage,
    )

    preset = credit_preset(preset or GCPO)
    modes = [m for m in negative_modes if m != "caption" or all(r.negative_prompt for r in records)]
    per_key: dict[str, list[float]] = defaultdict(list)
    starts = range(0, len(records), batch_prompts)
    batches = sampled_batches(policy, records, samples_per_prompt, cfg_scale, batch_prompts, seed)
    for start, (rollout, images, metadata) in zip(starts, batches, strict=True):
        for meta, result in zip(metadata, evaluate_batch(images, metadata), strict=True):
            per_key[f"oracle/{meta.get('tag', 'untagged')}"].append(result.strict)
            per_key["oracle/all"].append(result.strict)
        if not modes:
            continue
        coverage = shapes_object_coverage(metadata, tuple(policy.grid), images.shape[-1])
        chunk = records[start : start + batch_prompts]
        for mode in modes:
            if mode == "null":  # sampled against the null prompt: its CFG pass scored it
                logp_neg = rollout.logp_neg.float()
            else:
                negatives = [r.negative_prompt for r in chunk]
                logp_neg = negative_logprobs(policy, rollout, negatives)
            credit = preset.token_credit(rollout.logp_pos.float(), logp_neg)[1]
            ratios = localization_ratio(credit.cpu(), coverage)
            per_key[f"localization/{mode}"].extend(ratios[~ratios.isnan()].tolist())
    return {key: sum(v) / len(v) for key, v in sorted(per_key.items()) if v}
