"""Where the shapes world's shipped models live, and how to load them.

The assets are built by `t2i-gcpo toy build` and shipped inside the package (safetensors), so
nothing trains or downloads at first use. `load_shapes_policy` is published as the policy
"shapes" under the entry-point group "t2i_gcpo.policies".
"""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).parent / "assets"


def _asset(name: str, root: str | Path | None = None) -> Path:
    """The path of asset `name` under `root` (default: the shipped assets); must exist."""
    path = Path(root or ASSETS_DIR) / name
    if not path.exists():
        raise FileNotFoundError(
            f"shapes-world asset {path} is missing; rebuild the assets with `t2i-gcpo toy build` "
            f"(or pass --out to build them elsewhere)"
        )
    return path


def shapes_policy_path(root: str | Path | None = None) -> Path:
    """Folder of the pretrained tiny Janus policy (save_pretrained layout)."""
    return _asset("policy", root)


def shapes_clip_path(root: str | Path | None = None) -> Path:
    """open_clip local-dir folder of the shapes world's CLIP."""
    return _asset("clip", root)


def shapes_aesthetic_path(root: str | Path | None = None) -> Path:
    """safetensors state dict of the shapes world's aesthetic head (AestheticMLP over 64-d)."""
    return _asset("aesthetic.safetensors", root)


def load_shapes_policy(dtype=None, device=None, root: str | Path | None = None):
    """The pretrained shapes policy as a JanusPolicy. Its generation_config sets the default
    guidance scale to 1.0: its null branch is learnt from 10% caption dropout in a short
    pretraining, and stronger guidance lowers its held-out accuracy (see the README); the null
    branch is still scored for GCPO's credit."""
    from t2i_gcpo.policies.janus import JanusPolicy

    return JanusPolicy.from_pretrained(shapes_policy_path(root), dtype=dtype, device=device)
