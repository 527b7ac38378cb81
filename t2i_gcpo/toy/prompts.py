"""The shapes world's prompt sets ("shapes:train", "shapes:eval"), published under the
entry-point group "t2i_gcpo.prompt_sets"; the same records as prompts/shapes_*.jsonl,
generated in code so that an installed package needs no data files.

Each set holds the same number of records for every GenEval category (a category with fewer
distinct prompts repeats them, one with more is subsampled with a fixed seed), so that a
category's accuracy rests on as many images as any other's. Each record has GenEval metadata
and a negative caption: one of its hard negatives, chosen with the set's seed.
"""

from __future__ import annotations

import numpy as np

from t2i_gcpo.data.prompts import PromptFileError, PromptRecord
from t2i_gcpo.toy.scenes import CATEGORIES, hard_negatives, split_metadata

PER_CATEGORY = {"train": 32, "eval": 16}
"""Records per category in each set."""


def balanced_records(split: str, per_category: int, seed: int = 0) -> list[PromptRecord]:
    """`per_category` records of each category of a split (see the module docstring)."""
    rng = np.random.default_rng(seed)
    records = []
    for tag in CATEGORIES:
        pool = [m for m in split_metadata(split) if m["tag"] == tag]
        if len(pool) >= per_category:
            chosen = [pool[i] for i in sorted(rng.choice(len(pool), per_category, replace=False))]
        else:
            chosen = [pool[i % len(pool)] for i in range(per_category)]
        for metadata in chosen:
            negatives = hard_negatives(metadata)
            negative = negatives[rng.integers(len(negatives))]["prompt"]
            fields = {k: v for k, v in metadata.items() if k != "prompt"}
            records.append(PromptRecord(metadata["prompt"], negative, fields))
    return records


def shapes_prompt_set(split: str) -> list[PromptRecord]:
    """The shapes world's "train" (compositions seen in pretraining) or "eval" (held-out
    compositions) prompt records."""
    if split not in PER_CATEGORY:
        raise PromptFileError(
            f"the shapes prompt set has splits {tuple(PER_CATEGORY)}; got {split!r}"
        )
    return balanced_records(split, PER_CATEGORY[split])
