"""The shapes world's prompt sets ("shapes:train", "shapes:eval"), published under the
entry-point group "t2i_gcpo.prompt_sets"; the same records as prompts/shapes_*.jsonl,
generated in code so that an installed package needs no data files."""

from __future__ import annotations

from t2i_gcpo.data.prompts import PromptFileError, PromptRecord
from t2i_gcpo.toy.scenes import caption, prompt_splits, scene_metadata

SPLITS = ("train", "eval")


def shapes_prompt_set(split: str) -> list[PromptRecord]:
    """The shapes world's "train" or "eval" prompt records, with contrastive negatives."""
    if split not in SPLITS:
        raise PromptFileError(f"the shapes prompt set has splits {SPLITS}; got {split!r}")
    train, held_out = prompt_splits()
    sets = {"train": train, "eval": held_out}[split]
    return [PromptRecord(caption(obj), caption(neg), scene_metadata(obj)) for obj, neg in sets]
