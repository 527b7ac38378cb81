"""Negative captions: GenEval's templates, and "attribute" negatives made from a prompt's
metadata, checked by hand for each GenEval category."""

from pathlib import Path

import pytest

from t2i_gcpo.data import PromptRecord, resolve_negatives
from t2i_gcpo.data.geneval import changes, make_record, prompt_of
from t2i_gcpo.data.negatives import attribute_caption
from t2i_gcpo.data.prompts import load_prompts

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "geneval-prompts.jsonl"
needs_fixture = pytest.mark.skipif(not FIXTURE.is_file(), reason=f"{FIXTURE} is absent")
CLASSES, COLORS = ["circle", "square", "cross"], ["red", "blue"]


def rec(tag, *include):
    record = make_record(tag, list(include))
    return PromptRecord(record["prompt"], None, {k: v for k, v in record.items() if k != "prompt"})


def captions(record, kinds, classes=CLASSES, colors=COLORS):
    return {attribute_caption(record, classes, colors, seed, kinds) for seed in range(40)}


@needs_fixture
def test_geneval_templates_reproduce_every_prompt_of_the_fixture():
    records = load_prompts(FIXTURE)
    assert len(records) == 553
    assert all(prompt_of(r.metadata) == r.prompt for r in records)


def test_attribute_negatives_by_hand_for_each_category():
    circle, square = {"class": "circle", "count": 1}, {"class": "square", "count": 1}
    single = rec("single_object", circle)
    assert captions(single, ("class",)) == {"a photo of a square", "a photo of a cross"}
    two = rec("two_object", circle, square)
    assert captions(two, ("class",)) == {"a photo of a cross and a square",
                                         "a photo of a circle and a cross"}  # fmt: skip
    counting = rec("counting", {"class": "circle", "count": 2})
    assert captions(counting, ("count",)) == {"a photo of one circle", "a photo of three circles"}
    colors = rec("colors", {**circle, "color": "red"})
    assert captions(colors, ("color",)) == {"a photo of a blue circle"}
    position = rec("position", square, {**circle, "position": ["left of", 0]})
    assert position.prompt == "a photo of a circle left of a square"
    assert captions(position, ("relation",)) == {
        "a photo of a circle right of a square", "a photo of a circle above a square",
        "a photo of a circle below a square"}  # fmt: skip
    assert captions(position, ("swap_objects",)) == {"a photo of a square left of a circle"}
    attr = rec("color_attr", {**circle, "color": "red"}, {**square, "color": "blue"})
    assert captions(attr, ("swap_colors",)) == {"a photo of a blue circle and a red square"}
    assert attribute_caption(single, CLASSES, COLORS, 0, ("color",)) is None  # nothing to change


def test_the_kind_is_chosen_first_then_the_change():
    colors = rec("colors", {"class": "circle", "count": 1, "color": "red"})
    many = [f"class{i}" for i in range(50)]
    kinds = {
        "class" if "class" in c else "color"
        for c in (attribute_caption(colors, many, COLORS, s) for s in range(30))
    }
    assert kinds == {"class", "color"}  # 50 other classes do not crowd out the colour change
    assert all(kind in {"class", "color"} for kind, _ in changes(colors.metadata, many, COLORS))


def test_resolve_attribute_negatives_uses_the_prompts_own_words():
    records = [rec("colors", {"class": "cat", "count": 1, "color": "red"}),
               rec("colors", {"class": "dog", "count": 1, "color": "blue"})]  # fmt: skip
    negatives = resolve_negatives(records, "attribute", seed=1)
    assert negatives == resolve_negatives(records, "attribute", seed=1)  # deterministic
    allowed = {"a photo of a blue cat", "a photo of a red dog",
               "a photo of a red cat", "a photo of a blue dog"}  # fmt: skip
    assert set(negatives) <= allowed - {r.prompt for r in records}
    lonely = [rec("single_object", {"class": "cat", "count": 1})]
    with pytest.raises(ValueError, match=r"prompt 1 \('a photo of a cat'\) names nothing"):
        resolve_negatives(lonely, "attribute", source="p.jsonl")


@needs_fixture
def test_attribute_negatives_for_every_geneval_prompt():
    records = load_prompts(FIXTURE)
    negatives = resolve_negatives(records, "attribute", seed=0)
    assert all(n != r.prompt for n, r in zip(negatives, records, strict=True))
    assert len(set(negatives)) > 400


@needs_fixture
def test_the_free_text_perturber_on_genevals_own_prompts():
    from t2i_gcpo.data.negatives import swap_caption

    records = load_prompts(FIXTURE)
    for record in records:
        negative = swap_caption(record.prompt, seed=0)  # every prompt names something to change
        assert negative != record.prompt and negative.startswith("a photo of")
        assert " a orange" not in negative and " an red" not in negative  # articles follow
    seen = {swap_caption("a photo of four clocks", seed) for seed in range(80)}
    assert {"a photo of three clocks", "a photo of five clocks"} <= seen
    others = seen - {"a photo of three clocks", "a photo of five clocks"}
    assert others and all(n.startswith("a photo of four ") and n.endswith("s") for n in others)
    seen = {swap_caption("a photo of a dog right of a teddy bear", s) for s in range(80)}
    assert "a photo of a dog left of a teddy bear" in seen
    assert "a photo of a cat right of a teddy bear" in seen
