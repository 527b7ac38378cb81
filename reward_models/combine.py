"""Several rewards, weighted and summed, with every reward's output checked.

`CombinedReward([RewardSpec("clip", 1.0), RewardSpec("./my_rm.py:score", 0.5, {...})])` loads
each reward once; a call returns the weighted sum and each reward's raw values. A reward that
raises, or returns the wrong type or length, is an error naming it. Non-finite values (NaN, inf)
are an error too, unless `on_nonfinite="drop"`: then the samples with any non-finite reward are
marked invalid (total 0.0 there), counted, and training can go on without them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from reward_models.base import RewardError, RewardFn, to_pil, wants_pil
from reward_models.registry import as_positional_reward, load_reward

NONFINITE_POLICIES = ("error", "drop")
RANGE_TOLERANCE = 1e-3  # images may overshoot [0, 1] by this much (decoder round-off)

__all__ = ["CombinedReward", "RewardError", "RewardResult", "RewardSpec", "check_reward_output"]


@dataclass
class RewardSpec:
    """One reward of a weighted sum, as a config names it.

    name: a built-in name, 'path/to/file.py:attr', 'package.module:attr' or an entry-point name
    (see reward_models.registry); it is also the reward's label in reports.
    weight: its weight in the sum (0 reports the reward without training on it).
    kwargs: keyword arguments for the reward's class or factory.
    reward: an already-built reward callable; when given, `name` is only its label.
    """

    name: str
    weight: float = 1.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    reward: RewardFn | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name={self.name!r}; expected a non-empty string")
        if isinstance(self.weight, bool) or not isinstance(self.weight, int | float):
            raise ValueError(f"weight={self.weight!r} for reward {self.name!r}; expected a number")
        if not np.isfinite(self.weight):
            raise ValueError(f"weight={self.weight!r} for reward {self.name!r}; expected finite")
        if not isinstance(self.kwargs, Mapping):
            raise ValueError(f"kwargs={self.kwargs!r} for reward {self.name!r}; expected a mapping")
        if self.reward is not None and not callable(self.reward):
            raise ValueError(f"reward={self.reward!r} for {self.name!r} is not callable")
        if self.reward is not None and self.kwargs:
            raise ValueError(f"reward {self.name!r} is already built; kwargs must be empty")
        self.weight = float(self.weight)
        self.kwargs = dict(self.kwargs)

    @classmethod
    def from_config(cls, entry: RewardSpec | Mapping[str, Any] | str) -> RewardSpec:
        """A spec from a config entry: a RewardSpec, a mapping {name, weight?, kwargs?} or a
        name."""
        if isinstance(entry, RewardSpec):
            return entry
        if isinstance(entry, str):
            return cls(entry)
        if not isinstance(entry, Mapping):
            raise ValueError(
                f"reward entry {entry!r}; expected a name or a mapping {{name, weight, kwargs}}"
            )
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(entry) - allowed)
        if unknown or "name" not in entry:
            raise ValueError(
                f"reward entry {dict(entry)!r}: needs 'name', may have {sorted(allowed - {'name'})}"
                + (f"; unknown keys {unknown}" if unknown else "")
            )
        return cls(**entry)


@dataclass
class RewardResult:
    """The rewards of N samples.

    total: (N,) float32 weighted sum (0.0 where `valid` is False).
    per_reward: label -> (N,) float32 raw values of each reward, as returned.
    valid: (N,) bool, False where a sample was dropped for a non-finite value.
    num_dropped: how many samples were dropped.
    """

    total: torch.Tensor
    per_reward: dict[str, torch.Tensor]
    valid: torch.Tensor
    num_dropped: int

    @staticmethod
    def concat(results: list[RewardResult]) -> RewardResult:
        """Results of the same rewards -> one, samples appended in order."""
        return RewardResult(
            torch.cat([r.total for r in results]),
            {k: torch.cat([r.per_reward[k] for r in results]) for k in results[0].per_reward},
            torch.cat([r.valid for r in results]),
            sum(r.num_dropped for r in results),
        )

    def subset(self, rows: torch.Tensor) -> RewardResult:
        """The samples `rows` (indices), in that order."""
        valid = self.valid[rows]
        per_reward = {k: v[rows] for k, v in self.per_reward.items()}
        return RewardResult(self.total[rows], per_reward, valid, int((~valid).sum()))


def unique_labels(names: Iterable[str]) -> list[str]:
    """Names made unique by suffixes: ["clip", "clip", "oracle"] -> ["clip", "clip_2", "oracle"]."""
    labels: list[str] = []
    for name in names:
        label, k = name, 1
        while label in labels:
            k += 1
            label = f"{name}_{k}"
        labels.append(label)
    return labels


def check_inputs(
    images: Any, prompts: Any, metadata: Sequence[dict] | None
) -> tuple[list[str], list[dict]]:
    """Validate a reward call's inputs; returns prompts and metadata as lists (metadata None ->
    N empty dicts)."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor (N, 3, H, W); got {_describe(images)}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (N, 3, H, W); got {tuple(images.shape)}")
    low, high = images.min().item(), images.max().item()
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(
            f"images must be in [0, 1]; got values in [{low:.3g}, {high:.3g}] "
            "(for decoder output in [-1, 1] pass (x + 1) / 2)"
        )
    n = len(images)
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts must be a list of {n} strings; got {_describe(prompts)}")
    if len(prompts) != n:
        raise ValueError(f"got {n} images but {len(prompts)} prompts")
    metadata = [{} for _ in range(n)] if metadata is None else list(metadata)
    if len(metadata) != n or not all(isinstance(m, Mapping) for m in metadata):
        raise ValueError(
            f"metadata must be a list of {n} dicts (or None); got {_describe(metadata)}"
        )
    return list(prompts), metadata


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, list | tuple):
        kinds = sorted({type(v).__name__ for v in value})
        return f"{type(value).__name__} of {len(value)} ({', '.join(kinds)})"
    return f"{type(value).__name__} {value!r:.80}"


