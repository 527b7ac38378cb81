"""Matplotlib figures of a CreditProbe: per-sample panels and group grids, saved as PNG.

Figures are built with matplotlib's object API (no pyplot state, no backend switch), so they
work the same in scripts, in training and in notebooks (where `display(fig)` shows them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from t2i_gcpo.files import atomic_path
from t2i_gcpo.viz.maps import overlay, upsample, value_range
from t2i_gcpo.viz.probe import CreditProbe

PANELS = (
    ("credit", "credit (overlay)", "inferno"),
    ("logp_pos", "log p | prompt", "viridis"),
    ("logp_neg", "log p | negative", "viridis"),
    ("divergence", "divergence", "magma"),
)


def _image(ax, image: torch.Tensor, title: str) -> None:
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _colorbar(fig, ax, low: float, high: float, cmap: str) -> None:
    mappable = ScalarMappable(norm=Normalize(low, high), cmap=cmap)
    fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)


def _sample_title(probe: CreditProbe, i: int) -> str:
    """Two short lines (sample and reward; advantage and object AUROC), so that the titles of
    a group's overlays, side by side, do not run into each other."""
    first, second = [f"#{i}"], []
    if probe.rewards is not None:
        first.append(f"reward {probe.rewards[i].item():.3f}")
    if probe.advantages is not None:
        second.append(f"adv {probe.advantages[i].item():+.2f}")
    auroc = (probe.figures or {}).get("object_auroc")
    if auroc is not None and auroc[i].isfinite():
        second.append(f"obj AUROC {auroc[i].item():.2f}")
    return "\n".join("  ".join(line) for line in (first, second) if line)


def sample_figure(probe: CreditProbe, i: int, alpha: float = 0.6, mode: str = "nearest") -> Figure:
    """Five panels for sample i: image | credit overlay | log p under the prompt | log p under
    the negative | divergence, each map with its colour bar."""
    if not 0 <= i < probe.num_samples:
        raise IndexError(f"sample {i} is out of range for a probe of {probe.num_samples}")
    fig = Figure(figsize=(13, 3.0))
    axes = fig.subplots(1, 5)
    image = probe.images[i]
    _image(axes[0], image, _sample_title(probe, i))
    size = tuple(image.shape[-2:])
    for ax, (field, title, cmap) in zip(axes[1:], PANELS, strict=True):
        values = probe.maps(field)[i]
        low, high = value_range(values)
        if field == "credit":
            shown = overlay(image, values, alpha, cmap, mode, low, high).permute(1, 2, 0)
            ax.imshow(shown.numpy(), interpolation="nearest")
        else:
            ax.imshow(upsample(values, size, mode).numpy(), cmap=cmap, vmin=low, vmax=high)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
        _colorbar(fig, ax, low, high, cmap)
    negative = probe.sample_negative(i) or "(null prompt)"
    fig.suptitle(
        f"{probe.sample_prompt(i)}   vs   {negative}   [{probe.preset.normalization} credit]",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def group_figure(
    probe: CreditProbe,
    group: int = 0,
    alpha: float = 0.6,
    mode: str = "nearest",
    columns: int | None = None,
    title: str | None = None,
) -> Figure:
    """Credit overlays of one prompt's group, one per sample, titled with reward and advantage;
    one colour scale (and bar) for the whole group."""
    size = probe.group_size
    if not 0 <= group < len(probe.prompts):
        raise IndexError(f"group {group} is out of range for {len(probe.prompts)} prompts")
    members = range(group * size, (group + 1) * size)
    credit = probe.maps("credit")[group * size : (group + 1) * size]
    low, high = value_range(credit)
    columns = columns or min(size, 4)
    rows = -(-size // columns)
    fig = Figure(figsize=(2.4 * columns + 0.6, 2.5 * rows + 0.5))
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for ax, i in zip(axes, members, strict=False):
        shown = overlay(probe.images[i], probe.maps("credit")[i], alpha, "inferno", mode, low, high)
        _image(ax, shown, _sample_title(probe, i))
    for ax in axes[size:]:
        ax.axis("off")
    _colorbar(fig, axes, low, high, "inferno")
    negative = probe.sample_negative(group * size) or "(null prompt)"
    fig.suptitle(title or f"{probe.prompts[group]}  vs  {negative}", fontsize=9)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write `fig` as PNG to `path` (via a hidden file and a rename)."""
    with atomic_path(path) as partial:
        fig.savefig(partial, dpi=dpi, format="png", bbox_inches="tight")
    return Path(path)


def figure_array(fig: Figure, dpi: int = 90) -> torch.Tensor:
    """The rendered figure as an RGB tensor (3, H, W) in [0, 1] (for TensorBoard)."""
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = torch.from_numpy(np.asarray(canvas.buffer_rgba()).copy())
    return rgba[..., :3].permute(2, 0, 1).float() / 255.0
