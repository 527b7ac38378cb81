"""Negative prompts of the GCPO credit contrast: the one place a negative mode becomes captions.

Modes (algo.negative, `t2i-gcpo heatmap --negative-mode`): "null" is the CFG null prompt (no
caption: the resolver returns None); "caption" is each record's own `negative_prompt`; "swap"
derives a contrastive caption by swapping one colour word of the prompt for another colour, or,
when it names no colour, one object word for another object. The swap is deterministic: it
depends only on the prompt and the seed. A record that a mode cannot serve is an error that
names it; nothing falls back to another mode.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from t2i_gcpo.algos import NEGATIVE_MODES
from t2i_gcpo.data.prompts import PromptRecord

COLOR_GROUPS: tuple[tuple[str, ...], ...] = (
    ("red", "green", "blue", "yellow", "purple", "cyan"),
    ("black", "white", "orange", "pink", "brown", "gray", "grey", "gold", "silver"),
)
"""Colour words; a colour is swapped for another of its own group (so a prompt written with the
first group's colours, as the shapes world's are, keeps to them)."""

OBJECT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("circle", "square", "triangle"),
    ("star", "heart", "cat", "dog", "bird", "horse", "cow", "house", "tree", "car", "bus",
     "boat", "apple", "banana", "cup", "chair", "clock", "flower", "person"),
)  # fmt: skip
"""Object words, swapped within their group when a prompt names no colour."""

_WORD = re.compile(r"[A-Za-z]+")


def _swap_in_groups(prompt: str, groups: Sequence[Sequence[str]], rng: random.Random) -> str | None:
    """Swap one word of `prompt` found in `groups` for another word of its group, or None."""
    matches = [m for m in _WORD.finditer(prompt) if any(m[0].lower() in g for g in groups)]
    if not matches:
        return None
    present = {m[0].lower() for m in _WORD.finditer(prompt)}
    match = rng.choice(matches)
    group = next(g for g in groups if match[0].lower() in g)
    candidates = [w for w in group if w not in present] or [
        w for w in group if w != match[0].lower()
    ]
    if not candidates:
        return None
    word = rng.choice(candidates)
    if match[0][0].isupper():
        word = word.capitalize()
    return prompt[: match.start()] + word + prompt[match.end() :]


def swap_caption(prompt: str, seed: int = 0) -> str:
    """'a red circle' -> e.g. 'a cyan circle': one colour (else object) word swapped.

    Raises ValueError when the prompt names none of the words in COLOR_GROUPS / OBJECT_GROUPS.
    """
    rng = random.Random(f"{seed}\0{prompt}")  # str seeds hash with sha512: stable everywhere
    for groups in (COLOR_GROUPS, OBJECT_GROUPS):
        swapped = _swap_in_groups(prompt, groups, rng)
        if swapped is not None:
            return swapped
    raise ValueError(
        f"cannot derive a swapped caption from prompt {prompt!r}: it names no colour "
        f"({', '.join(COLOR_GROUPS[0])}, ...) and no object word ({', '.join(OBJECT_GROUPS[0])}, "
        "...); give it a negative_prompt and use the 'caption' negative, or use 'null'"
    )


def resolve_negatives(
    records: Sequence[PromptRecord], mode: str, seed: int = 0, source: str = "the prompts"
) -> list[str] | None:
    """One negative caption per record for `mode` ("caption", "swap"), or None for "null".

    Raises ValueError naming `source` and the first prompt the mode cannot serve.
    """
    if mode not in NEGATIVE_MODES:
        raise ValueError(
            f"negative mode {mode!r} is not supported; expected one of {NEGATIVE_MODES}"
        )
    if mode == "null":
        return None
    if mode == "swap":
        captions = []
        for number, record in enumerate(records, start=1):
            try:
                captions.append(swap_caption(record.prompt, seed))
            except ValueError as err:
                raise ValueError(f"{source}: prompt {number}: {err}") from None
        return captions
    for number, record in enumerate(records, start=1):
        if not record.negative_prompt:
            raise ValueError(
                f"{source}: prompt {number} ({record.prompt!r}) has no negative_prompt, which "
                "the 'caption' negative needs for every prompt; add a \"negative_prompt\" field "
                "to each JSON line, or use the 'null' or 'swap' negative"
            )
    return [record.negative_prompt for record in records]
