"""Policies: the interface GCPO trains (`Policy`, `Rollout`) and its model adapters."""

from t2i_gcpo.policies.base import NULL_NEGATIVE, Policy, Rollout
from t2i_gcpo.policies.janus import JanusPolicy
from t2i_gcpo.policies.loading import BUILTIN_POLICIES, load_policy

__all__ = ["BUILTIN_POLICIES", "NULL_NEGATIVE", "JanusPolicy", "Policy", "Rollout", "load_policy"]
