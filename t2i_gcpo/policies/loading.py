"""`load_policy`: one entry point from a name, a local folder or a hub id to a Policy.

Names come from POLICIES: factories registered with `register_policy` or published by
installed packages under the entry-point group "t2i_gcpo.policies" (the shapes world publishes
"shapes" this way), each called as factory(dtype=..., device=...).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch

from reward_models.registry import PluginRegistry
from t2i_gcpo.policies.base import Policy
from t2i_gcpo.policies.janus import JanusPolicy
from t2i_gcpo.policies.lora import is_adapter_folder, load_adapters

POLICIES = PluginRegistry("policy", "t2i_gcpo.policies")
"""Policy names -> factories called as factory(dtype=..., device=...)."""


def register_policy(name: str):
    """Decorator: make `factory(dtype=None, device=None) -> Policy` loadable as `name`."""
    return POLICIES.register(name)


SUPPORTED_MODEL_TYPES: dict[str, Callable[..., Policy]] = {"janus": JanusPolicy.from_pretrained}
"""config.json `model_type` -> loader(path_or_id, dtype=..., device=...)."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _looks_like_path(name: str) -> bool:
    """True for strings that can only mean a filesystem path (./x, /x, ~/x, a/b/c, a\\b)."""
    return name.startswith((".", "/", "~")) or (os.sep in name and not _HUB_ID.match(name))


def _expected() -> str:
    """What load_policy accepts, for error messages."""
    builtins = ", ".join(POLICIES.names()) or "none installed"
    return (
        "a folder with config.json and model weights (model_type one of "
        f"{sorted(SUPPORTED_MODEL_TYPES)}), a hub id 'owner/name', or a policy name "
        f"({builtins})"
    )


def _load_local(folder: Path, dtype, device) -> Policy:
    """A local model folder -> Policy: LoRA adapters over their base policy (policies.lora),
    else chosen by config.json's model_type."""
    if is_adapter_folder(folder):
        return load_adapters(folder, lambda base: load_policy(base, dtype=dtype, device=device))
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no config.json; expected {_expected()}")
    model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{config_file} has model_type {model_type!r}; supported model types are "
            f"{sorted(SUPPORTED_MODEL_TYPES)}"
        )
    return SUPPORTED_MODEL_TYPES[model_type](folder, dtype=dtype, device=device)


def _load_hub(repo_id: str, dtype, device) -> Policy:
    """A hub id -> JanusPolicy; a failed download (e.g. offline) raises OSError saying so."""
    try:
        return JanusPolicy.from_pretrained(repo_id, dtype=dtype, device=device)
    except OSError as error:
        raise OSError(
            f"could not load hub id {repo_id!r} (offline, a typo, or not a Janus checkpoint "
            f"in safetensors?); expected {_expected()}"
        ) from error


def load_policy(
    name_or_path: str | Path,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
) -> Policy:
    """A policy name (POLICIES), a local model folder or a hub id 'owner/name' -> Policy.

    Tried in that order. A missing path raises FileNotFoundError; a folder of an unsupported
    model_type raises ValueError listing the supported ones.
    """
    name = str(name_or_path)
    factory = POLICIES.get(name) if not isinstance(name_or_path, Path) else None
    if factory is not None:
        return factory(dtype=dtype, device=device)
    path = Path(name).expanduser()
    if path.is_dir():
        return _load_local(path, dtype, device)
    if path.exists():
        raise FileNotFoundError(f"{name} is a file, not a folder; expected {_expected()}")
    if isinstance(name_or_path, Path) or _looks_like_path(name):
        raise FileNotFoundError(f"no such folder: {name}; expected {_expected()}")
    if _HUB_ID.match(name):
        return _load_hub(name, dtype, device)
    raise ValueError(f"unknown policy {name!r}; expected {_expected()}")
