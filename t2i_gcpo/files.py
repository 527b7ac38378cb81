"""Files that appear whole or not at all: write to a hidden sibling, then rename into place.

A crash or a kill while writing leaves the previous file or folder (or nothing), never a
half-written one: readers only ever see complete outputs. Every writer of a result file
(checkpoints, policy folders, figures, pages, tensors, the toy assets) goes through here.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    """Delete a file or a folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def replace_path(source: Path, target: Path) -> Path:
    """Move the complete `source` (file or folder) onto `target`, replacing what is there.

    A file is replaced in one atomic rename. A folder cannot be renamed over a non-empty
    folder, so the old one is first renamed aside and deleted after the new one is in place:
    at every moment `target` is either the old complete folder, absent for an instant, or the
    new complete one.
    """
    source, target = Path(source), Path(target)
    if source.is_dir() and target.exists():
        retired = target.with_name(f".{target.name}.retired-{uuid.uuid4().hex[:8]}")
        os.replace(target, retired)
        os.replace(source, target)
        _remove(retired)
    else:
        os.replace(source, target)
    return target


@contextmanager
def atomic_path(target: str | Path, folder: bool = False) -> Iterator[Path]:
    """Yield a hidden sibling path of `target` to write into; on success it replaces `target`.

    With `folder=True` the yielded path is an empty folder; otherwise it is a file path that
    does not exist yet. If the block raises, the partial output is removed and `target` is
    left as it was.
    """
    target = Path(target).expanduser()
    if folder and target.is_file():
        raise ValueError(f"{target} is a file; expected a folder path")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    if folder:
        staging.mkdir()
    try:
        yield staging
    except BaseException:
        _remove(staging)
        raise
    replace_path(staging, target)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a hidden sibling and a rename; returns `path`."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)
