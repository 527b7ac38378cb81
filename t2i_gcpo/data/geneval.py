"""GenEval's prompt metadata: its templates, and every record that changes one thing it names.

A GenEval record is {"tag", "include": [{"class", "count", "color"?, "position"?: [relation,
index]}], "exclude"?: [...], "prompt"}, with the six tags single_object, two_object, counting,
colors, position and color_attr (see ../shared/fixtures/geneval-prompts.jsonl). The prompt of a
record follows GenEval's generation templates ("a photo of a red circle", "a photo of three
crosses", "a photo of a dog right of a teddy bear", ...), so a changed record gets a prompt in
the same words: the hard negatives of the shapes world's CLIP and the "attribute" negatives of
GCPO's credit are both made here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
RELATIONS = ("left of", "right of", "above", "below")
CHANGE_KINDS = ("class", "color", "count", "relation", "swap_colors", "swap_objects")
"""What a changed record changes: one object's class, colour or count, the relation, the two
objects' colours swapped, or the two objects swapped in the relation."""


def article(name: str) -> str:
    """'a circle', 'an orange circle' (GenEval's rule: "an" before a vowel)."""
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def plural(name: str) -> str:
    """'circles', 'crosses' (GenEval's rule: "es" after an "s")."""
    return f"{name}es" if name.endswith("s") else f"{name}s"


def _thing(req: dict) -> str:
    return article(f"{req['color']} {req['class']}" if "color" in req else req["class"])


def is_geneval(metadata: dict) -> bool:
    """True when `metadata` looks like a GenEval record (a known tag and its requirements)."""
    include = metadata.get("include")
    return (
        metadata.get("tag") in TAGS
        and isinstance(include, list)
        and bool(include)
        and all(isinstance(r, dict) and "class" in r and "count" in r for r in include)
    )


def objects_asked(metadata: dict) -> int:
    """How many objects a GenEval record's prompt asks for: its include counts added up."""
    return sum(int(req["count"]) for req in metadata["include"])


def prompt_of(metadata: dict) -> str:
    """The prompt of a record, from GenEval's generation templates."""
    tag, include = metadata["tag"], metadata["include"]
    if tag in ("single_object", "colors"):
        return f"a photo of {_thing(include[0])}"
    if tag in ("two_object", "color_attr"):
        return f"a photo of {_thing(include[0])} and {_thing(include[1])}"
    if tag == "counting":
        count, name = include[0]["count"], include[0]["class"]
        return f"a photo of {NUMBERS[count]} {name if count == 1 else plural(name)}"
    if tag == "position":
        return f"a photo of {_thing(include[1])} {include[1]['position'][0]} {_thing(include[0])}"
    raise ValueError(f"tag={tag!r}; expected one of {TAGS}")


def make_record(tag: str, include: list[dict]) -> dict:
    """A GenEval record (with its prompt, and for counting its exclude) for a tag."""
    record: dict = {"tag": tag, "include": [dict(req) for req in include]}
    if tag == "counting":
        record["exclude"] = [{"class": include[0]["class"], "count": include[0]["count"] + 1}]
    record["prompt"] = prompt_of(record)
    return record


def vocabulary(records: Iterable[dict]) -> tuple[list[str], list[str]]:
    """The classes and the colours that a set of GenEval records names, in first-seen order:
    the alternatives a changed record may use (so it stays in the set's own words)."""
    classes: dict[str, None] = {}
    colors: dict[str, None] = {}
    for record in records:
        for req in record.get("include", []):
            classes[req["class"]] = None
            if "color" in req:
                colors[req["color"]] = None
    return list(classes), list(colors)


def changes(
    metadata: dict, classes: Sequence[str], colors: Sequence[str], max_count: int = 4
) -> list[tuple[str, dict]]:
    """Every (kind, record) that differs from `metadata` in one thing it names (CHANGE_KINDS):
    another class (from `classes`, not one the record already names), another colour (from
    `colors`) where it names one, a count one more or less (1 to max_count), each other
    relation, and the two objects' colours or places swapped."""
    tag, include = metadata["tag"], metadata["include"]
    out: list[tuple[str, list[dict]]] = []
    named = {req["class"] for req in include}
    for i, req in enumerate(include):
        out += [("class", _changed(include, i, **{"class": c})) for c in classes if c not in named]
        if "color" in req:
            out += [("color", _changed(include, i, color=c)) for c in colors if c != req["color"]]
    if tag == "counting":
        count = include[0]["count"]
        out += [
            ("count", _changed(include, 0, count=n))
            for n in (count - 1, count + 1)
            if 1 <= n <= max_count
        ]
    if tag == "position":
        relation = include[1]["position"][0]
        out += [
            ("relation", _changed(include, 1, position=[r, 0])) for r in RELATIONS if r != relation
        ]
        swapped = [dict(include[1]), dict(include[0])]
        swapped[0].pop("position")
        swapped[1]["position"] = [relation, 0]
        out.append(("swap_objects", swapped))
    if tag == "color_attr" and include[0].get("color") != include[1].get("color"):
        swapped = [{**include[0], "color": include[1]["color"]},
                   {**include[1], "color": include[0]["color"]}]  # fmt: skip
        out.append(("swap_colors", swapped))
    records = [(kind, make_record(tag, changed)) for kind, changed in out]
    original = prompt_of(metadata)
    return [(kind, record) for kind, record in records if record["prompt"] != original]


def _changed(include: list[dict], index: int, **change) -> list[dict]:
    copy = [dict(req) for req in include]
    copy[index].update(change)
    return copy
