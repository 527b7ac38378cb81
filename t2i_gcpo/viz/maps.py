"""Credit vectors as maps and as colour overlays on decoded images (pure tensor functions).

credit (T,) --token_maps--> map (h, w) --upsample--> (H, W) --colorize--> RGB --overlay-->
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

UPSAMPLING = ("nearest", "smooth")

__all__ = ["UPSAMPLING", "colorize", "overlay", "token_maps", "upsample"]


def token_maps(values: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """values (T,) or (N, T) in raster order -> (H, W) or (N, H, W) for grid (H, W)."""
    rows, cols = grid
    if values.ndim not in (1, 2) or values.shape[-1] != rows * cols:
        raise ValueError(
            f"expected (T,) or (N, T) values with T = {rows} * {cols} = {rows * cols} tokens; "
            f"got shape {tuple(values.shape)}"
        )
    return values.reshape(*values.shape[:-1], rows, cols)


def upsample(values: torch.Tensor, size: tuple[int, int], mode: str = "nearest") -> torch.Tensor:
    """map (h, w) -> (H, W): "nearest" keeps one flat block per token, "smooth" interpolates
    bilinearly between token centres."""
    if mode not in UPSAMPLING:
        raise ValueError(f"upsampling mode must be one of {UPSAMPLING}; got {mode!r}")
    if values.ndim != 2:
        raise ValueError(f"expected a (h, w) map; got shape {tuple(values.shape)}")
    grid = values.float()[None, None]
    if mode == "nearest":
        out = F.interpolate(grid, size=size, mode="nearest")
    else:
        out = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)
    return out[0, 0]


def value_range(
    values: torch.Tensor, vmin: float | None = None, vmax: float | None = None
) -> tuple[float, float]:
    """(vmin, vmax): the given bounds, or the finite extremes of `values`; never empty."""
    finite = values[torch.isfinite(values)].float()
    empty = finite.numel() == 0
    low = vmin if vmin is not None else (0.0 if empty else float(finite.min()))
    high = vmax if vmax is not None else (1.0 if empty else float(finite.max()))
    if high <= low:
        high = low + 1.0
    return low, high


def colorize(
    values: torch.Tensor,
    cmap: str = "inferno",
    vmin: float | None = None,
    vmax: float | None = None,
) -> torch.Tensor:
    """map (H, W) -> RGB (3, H, W) in [0, 1] through a matplotlib colormap over [vmin, vmax]
    (default: the map's own range)."""
    from matplotlib import colormaps

    if values.ndim != 2:
        raise ValueError(f"expected a (H, W) map; got shape {tuple(values.shape)}")
    low, high = value_range(values, vmin, vmax)
    scaled = ((values.float() - low) / (high - low)).clamp(0.0, 1.0).nan_to_num(0.0)
    rgba = colormaps[cmap](scaled.cpu().numpy())
    return torch.from_numpy(rgba[..., :3]).permute(2, 0, 1).float()


def overlay(
    image: torch.Tensor,
    values: torch.Tensor,
    alpha: float = 0.5,
    cmap: str = "inferno",
    mode: str = "nearest",
    vmin: float | None = None,
    vmax: float | None = None,
) -> torch.Tensor:
    """image (3, H, W) in [0, 1], map (h, w) -> (3, H, W) in [0, 1]: the coloured map blended
    over the image with weight `alpha` (0 = image only, 1 = map only)."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an RGB image (3, H, W); got shape {tuple(image.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    big = upsample(values, tuple(image.shape[-2:]), mode)
    colours = colorize(big, cmap, *value_range(values, vmin, vmax))
    return ((1.0 - alpha) * image.float().cpu().clamp(0, 1) + alpha * colours).clamp(0.0, 1.0)
