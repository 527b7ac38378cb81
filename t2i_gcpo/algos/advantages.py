"""Group-relative advantages (GRPO, Dr. GRPO) and DAPO's dynamic-sampling filter.

Rewards arrive flat, (N,) with N = groups x group_size, the samples of one prompt consecutive.
"""

from __future__ import annotations

import torch

from t2i_gcpo.algos._checks import check_choice, check_finite, check_ndim, check_positive

ADVANTAGE_SCALES = ("group", "batch", "none")


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """rewards (N,) -> (N // group_size, group_size), after checking both arguments."""
    check_ndim("rewards", rewards, 1, "(N,)")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(
            f"group_size={group_size!r} must be an integer >= 2 "
            "(a group of one sample has no relative advantage)"
        )
    if rewards.numel() % group_size != 0:
        raise ValueError(
            f"group_size={group_size} does not divide the number of rewards "
            f"({rewards.numel()}); expected N = groups x group_size"
        )
    check_finite("rewards", rewards)
    return rewards.float().view(-1, group_size)


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """rewards (N,) -> advantages (N,): (r - group mean) / (std + eps), std per `scale`.

    scale: "group" (GRPO, unbiased std of the group), "batch" (unbiased std of all N rewards),
    "none" (Dr. GRPO: centred only).
    """
    check_choice("scale", scale, ADVANTAGE_SCALES)
    check_positive("eps", eps, allow_zero=True)
    groups = _grouped(rewards, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (groups.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        centred = centred / (groups.std() + eps)
    return centred.reshape(-1).to(rewards.dtype if rewards.is_floating_point() else torch.float32)


def informative_groups(
    rewards: torch.Tensor, group_size: int, min_std: float = 1e-6
) -> torch.Tensor:
    """rewards (N,) -> keep (N,) bool: False for every sample of a group whose std < min_std."""
    check_positive("min_std", min_std, allow_zero=True)
    groups = _grouped(rewards, group_size)
    keep = groups.std(dim=1) >= min_std
    return keep.repeat_interleave(group_size)
