"""Training checkpoints: output_dir/checkpoints/step_NNNNNN/, written whole or not at all.

A checkpoint folder holds
    policy/              the policy (policy.save: loadable by load_policy)
    optimizer.pt         optimizer state dict (tensors and plain values)
    scheduler.pt         learning-rate scheduler state dict
    rng_rank{R}.pt       each process's sampling generator and torch RNG state
    trainer_state.json   step, prompt order, number of processes
Everything is written into a hidden staging folder first and renamed into place, so a folder
named step_NNNNNN is always complete. Tensors load back with torch.load(weights_only=True).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from t2i_gcpo.files import replace_path

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
POLICY_DIR = "policy"
_NAME = re.compile(r"^step_(\d+)$")


def checkpoint_name(step: int) -> str:
    """'step_000010' for step 10."""
    return f"step_{step:06d}"


def checkpoints_root(output_dir: str | Path) -> Path:
    """output_dir/checkpoints."""
    return Path(output_dir) / CHECKPOINTS


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run as (step, folder), oldest first."""
    root = checkpoints_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        match = _NAME.match(folder.name)
        if match and (folder / STATE_FILE).is_file():
            found.append((int(match[1]), folder))
    return sorted(found)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def staging_dir(output_dir: str | Path, step: int) -> Path:
    """The hidden folder a checkpoint is written into before it is renamed into place."""
    return checkpoints_root(output_dir) / f".{checkpoint_name(step)}.staging"


def publish(staging: Path, output_dir: str | Path, step: int) -> Path:
    """Rename a fully written staging folder to checkpoints/step_NNNNNN (replacing one there)."""
    return replace_path(staging, checkpoints_root(output_dir) / checkpoint_name(step))


def prune(output_dir: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` complete checkpoints; return the deleted folders."""
    old = [folder for _, folder in list_checkpoints(output_dir)[:-keep_last]]
    for folder in old:
        shutil.rmtree(folder)
    return old


def save_tensors(obj: Any, path: Path) -> None:
    """torch.save a state dict (tensors, numbers, strings, lists, tuples, dicts only)."""
    torch.save(obj, path)


def load_tensors(path: Path) -> Any:
    """torch.load with weights_only=True onto the CPU; FileNotFoundError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} is missing; the checkpoint is incomplete")
    return torch.load(path, map_location="cpu", weights_only=True)


def write_state(folder: Path, state: dict[str, Any]) -> None:
    """Write trainer_state.json (plain JSON values) into `folder`."""
    (folder / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def read_state(folder: Path) -> dict[str, Any]:
    """Read a checkpoint's trainer_state.json."""
    return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))


def rng_file(folder: Path, rank: int) -> Path:
    """The RNG-state file of process `rank` in a checkpoint folder."""
    return folder / f"rng_rank{rank}.pt"