def check_reward_output(label: str, value: Any, n: int, device: torch.device) -> torch.Tensor:
    """A reward's return value -> (n,) float32 on `device`, or RewardError naming the reward.
    Accepts a real-valued tensor, or a list / tuple / ndarray of n numbers; finiteness is checked
    by the caller."""
    if isinstance(value, list | tuple | np.ndarray):
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, RuntimeError) as err:
            raise RewardError(
                f"reward {label!r} returned {_describe(value)}, not {n} numbers ({err})"
            ) from err
        if array.dtype.kind not in "biuf":
            raise RewardError(
                f"reward {label!r} returned {_describe(value)}; expected {n} real numbers"
            )
        value = torch.from_numpy(array.astype(np.float64))
    if not isinstance(value, torch.Tensor):
        raise RewardError(
            f"reward {label!r} returned {_describe(value)}; expected a float tensor of shape "
            f"({n},) or a list of {n} numbers"
        )
    if value.is_complex() or not (value.is_floating_point() or value.dtype in _INTEGRAL):
        raise RewardError(
            f"reward {label!r} returned a {value.dtype} tensor; expected real numbers"
        )
    if tuple(value.shape) != (n,):
        raise RewardError(
            f"reward {label!r} returned shape {tuple(value.shape)} for {n} images; expected "
            f"({n},), one score per image"
        )
    return value.detach().to(device=device, dtype=torch.float32)


_INTEGRAL = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def call_reward(label: str, reward: RewardFn, images: Any, prompts: list, metadata: list) -> Any:
    """reward(images, prompts, metadata), any exception re-raised as RewardError naming it."""
    try:
        return reward(images, prompts, metadata)
    except Exception as err:
        raise RewardError(f"reward {label!r} raised {type(err).__name__}: {err}") from err


def _nonfinite_message(label: str, values: torch.Tensor) -> str:
    bad = (~values.isfinite()).nonzero().flatten().tolist()
    shown = ", ".join(f"{i}: {values[i].item()}" for i in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return (
        f"reward {label!r} returned non-finite values at samples {{{shown}}}{more}; fix the "
        "reward, or use on_nonfinite='drop' to drop such samples and go on"
    )


class CombinedReward:
    """Weighted sum of rewards: images (N, 3, H, W) in [0, 1], prompts, metadata -> RewardResult.

    specs: RewardSpec, mappings {name, weight, kwargs} or names; each reward is loaded once.
    on_nonfinite: "error" (default) raises RewardError on any NaN / inf; "drop" marks those
    samples invalid, counts them in `num_dropped` and gives them a total of 0.0.
    Outputs are float32 on the images' device; rewards run under torch.no_grad().
    """

    def __init__(
        self,
        specs: Sequence[RewardSpec | Mapping[str, Any] | str],
        on_nonfinite: str = "error",
    ) -> None:
        if on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"on_nonfinite={on_nonfinite!r}; expected one of {NONFINITE_POLICIES}")
        specs = [RewardSpec.from_config(entry) for entry in specs]
        if not specs:
            raise ValueError("specs is empty; give at least one reward")
        self.on_nonfinite = on_nonfinite
        self.labels = unique_labels(spec.name for spec in specs)
        self.weights = {label: spec.weight for label, spec in zip(self.labels, specs, strict=True)}
        self.rewards = {
            label: (
                load_reward(spec.name, **spec.kwargs)
                if spec.reward is None
                else as_positional_reward(label, spec.reward)
            )
            for label, spec in zip(self.labels, specs, strict=True)
        }

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict] | None = None
    ) -> RewardResult:
        prompts, metadata = check_inputs(images, prompts, metadata)
        n, device = len(images), images.device
        pil = None
        per_reward = {}
        for label, reward in self.rewards.items():
            if wants_pil(reward) and pil is None:
                pil = to_pil(images)
            inputs = pil if wants_pil(reward) else images
            value = call_reward(label, reward, inputs, prompts, metadata)
            per_reward[label] = check_reward_output(label, value, n, device)
        return self._combine(per_reward, n, device)

    def _combine(self, per_reward: dict[str, torch.Tensor], n: int, device) -> RewardResult:
        valid = torch.ones(n, dtype=torch.bool, device=device)
        for label, values in per_reward.items():
            finite = values.isfinite()
            if self.on_nonfinite == "error" and not finite.all():
                raise RewardError(_nonfinite_message(label, values))
            valid &= finite
        total = torch.zeros(n, dtype=torch.float32, device=device)
        for label, values in per_reward.items():
            total += self.weights[label] * torch.where(valid, values, torch.zeros_like(values))
        return RewardResult(total, per_reward, valid, int((~valid).sum()))
