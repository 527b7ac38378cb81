"""Where GCPO puts the credit: sample a group, score it under a negative, keep every per-token
number the trainer's credit is made of (log-probs, divergence, credit) for maps and metrics.

The credit comes from `AlgorithmPreset.token_credit`, the function the trainer calls, so a map
shows exactly the weights a training step would use for these tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from t2i_gcpo.algos import GCPO, AlgorithmPreset, group_advantages
from t2i_gcpo.policies.base import NULL_NEGATIVE, Policy, Rollout

NEGATIVE_CHOICES = ("null", "caption", "swap")


def credit_preset(preset: AlgorithmPreset) -> AlgorithmPreset:
    """The preset itself when it gives token credit, else GCPO's credit settings (so GRPO and
    DAPO runs can still be asked where GCPO would have put the credit)."""
    return preset if preset.uses_credit else GCPO


@torch.no_grad()
def negative_logprobs(
    policy: Policy,
    rollout: Rollout,
    negatives: Sequence[str] | None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Teacher-forced log-probs (N, T) of the rollout's tokens under one negative caption per
    prompt (`negatives`, aligned with rollout.prompts) or under the null prompt (None)."""
    if negatives is not None and len(negatives) != len(rollout.prompts):
        raise ValueError(
            f"got {len(negatives)} negative captions for {len(rollout.prompts)} prompts"
        )
    per_sample = None
    if negatives is not None:
        per_sample = [negatives[i] for i in rollout.prompt_index.tolist()]
    prompts, parts = rollout.sample_prompts, []
    for start in range(0, rollout.num_samples, batch_size):
        part = slice(start, start + batch_size)
        branch = NULL_NEGATIVE if per_sample is None else per_sample[part]
        parts.append(policy.token_logprobs(prompts[part], rollout.tokens[part], branch))
    return torch.cat(parts).float()


