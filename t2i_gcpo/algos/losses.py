"""The clipped policy-gradient loss shared by GRPO, DAPO and GCPO, with an optional k3 KL."""

from __future__ import annotations

import torch

from t2i_gcpo.algos._checks import (
    as_mask,
    check_choice,
    check_ndim,
    check_positive,
    check_shape,
)

AGGREGATIONS = ("sequence_mean", "token_mean", "credit_weighted")


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """logp, ref_logp (B, T) -> per-token k3 KL estimate (B, T): exp(r - l) - (r - l) - 1 >= 0,
    computed as expm1(d) - d, which float rounding keeps >= 0 (exp(d) - 1 - d can round to
    -1e-16 for |d| near 1e-13)."""
    delta = ref_logp - logp
    return torch.expm1(delta) - delta


def relaxed_kl_mask(credit: torch.Tensor) -> torch.Tensor:
    """credit (B, T) -> KL multiplier (B, T): 0.5 + 0.5 * clamp(2 - 2w, 0, 1) (1 for w <= 0.5)."""
    return 0.5 + 0.5 * (2.0 - 2.0 * credit).clamp(0.0, 1.0)


def aggregate(
    per_token: torch.Tensor, mask: torch.Tensor, aggregation: str, credit: torch.Tensor
) -> torch.Tensor:
    """per_token, mask, credit (B, T) -> scalar, by `aggregation` (see AGGREGATIONS)."""
    valid = mask.to(per_token.dtype)
    if aggregation == "sequence_mean":
        counts = valid.sum(dim=1)
        rows = counts > 0
        per_row = (per_token * valid).sum(dim=1)[rows] / counts[rows]
        return per_row.mean() if rows.any() else per_token.sum() * 0.0
    if aggregation == "token_mean":
        return (per_token * valid).sum() / valid.sum().clamp(min=1.0)
    return (per_token * valid).sum() / (credit * valid).sum().clamp(min=1e-8)


def _check_loss_inputs(logp, old_logp, advantages, credit, ref_logp, beta, aggregation):
    """Validate policy_loss's arguments (shapes, options, ranges)."""
    check_choice("aggregation", aggregation, AGGREGATIONS)
    check_ndim("logp", logp, 2, "(B, T)")
    check_shape("old_logp", old_logp, tuple(logp.shape))
    check_ndim("advantages", advantages, 1, "(B,)")
    check_shape("advantages", advantages, (logp.shape[0],))
    if credit is not None:
        check_shape("credit", credit, tuple(logp.shape))
    if ref_logp is not None:
        check_shape("ref_logp", ref_logp, tuple(logp.shape))
    check_positive("beta", beta, allow_zero=True)
    if beta > 0 and ref_logp is None:
        raise ValueError(f"beta={beta} > 0 needs ref_logp (B, T) from the reference policy")


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None,
    credit: torch.Tensor | None = None,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    aggregation: str = "sequence_mean",
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    kl_relax: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """logp, old_logp, mask, credit, ref_logp (B, T); advantages (B,) -> (loss, metrics).

    Per token: -min(ratio * A w, clip(ratio, 1 - clip_low, 1 + clip_high) * A w)
    + beta * k3(ref, logp) [* relaxed_kl_mask(w) when kl_relax], aggregated by `aggregation`:
    "sequence_mean" (GRPO), "token_mean" (DAPO), "credit_weighted" (sum / sum w, GCPO reference).
    `credit` None means w = 1 (uniform credit). credit, old_logp and ref_logp are not
    differentiated.
    """
    _check_loss_inputs(logp, old_logp, advantages, credit, ref_logp, beta, aggregation)
    check_positive("clip_low", clip_low, allow_zero=True)
    check_positive("clip_high", clip_high, allow_zero=True)
    if clip_low >= 1.0:
        raise ValueError(
            f"clip_low={clip_low} must be < 1 (the ratio's lower bound is 1 - clip_low)"
        )
    mask = as_mask(mask, logp)
    logp = logp.float()
    weights = mask.float() if credit is None else credit.detach().float() * mask
    token_adv = advantages.detach().float()[:, None] * weights

    ratio = torch.exp(logp - old_logp.detach().float())
    clipped_ratio = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    surrogate = torch.minimum(ratio * token_adv, clipped_ratio * token_adv)
    per_token = -surrogate

    kl = None
    if ref_logp is not None:
        kl = k3_kl(logp, ref_logp.detach().float())
        if beta > 0:
            kl_weight = relaxed_kl_mask(weights) if kl_relax else torch.ones_like(kl)
            per_token = per_token + beta * kl * kl_weight
    loss = aggregate(per_token, mask, aggregation, weights)
    return loss, _loss_metrics(ratio, token_adv, mask, weights, clip_low, clip_high, kl)


@torch.no_grad()
def _loss_metrics(ratio, token_adv, mask, weights, clip_low, clip_high, kl) -> dict[str, float]:
    """Scalar diagnostics of one policy_loss call, over valid tokens."""
    if not mask.any():
        return {"clip_fraction": 0.0, "ratio_mean": 1.0}
    clipped = ((ratio > 1.0 + clip_high) & (token_adv > 0)) | (
        (ratio < 1.0 - clip_low) & (token_adv < 0)
    )
    valid_w = weights[mask]
    metrics = {
        "clip_fraction": clipped[mask].float().mean().item(),
        "ratio_mean": ratio[mask].mean().item(),
        "ratio_max": ratio[mask].max().item(),
        "credit_max": valid_w.max().item(),
        "credit_min": valid_w.min().item(),
        "credit_std": valid_w.std().item() if valid_w.numel() > 1 else 0.0,
        "token_advantage_abs_mean": token_adv[mask].abs().mean().item(),
    }
    if kl is not None:
        metrics["kl_mean"] = kl[mask].mean().item()
    return metrics
