"""GCPO token credit: how much each sampled token depends on the prompt, as loss weights.

Both functions work per sequence (row) over its valid tokens; see docs in method.md.
"""

from __future__ import annotations

import math

import torch

from t2i_gcpo.algos._checks import (
    as_mask,
    check_choice,
    check_finite,
    check_ndim,
    check_open_unit,
    check_positive,
    check_shape,
)

DIVERGENCE_KINDS = ("k3", "abs", "logratio")
NORMALIZATIONS = ("rank", "softmax", "linear", "uniform")


def token_divergence(
    logp_pos: torch.Tensor, logp_neg: torch.Tensor, kind: str = "k3"
) -> torch.Tensor:
    """logp_pos, logp_neg (B, T) -> divergence d (B, T); k3 and abs are >= 0, logratio signed.

    k3: delta = clamp(logp_neg - logp_pos, -20, 20); d = clamp(exp(delta) - delta - 1, max=10).
    """
    check_choice("kind", kind, DIVERGENCE_KINDS)
    check_ndim("logp_pos", logp_pos, 2, "(B, T)")
    check_shape("logp_neg", logp_neg, tuple(logp_pos.shape))
    logp_pos, logp_neg = logp_pos.detach().float(), logp_neg.detach().float()
    if kind == "abs":
        return (logp_pos - logp_neg).abs()
    if kind == "logratio":
        return logp_pos - logp_neg
    delta = (logp_neg - logp_pos).clamp(-20.0, 20.0)
    return (torch.exp(delta) - delta - 1.0).clamp(min=0.0, max=10.0)


def rank_exponent(top_fraction: float, top_mass: float) -> float:
    """alpha such that the top `top_fraction` of percentiles carry `top_mass` of sum(p**alpha)."""
    check_open_unit("top_fraction", top_fraction)
    check_open_unit("top_mass", top_mass)
    return math.log(1.0 - top_mass) / math.log(1.0 - top_fraction) - 1.0


def average_ranks(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """values, mask (B, T) -> 1-based ranks (B, T) among each row's valid entries; ties averaged."""
    filled = values.float().masked_fill(~mask, math.inf)
    ordered = filled.sort(dim=1).values.contiguous()
    below = torch.searchsorted(ordered, filled.contiguous(), right=False)
    up_to = torch.searchsorted(ordered, filled.contiguous(), right=True)
    return ((below + up_to + 1).float() / 2.0).masked_fill(~mask, 0.0)


def credit_weights(
    divergence: torch.Tensor,
    mask: torch.Tensor | None = None,
    normalization: str = "rank",
    top_fraction: float = 0.4,
    top_mass: float = 0.8,
    temperature: float = 1.0,
) -> torch.Tensor:
    """divergence, mask (B, T) -> weights (B, T) >= 0, 0 off-mask, each row summing to its count.

    normalization: "rank" (percentile p = rank / N, w = p**alpha with alpha from top_fraction and
    top_mass; ties share their average rank), "softmax" (softmax(d / temperature)), "linear"
    (d / mean d; needs d >= 0), "uniform" (w = 1). Every row is then rescaled to sum to N.
    A row whose divergences are all equal (all zero included) gets uniform weights; a row with
    no valid token gets zeros.
    """
    check_choice("normalization", normalization, NORMALIZATIONS)
    alpha = rank_exponent(top_fraction, top_mass)
    check_positive("temperature", temperature)
    check_ndim("divergence", divergence, 2, "(B, T)")
    mask = as_mask(mask, divergence)
    d = divergence.detach().float()
    check_finite("divergence (valid tokens)", d[mask])
    counts = mask.sum(dim=1, keepdim=True).float()

    if normalization == "uniform":
        raw = mask.float()
    elif normalization == "rank":
        percentile = average_ranks(d, mask) / counts.clamp(min=1.0)
        raw = percentile.pow(alpha).masked_fill(~mask, 0.0)
    elif normalization == "softmax":
        logits = (d / temperature).masked_fill(~mask, -math.inf)
        raw = torch.softmax(logits, dim=1).nan_to_num(0.0)
    else:  # linear
        if (d[mask] < 0).any():
            raise ValueError(
                "normalization='linear' needs a non-negative divergence (kind 'k3' or 'abs'); "
                f"got a minimum of {d[mask].min().item():.4g}"
            )
        raw = d.masked_fill(~mask, 0.0)

    totals = raw.sum(dim=1, keepdim=True)
    degenerate = totals <= 0  # all-zero linear divergence: no contrast, so uniform credit
    raw = torch.where(degenerate, mask.float(), raw)
    totals = torch.where(degenerate, counts, totals)
    return raw * counts / totals.clamp(min=torch.finfo(torch.float32).tiny)