@dataclass
class CreditProbe:
    """One sampled batch and its credit. Per-token fields are (N, T) in raster order.

    grid is the policy's (rows, columns) of image tokens; negatives holds one caption per
    prompt, or None for the null branch; rewards and advantages are (N,) when a reward scored
    the images (advantages over groups of `group_size`)."""

    prompts: list[str]
    negatives: list[str] | None
    group_size: int
    grid: tuple[int, int]
    images: torch.Tensor
    tokens: torch.Tensor
    logp_pos: torch.Tensor
    logp_neg: torch.Tensor
    divergence: torch.Tensor
    credit: torch.Tensor
    preset: AlgorithmPreset
    rewards: torch.Tensor | None = None
    advantages: torch.Tensor | None = None

    @property
    def num_samples(self) -> int:
        return self.tokens.shape[0]

    def sample_prompt(self, i: int) -> str:
        """The prompt of sample i."""
        return self.prompts[i // self.group_size]

    def sample_negative(self, i: int) -> str:
        """The negative of sample i ("" for the null prompt)."""
        return "" if self.negatives is None else self.negatives[i // self.group_size]

    def recredit(self, preset: AlgorithmPreset) -> CreditProbe:
        """The same samples and log-probs with `preset`'s divergence and credit."""
        divergence, credit = preset.token_credit(self.logp_pos, self.logp_neg)
        return dataclasses.replace(self, divergence=divergence, credit=credit, preset=preset)

    def maps(self, field: str) -> torch.Tensor:
        """A per-token field ("credit", "divergence", "logp_pos", "logp_neg") as (N, H, W)."""
        if field not in ("credit", "divergence", "logp_pos", "logp_neg"):
            raise ValueError(
                f"field must be credit, divergence, logp_pos or logp_neg; got {field!r}"
            )
        return token_maps(getattr(self, field), self.grid)


def token_maps(values: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """values (T,) or (N, T) in raster order -> (H, W) or (N, H, W) for grid (H, W)."""
    rows, cols = grid
    if values.ndim not in (1, 2) or values.shape[-1] != rows * cols:
        raise ValueError(
            f"expected (T,) or (N, T) values with T = {rows} * {cols} = {rows * cols} tokens; "
            f"got shape {tuple(values.shape)}"
        )
    return values.reshape(*values.shape[:-1], rows, cols)


@torch.no_grad()
def probe_credit(
    policy: Policy,
    prompts: Sequence[str],
    negatives: Sequence[str] | None = None,
    samples_per_prompt: int = 4,
    preset: AlgorithmPreset = GCPO,
    cfg_scale: float = 1.0,
    generator: torch.Generator | None = None,
    reward=None,
    metadata: Sequence[dict] | None = None,
    temperature: float = 1.0,
) -> CreditProbe:
    """Sample `samples_per_prompt` images per prompt (guided by the null branch, as training
    samples by default), score their tokens under `negatives` (one caption per prompt, or None
    for the null prompt) and compute `preset`'s credit.

    With a `reward` (a reward_models CombinedReward) the images are scored too and group
    advantages computed with the preset's advantage settings; `metadata` (one per prompt) is
    passed to the reward."""
    prompts = list(prompts)
    rollout = policy.sample(
        prompts,
        samples_per_prompt=samples_per_prompt,
        cfg_scale=cfg_scale,
        temperature=temperature,
        generator=generator,
    )
    negatives = None if negatives is None else list(negatives)
    if negatives is None:  # the null branch: sampling already scored it (the CFG pass)
        logp_neg = rollout.logp_neg.float()
    else:
        logp_neg = negative_logprobs(policy, rollout, negatives)
    logp_pos = rollout.logp_pos.float()
    divergence, credit = preset.token_credit(logp_pos, logp_neg)
    images = policy.decode(rollout.tokens).float().clamp(0, 1)
    rewards = advantages = None
    if reward is not None:
        sample_metadata = None
        if metadata is not None:
            sample_metadata = [metadata[i] for i in rollout.prompt_index.tolist()]
        result = reward(images, rollout.sample_prompts, sample_metadata)
        rewards = result.total.float().cpu()
        advantages = group_advantages(
            rewards, samples_per_prompt, preset.advantage_scale, preset.advantage_eps
        )
    return CreditProbe(
        prompts=prompts,
        negatives=negatives,
        group_size=samples_per_prompt,
        grid=tuple(policy.grid),
        images=images.cpu(),
        tokens=rollout.tokens.cpu(),
        logp_pos=logp_pos.cpu(),
        logp_neg=logp_neg.cpu(),
        divergence=divergence.cpu(),
        credit=credit.cpu(),
        preset=preset,
        rewards=rewards,
        advantages=advantages,
    )


# -- localization ---------------------------------------------------------------------------


def patch_coverage(pixel_mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """pixel_mask (H, W) or (N, H, W), bool or [0, 1] -> the share of each token's patch it
    covers, (rows, cols) or (N, rows, cols); H and W must be multiples of the grid."""
    rows, cols = grid
    mask = pixel_mask.float()
    height, width = mask.shape[-2:]
    if height % rows or width % cols:
        raise ValueError(f"a {height}x{width} mask does not split into a {rows}x{cols} token grid")
    squeeze = mask.ndim == 2
    pooled = F.avg_pool2d(mask.reshape(-1, 1, height, width), (height // rows, width // cols))
    pooled = pooled[:, 0]
    return pooled[0] if squeeze else pooled


def localization_ratio(credit: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """credit (N, T) >= 0, coverage (N, T) in [0, 1] (the share of each token's patch inside
    the prompt's objects) -> (N,): the share of credit inside the objects divided by the
    objects' share of the image. 1.0 means no better than uniform; all credit inside a mask that
    covers a share a of the image gives 1 / a. Rows without credit or without object are NaN."""
    if credit.shape != coverage.shape or credit.ndim != 2:
        raise ValueError(
            f"credit and coverage must both be (N, T); got {tuple(credit.shape)} and "
            f"{tuple(coverage.shape)}"
        )
    credit, coverage = credit.float(), coverage.float()
    inside = (credit * coverage).sum(dim=1) / credit.sum(dim=1)
    area = coverage.mean(dim=1)
    ratio = inside / area
    return torch.where((area > 0) & (credit.sum(dim=1) > 0), ratio, torch.nan)


def shapes_object_coverage(
    metadata: Sequence[dict], grid: tuple[int, int], image_size: int
) -> torch.Tensor:
    """Per-token object coverage (N, T) of shapes-world prompts: where the prompt's objects are
    drawn in its ground-truth render (the union of its object masks), pooled onto the grid."""
    from t2i_gcpo.toy.scenes import objects_from_metadata, render

    masks = []
    for meta in metadata:
        scene = render(objects_from_metadata(meta), image_size=image_size)
        masks.append(scene.masks.any(dim=0))
    return patch_coverage(torch.stack(masks), grid).flatten(1)


def probe_localization(probe: CreditProbe, metadata: Sequence[dict]) -> torch.Tensor:
    """Localization ratio (N,) of a probe of shapes-world prompts (metadata: one per prompt)."""
    per_sample = [metadata[i // probe.group_size] for i in range(probe.num_samples)]
    coverage = shapes_object_coverage(per_sample, probe.grid, probe.images.shape[-1])
    return localization_ratio(probe.credit, coverage)
