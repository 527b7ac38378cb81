"""Figures of where the credit falls, against the tokens of the objects a judge found or of
the objects a test replaced (pure tensor maths).

Token masks come from pixel masks by `patch_coverage` (the share of each token's patch that a
mask covers). Each figure is per sample (a row); NaN marks rows where it is undefined. The
headline figures have a chance level and a perfect score: `token_auroc` (0.5 / 1.0) and
`precision_at_k` (its chance level / 1.0); `localization_ratio` (1.0 = uniform) is secondary:
under rank credit its ceiling is below 1 / (area share).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from t2i_gcpo.algos._checks import as_mask, check_shape
from t2i_gcpo.algos.credit import average_ranks


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
    """credit (N, T) >= 0, coverage (N, T) in [0, 1] -> (N,): the share of credit inside the
    objects divided by the objects' share of the image. 1.0 means no better than uniform; all
    credit inside a mask that covers a share a of the image gives 1 / a. Rows without credit
    or without object are NaN."""
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


def token_auroc(
    scores: torch.Tensor, positives: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """scores, positives (bool), mask (B, T) -> (B,): per row, the probability that a random
    positive token outscores a random negative one, ties counting one half (the Mann-Whitney
    AUROC over the valid tokens). 0.5 is chance, 1.0 perfect; NaN for a row without positives
    or without negatives."""
    check_shape("positives", positives, tuple(scores.shape))
    mask = as_mask(mask, scores)
    positives = positives.bool() & mask
    ranks = average_ranks(scores, mask)
    n_pos = positives.sum(dim=1).float()
    n_neg = mask.sum(dim=1).float() - n_pos
    rank_sum = (ranks * positives).sum(dim=1)
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return torch.where((n_pos > 0) & (n_neg > 0), auc, torch.nan)


def precision_at_k(
    scores: torch.Tensor, positives: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """scores, positives (bool), mask (B, T) -> (precision (B,), chance (B,)): the share of
    positives among the K highest-scoring valid tokens, K = the row's number of positives
    (ties at the K-th score shared out as a random tie-break would on average), and its chance
    level K / (valid tokens). NaN for a row without positives."""
    check_shape("positives", positives, tuple(scores.shape))
    mask = as_mask(mask, scores)
    positives = positives.bool() & mask
    k = positives.sum(dim=1)
    filled = scores.float().masked_fill(~mask, -math.inf)
    ordered = filled.sort(dim=1, descending=True).values
    kth = ordered.gather(1, (k - 1).clamp(min=0)[:, None])
    above, tied = filled > kth, filled == kth
    take_from_ties = k - above.sum(dim=1)
    pos_ties = (tied & positives).sum(dim=1).float() / tied.sum(dim=1).clamp(min=1).float()
    hits = (above & positives).sum(dim=1).float() + take_from_ties.float() * pos_ties
    precision = torch.where(k > 0, hits / k.clamp(min=1).float(), torch.nan)
    chance = torch.where(k > 0, k.float() / mask.sum(dim=1).clamp(min=1).float(), torch.nan)
    return precision, chance
