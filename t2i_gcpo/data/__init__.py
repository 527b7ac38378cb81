"""Prompts in: prompt files and named sets, the seeded order they are drawn in, and the
negative captions of the credit contrast."""

from t2i_gcpo.data.negatives import resolve_negatives, swap_caption
from t2i_gcpo.data.order import PromptOrder
from t2i_gcpo.data.prompts import (
    PROMPT_SETS,
    PromptFileError,
    PromptRecord,
    load_prompts,
    register_prompt_set,
    resolve_prompts,
)

__all__ = [
    "PROMPT_SETS",
    "PromptFileError",
    "PromptOrder",
    "PromptRecord",
    "load_prompts",
    "register_prompt_set",
    "resolve_negatives",
    "resolve_prompts",
    "swap_caption",
]
