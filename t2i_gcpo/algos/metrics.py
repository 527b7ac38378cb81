"""Figures of where the credit falls, against the objects a judge found (pure tensor maths).

Token masks come from pixel masks by `patch_coverage` (the share of each token's patch that a
mask covers). Each figure is per sample (a row); NaN marks rows where it is undefined.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
