"""A rollout's tokens scored under one branch: the one place `logp_neg` is assembled.

GCPO's credit needs log pi(y_t | y_<t, negative) for every sampled token. When the negative is
the branch that classifier-free guidance sampled against, the rollout already holds those
numbers (`Rollout.logp_neg`, from the same forward passes); otherwise they cost one no-grad
teacher-forced pass, run here in minibatches. The trainer, the credit probe and the evaluation
all call `negative_logprobs`, so they agree on what the credit's negative scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from t2i_gcpo.policies.base import NULL_NEGATIVE, Policy, Rollout

DEFAULT_BATCH = 64
"""Samples per teacher-forced forward pass when the caller does not say."""


def _per_sample(rollout: Rollout, negatives: Sequence[str] | None) -> list[str] | None:
    """One caption per prompt (aligned with rollout.prompts) -> one per sample."""
    if negatives is None:
        return None
    if isinstance(negatives, str) or len(negatives) != len(rollout.prompts):
        raise ValueError(
            f"negatives must be None (the null prompt) or {len(rollout.prompts)} captions, one "
            f"per prompt of the rollout; got {negatives!r}"
        )
    return [negatives[i] for i in rollout.prompt_index.tolist()]


@torch.no_grad()
def score_tokens(
    policy: Policy,
    prompts: Sequence[str],
    tokens: torch.Tensor,
    branch: Sequence[str] | str | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """prompts (N,), tokens (N, T) -> teacher-forced log-probs (N, T) float32, no gradient.

    branch: None scores each row's prompt, "null" the null prompt, a list of N captions those
    captions. `batch_size` rows per forward pass (default 64).
    """
    prompts = list(prompts)

    def score(part: slice) -> torch.Tensor:
        chosen = branch if branch is None or isinstance(branch, str) else list(branch[part])
        return policy.token_logprobs(prompts[part], tokens[part], chosen)

    return _in_parts(score, len(prompts), batch_size)


def _in_parts(score, count: int, batch_size: int | None) -> torch.Tensor:
    """score(slice) over `count` rows, `batch_size` (default 64) at a time, joined as float32."""
    size = batch_size or DEFAULT_BATCH
    return torch.cat([score(slice(i, i + size)) for i in range(0, count, size)]).float()


def teacher_forced_logprobs(
    policy: Policy,
    rollout: Rollout,
    branch: Sequence[str] | str | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """rollout (N samples of T tokens) -> log-probs (N, T) float32 under `branch` (see
    score_tokens; a list gives one caption per sample), no gradient."""
    return score_tokens(policy, rollout.sample_prompts, rollout.tokens, branch, batch_size)


def negative_logprobs(
    policy: Policy,
    rollout: Rollout,
    negatives: Sequence[str] | None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """rollout -> log-probs (N, T) under the credit's negative: the null prompt (None) or one
    caption per prompt (aligned with rollout.prompts).

    When that is the branch the rollout was sampled against, its recorded `logp_neg` is
    returned as is (no forward pass); `policy` must then be the policy that sampled the
    rollout, unchanged since.
    """
    wanted = None if negatives is None else list(negatives)
    per_sample = _per_sample(rollout, wanted)
    recorded = rollout.negative_prompts
    if recorded == wanted:
        return rollout.logp_neg.float()
    branch = NULL_NEGATIVE if per_sample is None else per_sample
    return teacher_forced_logprobs(policy, rollout, branch, batch_size)


@torch.no_grad()
def guided_logprobs(
    policy: Policy,
    rollout: Rollout,
    temperature: float = 1.0,
    batch_size: int | None = None,
) -> torch.Tensor:
    """rollout -> log-probs (N, T) float32 of its tokens under the distribution it was sampled
    from (Policy.guided_logprobs with the rollout's negative branch and cfg_scale), no
    gradient, `batch_size` samples per pass (default 64)."""
    prompts, negatives = rollout.sample_prompts, rollout.sample_negatives

    def score(part: slice) -> torch.Tensor:
        chosen = None if negatives is None else negatives[part]
        return policy.guided_logprobs(
            prompts[part], rollout.tokens[part], chosen, rollout.cfg_scale, temperature
        )

    return _in_parts(score, len(prompts), batch_size)
