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


def write_prompts(records: list[PromptRecord], path: str | Path) -> None:
    """Write records as JSON Lines (fields left out when empty)."""
    lines = []
    for record in records:
        obj: dict = {"prompt": record.prompt}
        if record.negative_prompt:
            obj["negative_prompt"] = record.negative_prompt
        if record.metadata:
            obj["metadata"] = record.metadata
        lines.append(json.dumps(obj))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


BUILTIN_PROMPT_SETS = ("shapes:train", "shapes:eval")
"""Built-in prompt sets: the shapes world's train and held-out eval prompts (the same records
as prompts/shapes_train.jsonl and prompts/shapes_eval.jsonl, generated in code so an installed
package needs no data files)."""


def shapes_prompt_records(split: str) -> list[PromptRecord]:
    """The shapes world's "train" or "eval" prompt records, with contrastive negatives."""
    from t2i_gcpo.toy.scenes import caption, prompt_splits, scene_metadata

    train, held_out = prompt_splits()
    sets = {"train": train, "eval": held_out}[split]
    return [PromptRecord(caption(obj), caption(neg), scene_metadata(obj)) for obj, neg in sets]


def resolve_prompts(name_or_path: str | Path) -> list[PromptRecord]:
    """A built-in prompt-set name (BUILTIN_PROMPT_SETS) or a .jsonl/.txt path -> records."""
    if str(name_or_path) in BUILTIN_PROMPT_SETS:
        return shapes_prompt_records(str(name_or_path).split(":", 1)[1])
    return load_prompts(name_or_path)
