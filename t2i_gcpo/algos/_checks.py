"""Argument checks shared by the algos functions: each raises ValueError naming the argument."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def check_choice(name: str, value: str, allowed: Iterable[str]) -> None:
    """Raise unless `value` is one of `allowed`."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; expected one of {allowed}")


def check_shape(name: str, tensor: torch.Tensor, shape: tuple[int, ...]) -> None:
    """Raise unless `tensor` has exactly `shape`."""
    if tuple(tensor.shape) != tuple(shape):
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)}; expected {tuple(shape)} "
            "(the same leading dimensions as the other arguments)"
        )


def check_ndim(name: str, tensor: torch.Tensor, ndim: int, layout: str) -> None:
    """Raise unless `tensor` has `ndim` dimensions (`layout` names them, e.g. '(B, T)')."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor {layout}; got {type(tensor).__name__}")
    if tensor.ndim != ndim:
        raise ValueError(f"{name} must be {layout}; got shape {tuple(tensor.shape)}")


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise if `tensor` holds NaN or +-inf."""
    if not torch.isfinite(tensor).all():
        bad = (~torch.isfinite(tensor)).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} must be finite; found NaN or inf at positions {bad}")


def check_open_unit(name: str, value: float) -> None:
    """Raise unless 0 < value < 1."""
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name}={value!r} must lie strictly between 0 and 1")


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    """Raise unless value > 0 (or >= 0 when `allow_zero`)."""
    ok = float(value) >= 0.0 if allow_zero else float(value) > 0.0
    if not ok or value != value:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} must be {bound}")


def as_mask(mask: torch.Tensor | None, like: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """mask (B, T) bool or 0/1, or None for all-valid -> bool (B, T) on `like`'s device."""
    if mask is None:
        return torch.ones_like(like, dtype=torch.bool)
    check_ndim(name, mask, like.ndim, "(B, T)")
    check_shape(name, mask, tuple(like.shape))
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"{name} must be boolean or hold only 0 and 1")
        mask = mask.bool()
    return mask.to(like.device)
