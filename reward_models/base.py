"""The reward contract: images (N, 3, H, W) in [0, 1], N prompts, N metadata dicts -> scores (N,).

A reward is any callable with that signature. `RewardModel` is an optional base class for rewards
that hold a model; a plain function works too. A reward that wants PIL images instead of a tensor
says so with a `wants_pil = True` attribute (on its class or on the function) and is then called
with a list of N RGB `PIL.Image.Image`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from PIL import Image

# images, prompts, metadata -> scores (N,): a tensor, or a list / array of N numbers.
RewardFn = Callable[[Any, Sequence[str], Sequence[dict]], Any]


class RewardError(ValueError):
    """A reward that could not be loaded, raised, or returned something other than N finite
    numbers; the message names the reward."""


@dataclass
class Verdict:
    """A judge's verdict on one image.

    correct: whether the image satisfies its prompt (GenEval's strict rule for its category).
    masks: (K, H, W) bool, the pixels of each object found for the prompt's requirements (K may
        be 0 when nothing was found); where credit maps are compared with the objects.
    reason: why the image is wrong ("" when correct).
    details: anything else the judge reports. `found` (int), how many objects it found in all,
        named by the prompt or not, is read by t2i_gcpo.evaluation ("objects/extra").
    """

    correct: bool
    masks: torch.Tensor
    reason: str = ""
    details: dict = field(default_factory=dict)


@runtime_checkable
class Judge(Protocol):
    """A reward that can also explain itself: one Verdict per image (e.g. a GenEval oracle)."""

    def judge(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> list[Verdict]:
        """images (N, 3, H, W) in [0, 1], N prompts, N metadata dicts -> N verdicts."""


@runtime_checkable
class WrongVersions(Protocol):
    """A judge that can also make a right image wrong in one place (for the blame test)."""

    def wrong_version(
        self, image: torch.Tensor, prompt: str, metadata: dict, seed: int
    ) -> torch.Tensor | None:
        """image (3, H, W) that it judges right -> the same image with one object the prompt
        names redrawn wrongly in place (another class or colour), judged wrong; None when it
        cannot make one."""


class RewardModel(ABC):
    """Base class of rewards: images (N, 3, H, W) in [0, 1], prompts, metadata -> scores (N,)."""

    name: str = "reward"
    wants_pil: bool = False

    @abstractmethod
    def __call__(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> torch.Tensor:
        """images (N, 3, H, W) float in [0, 1], N prompts, N metadata dicts -> scores (N,)."""


def wants_pil(reward: RewardFn) -> bool:
    """True when `reward` declares (attribute `wants_pil`) that it takes PIL images."""
    return bool(getattr(reward, "wants_pil", False))


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """images (N, 3, H, W) in [0, 1] -> N RGB PIL images (rounded to 8 bits)."""
    pixels = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return [Image.fromarray(image.permute(1, 2, 0).cpu().numpy()) for image in pixels]
