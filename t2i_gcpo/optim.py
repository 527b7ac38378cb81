"""The optimizer and learning-rate schedule of a training run."""

from __future__ import annotations

import math
import warnings

import torch

from t2i_gcpo.config import OptimConfig


def lr_factor(
    step: int, total: int, schedule: str, warmup_steps: int = 0, min_lr_ratio: float = 0.0
) -> float:
    """Multiplier of the peak lr during training step `step` (0-based) of `total`.

    Warmup: (step + 1) / warmup_steps for the first warmup_steps steps. Then "constant": 1;
    "cosine": min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * p)) / 2, p going from 0 at the
    first step after warmup to 1 at the last step.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"schedule={schedule!r} is not supported; expected constant or cosine")
    progress = (step - warmup_steps) / max(1, total - 1 - warmup_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1)))


def build_optimizer(parameters: list[torch.nn.Parameter], config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over `parameters` with the config's lr and weight decay."""
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR following lr_factor; stepped once per training step (not per minibatch)."""

    def factor(step: int) -> float:
        return lr_factor(
            step, config.steps, config.schedule, config.warmup_steps, config.min_lr_ratio
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def advance_schedule(scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """Step the schedule by one training step, also when the step made no optimizer update
    (every group dropped): the schedule follows training steps, so torch's warning about
    stepping a scheduler before its optimizer does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Detected call of `lr_scheduler.step", category=UserWarning
        )
        scheduler.step()
