"""Pure tensor maths of GRPO, DAPO and GCPO: advantages, token credit, losses, presets, and
the figures of where credit falls (metrics).

No nn.Module, no I/O, no torch.distributed: everything here is a function of tensors.
"""

from t2i_gcpo.algos.advantages import ADVANTAGE_SCALES, group_advantages, informative_groups
from t2i_gcpo.algos.credit import (
    DIVERGENCE_KINDS,
    NORMALIZATIONS,
    average_ranks,
    credit_weights,
    rank_exponent,
    token_divergence,
)
from t2i_gcpo.algos.losses import AGGREGATIONS, k3_kl, policy_loss, relaxed_kl_mask
from t2i_gcpo.algos.metrics import (
    localization_ratio,
    patch_coverage,
    precision_at_k,
    token_auroc,
)
from t2i_gcpo.algos.presets import (
    DAPO,
    GCPO,
    GRPO,
    NEGATIVE_MODES,
    PRESETS,
    AlgorithmPreset,
    credit_preset,
    get_preset,
)

__all__ = [
    "ADVANTAGE_SCALES",
    "AGGREGATIONS",
    "DAPO",
    "DIVERGENCE_KINDS",
    "GCPO",
    "GRPO",
    "NEGATIVE_MODES",
    "NORMALIZATIONS",
    "PRESETS",
    "AlgorithmPreset",
    "average_ranks",
    "credit_preset",
    "credit_weights",
    "get_preset",
    "group_advantages",
    "informative_groups",
    "k3_kl",
    "localization_ratio",
    "patch_coverage",
    "precision_at_k",
    "policy_loss",
    "rank_exponent",
    "relaxed_kl_mask",
    "token_auroc",
    "token_divergence",
]
