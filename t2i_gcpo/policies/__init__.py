"""Policies: the interface GCPO trains (`Policy`, `Rollout`), its model adapters, their loading
by name / folder / hub id, and the scoring of a rollout under a branch."""

from t2i_gcpo.policies.base import NULL_NEGATIVE, Policy, Rollout
from t2i_gcpo.policies.janus import JanusPolicy
from t2i_gcpo.policies.loading import POLICIES, load_policy, register_policy
from t2i_gcpo.policies.scoring import (
    guided_logprobs,
    negative_logprobs,
    score_tokens,
    teacher_forced_logprobs,
)

__all__ = [
    "NULL_NEGATIVE",
    "POLICIES",
    "JanusPolicy",
    "Policy",
    "Rollout",
    "guided_logprobs",
    "load_policy",
    "negative_logprobs",
    "register_policy",
    "score_tokens",
    "teacher_forced_logprobs",
]
