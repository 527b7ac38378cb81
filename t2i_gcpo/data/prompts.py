"""Prompt files: JSON Lines (one object a line) or plain text (one prompt a line).

JSONL fields: `prompt` (required, non-empty string), `negative_prompt` (optional string),
`metadata` (optional object). Any other field is folded into `metadata`, so GenEval-style files
(`tag`, `include`, `prompt`) load as they are. Blank lines are skipped, in .txt files also
lines starting with '#'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from reward_models.registry import PluginRegistry


@dataclass(frozen=True)
class PromptRecord:
    """One prompt with its optional contrastive negative and metadata."""

    prompt: str
    negative_prompt: str | None = None
    metadata: dict = field(default_factory=dict)


class PromptFileError(ValueError):
    """A prompt file that cannot be read: names the file and, where known, the line."""


def _record_from_json(obj: object, where: str) -> PromptRecord:
    """A parsed JSON line -> PromptRecord, checking every field."""
    if not isinstance(obj, dict):
        raise PromptFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    obj = dict(obj)
    prompt = obj.pop("prompt", None)
    if not isinstance(prompt, str) or not prompt.strip():
        raise PromptFileError(f"{where}: field 'prompt' must be a non-empty string, got {prompt!r}")
    negative = obj.pop("negative_prompt", None)
    if negative is not None and (not isinstance(negative, str) or not negative.strip()):
        raise PromptFileError(
            f"{where}: field 'negative_prompt' must be a non-empty string when given, "
            f"got {negative!r}"
        )
    metadata = obj.pop("metadata", {})
    if not isinstance(metadata, dict):
        raise PromptFileError(f"{where}: field 'metadata' must be a JSON object, got {metadata!r}")
    return PromptRecord(prompt.strip(), negative.strip() if negative else None, {**obj, **metadata})


def load_prompts(path: str | Path) -> list[PromptRecord]:
    """Read a .jsonl or .txt prompt file; raises PromptFileError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompt file {path} does not exist (expected a .jsonl or .txt file)")
    if path.suffix not in (".jsonl", ".txt"):
        raise PromptFileError(f"prompt file {path}: expected a .jsonl or .txt file")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or (path.suffix == ".txt" and text.startswith("#")):
            continue
        where = f"{path}, line {number}"
        if path.suffix == ".txt":
            records.append(PromptRecord(text))
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise PromptFileError(f"{where}: not valid JSON ({err.msg})") from err
        records.append(_record_from_json(obj, where))
    if not records:
        raise PromptFileError(f"prompt file {path} holds no prompts")
    return records


PROMPT_SETS = PluginRegistry("prompt set", "t2i_gcpo.prompt_sets")
"""Named prompt sets, used as "<set>:<split>" (e.g. "shapes:train"): a function split -> records,
registered with `register_prompt_set` or published under the entry-point group
"t2i_gcpo.prompt_sets" (the shapes world publishes "shapes")."""


def register_prompt_set(name: str):
    """Decorator: make `fn(split) -> list[PromptRecord]` loadable as "<name>:<split>"."""
    return PROMPT_SETS.register(name)


def resolve_prompts(name_or_path: str | Path) -> list[PromptRecord]:
    """A named prompt set "<set>:<split>" or a .jsonl / .txt path -> records.

    An existing file always wins; "<set>:<split>" is looked up in PROMPT_SETS. Raises
    PromptFileError naming what was tried."""
    text = str(name_or_path)
    if Path(text).expanduser().is_file():
        return load_prompts(Path(text).expanduser())
    set_name, colon, split = text.partition(":")
    loader = PROMPT_SETS.get(set_name) if colon and split else None
    if loader is None:
        if colon and split:
            raise PromptFileError(
                f"{text!r} is neither a prompt file nor a known prompt set; prompt sets: "
                f"{', '.join(PROMPT_SETS.names()) or 'none'} (used as '<set>:<split>')"
            )
        return load_prompts(text)
    return list(loader(split))
