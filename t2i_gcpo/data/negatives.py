"""Negative prompts of the GCPO credit contrast: the one place a negative mode becomes captions.

Modes (algo.negative, `t2i-gcpo heatmap --negative-mode`):
- "null": the CFG null prompt (no caption: the resolver returns None);
- "caption": each record's own `negative_prompt`;
- "swap": a rule-based perturber of free text: one colour, number, spatial or object word of
  the prompt changed (swap_caption);
- "attribute": for a record with GenEval metadata, the prompt of a record that changes one
  thing it names (a class, a colour, a count, the relation, or two objects' colours or places
  swapped; see data.geneval), its alternatives drawn from the words of the records resolved
  together, one change chosen at random from the prompt and the seed; for a record without
  metadata, "swap"'s perturber.
Every choice depends only on the prompt and the seed. A record that a mode cannot serve is an
error that names it; nothing falls back to another mode.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from t2i_gcpo.algos import NEGATIVE_MODES
from t2i_gcpo.data.geneval import CHANGE_KINDS, changes, is_geneval, plural, vocabulary
from t2i_gcpo.data.prompts import PromptRecord

COLOR_GROUPS: tuple[tuple[str, ...], ...] = (
    ("red", "orange", "yellow", "green", "blue", "purple", "cyan"),
    ("black", "white", "pink", "brown", "gray", "grey", "gold", "silver"),
)
"""Colour words; a colour is swapped for another of its own group (so a prompt written with the
first group's colours, as the shapes world's are, keeps to them)."""

OBJECT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("circle", "square", "triangle", "cross"),
    ("airplane", "apple", "backpack", "banana", "baseball bat", "baseball glove", "bear", "bed",
     "bench", "bicycle", "bird", "boat", "book", "bottle", "bowl", "broccoli", "bus", "cake",
     "car", "carrot", "cat", "cell phone", "chair", "clock", "computer keyboard",
     "computer mouse", "couch", "cow", "cup", "dining table", "dog", "donut", "elephant",
     "fire hydrant", "fork", "frisbee", "giraffe", "hair drier", "handbag", "horse", "hot dog",
     "kite", "knife", "laptop", "microwave", "motorcycle", "oven", "parking meter", "person",
     "pizza", "potted plant", "refrigerator", "sandwich", "scissors", "sheep", "sink",
     "skateboard", "skis", "snowboard", "spoon", "sports ball", "stop sign", "suitcase",
     "surfboard", "teddy bear", "tennis racket", "tie", "toaster", "toilet", "toothbrush",
     "traffic light", "train", "truck", "tv", "tv remote", "umbrella", "vase", "wine glass",
     "zebra"),
)  # fmt: skip
"""Object names (and their plurals), swapped within their group: the shapes world's shapes, and
the 80 classes of GenEval's prompts (COCO's)."""

NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
"""Number words; a number becomes the one below or above it."""

OPPOSITES = {"left": "right", "right": "left", "above": "below", "below": "above",
             "top": "bottom", "bottom": "top", "over": "under", "under": "over"}  # fmt: skip
"""Spatial words and the word that reverses them."""

NEGATIVE_VIEWS: dict[str, tuple[str, ...] | None] = {
    "null": None,
    "caption": None,
    "attribute": ("class", "color", "count", "swap_colors"),
    "position": ("relation", "swap_objects"),
}
"""The negatives that credit figures are reported against (t2i_gcpo.evaluation): the null
prompt, each record's caption, and two families of "attribute" captions, by the kinds of
change (data.geneval.CHANGE_KINDS) they draw from."""

_WORD = re.compile(r"[A-Za-z]+")


def _spans(prompt: str) -> dict[str, list[tuple[int, int, list[str]]]]:
    """Kind -> (start, end, replacements) of every span of `prompt` the perturber can change."""
    lower = prompt.lower()
    present = {m[0] for m in _WORD.finditer(lower)}
    found: dict[str, list[tuple[int, int, list[str]]]] = {}

    def add(kind, start, end, options):
        if options:
            found.setdefault(kind, []).append((start, end, options))

    for match in _WORD.finditer(lower):
        word = match[0]
        for group in COLOR_GROUPS:
            if word in group:
                add("color", *match.span(), [w for w in group if w != word and w not in present])
        if word in NUMBERS:
            at = NUMBERS.index(word)
            numbers = [NUMBERS[i] for i in (at - 1, at + 1) if 0 <= i < len(NUMBERS)]
            add("count", *match.span(), numbers)
        if word in OPPOSITES:
            add("relation", *match.span(), [OPPOSITES[word]])
    taken: list[tuple[int, int]] = []
    for group in OBJECT_GROUPS:
        for name in sorted(group, key=len, reverse=True):  # "tv remote" before "tv"
            for match in re.finditer(rf"\b{re.escape(name)}(es|s)?\b", lower):
                if any(a < match.end() and match.start() < b for a, b in taken):
                    continue
                taken.append(match.span())
                many = match[1] is not None
                others = [plural(w) if many else w for w in group if w != name and w not in lower]
                add("class", *match.span(), others)
    return found


def swap_caption(prompt: str, seed: int = 0) -> str:
    """A free-text prompt with one word it names changed: a colour for another, a number for
    the one below or above, a spatial word for its opposite, or an object (or its plural) for
    another ('a photo of two red circles' -> e.g. 'a photo of three red circles'). The rule,
    seeded by the prompt and `seed`: a kind uniformly among those the prompt has, then one of
    its words and one replacement uniformly.

    Raises ValueError, with the prompt, when it names nothing of the kinds above.
    """
    rng = random.Random(f"{seed}\0{prompt}")  # str seeds hash with sha512: stable everywhere
    by_kind = _spans(prompt)
    if not by_kind:
        raise ValueError(
            f"cannot derive a negative caption from prompt {prompt!r}: it names no colour "
            f"({', '.join(COLOR_GROUPS[0])}, ...), number ({NUMBERS[0]}-{NUMBERS[-1]}), "
            f"spatial word ({', '.join(OPPOSITES)}) or object word "
            f"({', '.join(OBJECT_GROUPS[0])}, ...); give it a negative_prompt and use the "
            "'caption' negative, GenEval metadata for 'attribute', or use 'null'"
        )
    options = by_kind[sorted(by_kind)[rng.randrange(len(by_kind))]]
    start, end, replacements = options[rng.randrange(len(options))]
    word = replacements[rng.randrange(len(replacements))]
    if prompt[start].isupper():
        word = word.capitalize()
    before = _ARTICLE.sub(lambda m: _article_for(m, word), prompt[:start])
    return before + word + prompt[end:]


_ARTICLE = re.compile(r"\b([Aa]n?)(\s+)$")


def _article_for(match: re.Match, word: str) -> str:
    """'a' / 'an' (keeping its case) as the next word needs."""
    article = "an" if word[0].lower() in "aeiou" else "a"
    return (article.capitalize() if match[1][0].isupper() else article) + match[2]


def attribute_caption(
    record: PromptRecord,
    classes: Sequence[str],
    colors: Sequence[str],
    seed: int = 0,
    kinds: Sequence[str] = CHANGE_KINDS,
) -> str | None:
    """The prompt of one record that changes one thing `record`'s GenEval metadata names, of
    one of `kinds`, or None when there is no such change. The rule, seeded by the prompt and
    `seed`: a kind of change uniformly among those the record allows, then one change of that
    kind uniformly (so a prompt with 79 other classes still gets its colour or count changed
    as often as its class)."""
    by_kind: dict[str, list[dict]] = {}
    for kind, changed in changes(record.metadata, classes, colors):
        if kind in kinds:
            by_kind.setdefault(kind, []).append(changed)
    if not by_kind:
        return None
    rng = random.Random(f"{seed}\0{record.prompt}")
    options = by_kind[sorted(by_kind)[rng.randrange(len(by_kind))]]
    return options[rng.randrange(len(options))]["prompt"]


def resolve_negatives(
    records: Sequence[PromptRecord],
    mode: str,
    seed: int = 0,
    source: str = "the prompts",
    kinds: Sequence[str] = CHANGE_KINDS,
    vocab: tuple[list[str], list[str]] | None = None,
) -> list[str] | None:
    """One negative caption per record for `mode` ("caption", "swap", "attribute"), or None
    for "null". `kinds` restricts the changes of "attribute" (data.geneval.CHANGE_KINDS);
    `vocab` gives its alternative classes and colours (default: those of `records`, so pass
    the whole set's when resolving a few of its records).

    Raises ValueError naming `source` and the first prompt the mode cannot serve.
    """
    if mode not in NEGATIVE_MODES:
        raise ValueError(
            f"negative mode {mode!r} is not supported; expected one of {NEGATIVE_MODES}"
        )
    if mode == "null":
        return None
    if mode == "attribute":
        return _attribute_negatives(records, seed, source, kinds, vocab)
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
                "to each JSON line, or use the 'null', 'swap' or 'attribute' negative"
            )
    return [record.negative_prompt for record in records]


def prompts_vocabulary(records: Sequence[PromptRecord]) -> tuple[list[str], list[str]]:
    """The classes and colours the GenEval metadata of `records` names."""
    return vocabulary(r.metadata for r in records if is_geneval(r.metadata))


def _attribute_negatives(
    records: Sequence[PromptRecord],
    seed: int,
    source: str,
    kinds: Sequence[str],
    vocab: tuple[list[str], list[str]] | None,
) -> list[str]:
    """The "attribute" captions of `records` (see the module docstring)."""
    classes, colors = vocab or prompts_vocabulary(records)
    captions = []
    for number, record in enumerate(records, start=1):
        if not is_geneval(record.metadata):  # free text: the rule-based perturber
            try:
                captions.append(swap_caption(record.prompt, seed))
            except ValueError as err:
                raise ValueError(f"{source}: prompt {number}: {err}") from None
            continue
        caption = attribute_caption(record, classes, colors, seed, kinds)
        if caption is None:
            raise ValueError(
                f"{source}: prompt {number} ({record.prompt!r}) names nothing the 'attribute' "
                f"negative can change ({', '.join(kinds)}) within the prompts' own classes "
                f"{classes} and colours {colors}"
            )
        captions.append(caption)
    return captions
