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
    per_tag: dict[str, list[float]] = defaultdict(list)
    batches = sampled_batches(policy, records, samples_per_prompt, cfg_scale, batch_prompts, seed)
    for _, images, metadata in batches:
        for meta, result in zip(metadata, evaluate_batch(images, metadata), strict=True):
            per_tag[meta.get("tag", "untagged")].append(result.strict)
            per_tag["all"].append(result.strict)
    return {tag: sum(v) / len(v) for tag, v in sorted(per_tag.items())}
