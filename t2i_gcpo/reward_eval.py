"""Evaluation of a policy on held-out prompts: the shapes oracle where it applies, else rewards.

Both sample each prompt `samples_per_prompt` times from a generator seeded with `seed`, in
chunks of `batch_prompts` prompts, guiding against the null prompt.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch

from t2i_gcpo.evaluation import sampled_batches, shapes_evaluation
from t2i_gcpo.logging_utils import short_names
from t2i_gcpo.policies import Policy
from t2i_gcpo.prompts import PromptRecord
from t2i_gcpo.toy.assets import DEFAULT_CFG_SCALE


def has_shapes_metadata(records: Sequence[PromptRecord]) -> bool:
    """True when every record lists its shapes-world objects (so the oracle can judge it)."""
    return bool(records) and all(
        isinstance(r.metadata.get("objects"), list) and r.metadata["objects"] for r in records
    )


@torch.no_grad()
def mean_rewards(
    policy: Policy,
    records: Sequence[PromptRecord],
    reward,
    samples_per_prompt: int = 4,
    cfg_scale: float = DEFAULT_CFG_SCALE,
    batch_prompts: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """{"reward/mean": weighted total, "reward/<name>": each reward} averaged over the samples.

    `reward` is a reward_models.CombinedReward; samples it drops as non-finite are left out.
    """
    values: dict[str, list[torch.Tensor]] = defaultdict(list)
    batches = sampled_batches(policy, records, samples_per_prompt, cfg_scale, batch_prompts, seed)
    for rollout, images, metadata in batches:
        result = reward(images, rollout.sample_prompts, metadata)
        values["reward/mean"].append(result.total[result.valid])
        names = short_names(list(result.per_reward))
        for label, scores in result.per_reward.items():
            values[f"reward/{names[label]}"].append(scores[result.valid])
    return {key: torch.cat(parts).float().mean().item() for key, parts in values.items()}


def evaluate_policy(
    policy: Policy,
    records: Sequence[PromptRecord],
    reward,
    samples_per_prompt: int,
    cfg_scale: float,
    seed: int = 0,
    preset=None,
) -> dict[str, float]:
    """{"oracle/<tag>": strict accuracy, "localization/<negative>": credit localization ratio}
    when the records carry shapes metadata (credit of `preset`, see shapes_evaluation), else
    mean_rewards (the training reward on the held-out prompts)."""
    if has_shapes_metadata(records):
        return shapes_evaluation(
            policy, records, samples_per_prompt, cfg_scale, preset=preset, seed=seed
        )
    return mean_rewards(policy, records, reward, samples_per_prompt, cfg_scale, seed=seed)
