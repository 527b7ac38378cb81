"""What a run writes while it trains: metrics.jsonl, sample grids, tracker hyperparameters.

Nothing here decides what to log; the trainer does. These helpers make every logged value a
finite number, combine per-minibatch statistics across processes, and draw image grids.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from t2i_gcpo.files import atomic_path, write_text_atomic


def finite_metrics(metrics: Mapping[str, Any]) -> dict[str, int | float]:
    """Metrics as plain ints / floats; non-finite or non-numeric values are dropped (warned)."""
    clean: dict[str, int | float] = {}
    dropped = []
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            value = value.item()
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            clean[key] = value
        else:
            dropped.append(key)
    if dropped:
        print(f"warning: not logging non-finite metrics {dropped}", file=sys.stderr)
    return clean


def _nonblank_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def drop_records_after(path: str | Path, step: int) -> None:
    """Rewrite a JSON-lines log of {"step": ...} records without those after `step` (a resume
    from `step` logs them again); no file, nothing to do."""
    path = Path(path)
    if not path.is_file():
        return
    lines = _nonblank_lines(path)
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) < len(lines):
        write_text_atomic(path, "".join(f"{line}\n" for line in kept))


class MetricsLog:
    """output_dir/metrics.jsonl: one JSON object per logged step, every value a finite number."""

    def __init__(self, path: str | Path, keep_until_step: int | None = None) -> None:
        """Open `path` for appending; with `keep_until_step` (a resume), drop later records."""
        self.path = Path(path)
        if keep_until_step is not None:
            drop_records_after(self.path, keep_until_step)

    def append(self, step: int, metrics: Mapping[str, Any]) -> dict[str, int | float]:
        """Write {"step": step, **metrics} (finite values only) as one line; return it."""
        record = {"step": step, **finite_metrics(metrics)}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return record

    def read(self) -> list[dict[str, int | float]]:
        """All records written so far."""
        return (
            [json.loads(line) for line in _nonblank_lines(self.path)] if self.path.is_file() else []
        )


def combine_stats(per_process: list[dict[str, list[float]]]) -> dict[str, float]:
    """Per-process lists of values per key -> one value per key over all processes.

    Keys ending in "_max" take the maximum, "_min" the minimum, all others the mean.
    """
    values: dict[str, list[float]] = defaultdict(list)
    for stats in per_process:
        for key, items in stats.items():
            values[key].extend(items)
    combined = {}
    for key, items in sorted(values.items()):
        if key.endswith("_max"):
            combined[key] = max(items)
        elif key.endswith("_min"):
            combined[key] = min(items)
        else:
            combined[key] = sum(items) / len(items)
    return combined


class StatsAccumulator:
    """Collects scalar statistics per key over a step's minibatches on one process."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)

    def add(self, metrics: Mapping[str, float], prefix: str = "") -> None:
        """Record every value of `metrics` under prefix + key."""
        for key, value in metrics.items():
            self.values[prefix + key].append(float(value))

    def as_dict(self) -> dict[str, list[float]]:
        """Plain dict of lists (picklable, for gathering across processes)."""
        return dict(self.values)


class StageTimer:
    """Wall-clock seconds per named stage: `with timer("sample"): ...` -> {"time/sample": s}."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[f"time/{stage}"] += time.perf_counter() - start

    def as_dict(self) -> dict[str, float]:
        """{"time/<stage>": seconds}."""
        return dict(self.seconds)


def save_sample_grid(
    images: torch.Tensor, captions: list[str], path: str | Path, images_per_row: int
) -> Path:
    """images (N, 3, H, W) in [0, 1] -> a PNG grid at `path`, with captions in `path`.txt."""
    from torchvision.utils import save_image

    path = Path(path)
    with atomic_path(path) as partial:
        grid = images.detach().float().cpu()
        save_image(grid, partial, format="png", nrow=images_per_row, padding=1, pad_value=1.0)
    write_text_atomic(path.with_suffix(".txt"), "\n".join(captions) + "\n")
    return path


def flat_hparams(
    config: Mapping[str, Any], prefix: str = ""
) -> dict[str, int | float | str | bool]:
    """A nested config -> {"section.field": value} with lists and None written as strings
    (TensorBoard's hparams accept only scalars)."""
    flat: dict[str, int | float | str | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_hparams(value, prefix=f"{name}."))
        elif isinstance(value, int | float | str | bool):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def short_names(labels: list[str]) -> dict[str, str]:
    """Reward labels -> short metric names: 'path/to/file.py:score' and 'pkg.mod:score' become
    'score' (suffixed _2, _3, ... where two would clash); plain names stay as they are."""
    names: dict[str, str] = {}
    for label in labels:
        base = label.rsplit(":", 1)[-1]
        name, k = base, 1
        while name in names.values():
            k += 1
            name = f"{base}_{k}"
        names[label] = name
    return names


def format_line(step: int, total: int, metrics: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """'step 3/40 reward/mean 0.512 loss -0.0123 ...' for the keys present in `metrics`."""
    parts = [f"step {step}/{total}"]
    parts += [f"{key} {metrics[key]:.4g}" for key in keys if key in metrics]
    return "  ".join(parts)
