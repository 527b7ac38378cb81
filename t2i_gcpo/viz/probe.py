"""The credit probe: sample a group, score it under a negative, keep every per-token number
the trainer's credit is made of (log-probs, divergence, credit) for maps and metrics.

The credit comes from `AlgorithmPreset.token_credit`, the function the trainer calls, and the
negative's log-probs from `policies.negative_logprobs`, so a map shows exactly the weights a
training step would use for these tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from t2i_gcpo.algos import GCPO, AlgorithmPreset, group_advantages
from t2i_gcpo.evaluation import credit_figures, judge_images, verdict_coverage
from t2i_gcpo.policies import Policy, negative_logprobs
from t2i_gcpo.viz.maps import token_maps


@dataclass
class CreditProbe:
    """One sampled batch and its credit. Per-token fields are (N, T) in raster order.

    grid is the policy's (rows, columns) of image tokens; negatives holds one caption per
    prompt, or None for the null branch; rewards and advantages are (N,) when a reward scored
    the images (advantages over groups of `group_size`); figures holds per-sample credit
    figures (N,) each ("object_auroc", ...) once a judge has found the objects
    (`with_figures`)."""

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
    figures: dict[str, torch.Tensor] | None = None

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

    def with_figures(self, judge, metadata: Sequence[dict]) -> CreditProbe:
        """The probe with its credit figures against the objects `judge` finds (metadata: one
        record per prompt); see probe_figures."""
        return dataclasses.replace(self, figures=probe_figures(self, judge, metadata))

    def mean_figures(self) -> dict[str, float]:
        """Each credit figure's mean over the samples where it is defined ({} without)."""
        out = {}
        for name, values in (self.figures or {}).items():
            finite = values[values.isfinite()]
            if finite.numel():
                out[name] = finite.mean().item()
        return out

    def maps(self, field: str) -> torch.Tensor:
        """A per-token field ("credit", "divergence", "logp_pos", "logp_neg") as (N, H, W)."""
        if field not in ("credit", "divergence", "logp_pos", "logp_neg"):
            raise ValueError(
                f"field must be credit, divergence, logp_pos or logp_neg; got {field!r}"
            )
        return token_maps(getattr(self, field), self.grid)


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
    logp_neg = negative_logprobs(policy, rollout, negatives)  # null: from the sampling pass
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


# -- figures against a judge's objects ---------------------------------------------------------


def probe_figures(probe: CreditProbe, judge, metadata: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Per-sample credit figures (see evaluation.credit_figures: object AUROC, precision at K
    and its chance, localization) of a probe's credit on the objects `judge` finds in its images
    (metadata: one per prompt); NaN where the judge found none."""
    per_sample = [metadata[i // probe.group_size] for i in range(probe.num_samples)]
    prompts = [probe.sample_prompt(i) for i in range(probe.num_samples)]
    verdicts = judge_images(judge, probe.images, prompts, per_sample)
    return credit_figures(probe.credit, verdict_coverage(verdicts, probe.grid))
