"""The shapes world: scenes, captions, masks, prompt sets and the oracle."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from t2i_gcpo.data.prompts import PromptFileError, PromptRecord, load_prompts
from t2i_gcpo.toy.oracle import evaluate, quadrant_mask
from t2i_gcpo.toy.scenes import (
    COLORS,
    HELD_OUT,
    POSITIONS,
    SHAPES,
    SceneObject,
    all_contrastive,
    all_objects,
    caption,
    contrastive_objects,
    objects_from_metadata,
    prompt_splits,
    random_objects,
    random_scenes,
    render,
)

ROOT = Path(__file__).resolve().parents[1]
RED_CIRCLE = SceneObject("red", "circle", "top left")
BLUE_SQUARE = SceneObject("blue", "square", "bottom right")


def test_scenes_are_deterministic_from_the_seed():
    a, b = random_scenes(6, seed=3), random_scenes(6, seed=3)
    assert [s.caption for s in a] == [s.caption for s in b]
    assert all(
        torch.equal(x.image, y.image) and torch.equal(x.masks, y.masks)
        for x, y in zip(a, b, strict=True)
    )
    assert [s.caption for s in random_scenes(6, seed=4)] != [s.caption for s in a]


def test_caption_metadata_and_masks_agree():
    scene = render((RED_CIRCLE, BLUE_SQUARE), seed=1)
    assert scene.caption == "a red circle at the top left and a blue square at the bottom right"
    assert scene.metadata == {
        "tag": "two_object",
        "objects": [
            {"color": "red", "shape": "circle", "position": "top left"},
            {"color": "blue", "shape": "square", "position": "bottom right"},
        ],
    }
    assert objects_from_metadata(scene.metadata) == scene.objects
    h, w = scene.image.shape[1:]
    assert scene.image.shape == (3, 32, 32) and scene.image.min() >= 0 and scene.image.max() <= 1
    for obj, mask in zip(scene.objects, scene.masks, strict=True):
        assert mask.sum() <= h * w / 4  # at most a quarter of the image
        assert not (mask & ~quadrant_mask(obj.position, h, w)).any()  # inside its quadrant
        colour = torch.tensor(COLORS[obj.color]) / 255.0
        pixels = scene.image[:, mask].T
        assert (pixels - colour).abs().max(dim=1).values.mean() < 0.1  # mostly the colour
        assert (pixels - colour).abs().max() < 0.5  # edge pixels at least half covered


def test_every_shape_is_drawn_differently_and_objects_are_validated():
    areas = {
        s: render((SceneObject("red", s, "top left"),), seed=0).masks.sum().item() for s in SHAPES
    }
    assert areas["triangle"] < areas["circle"] < areas["square"]
    with pytest.raises(ValueError, match="color='pink'"):
        SceneObject("pink", "circle", "top left")
    with pytest.raises(ValueError, match="distinct quadrants"):
        render((RED_CIRCLE, dataclasses.replace(BLUE_SQUARE, position="top left")))


def test_held_out_split_hides_triples_but_not_their_parts():
    assert len(HELD_OUT) == len(all_objects()) // 6
    for obj in HELD_OUT:  # each held-out colour-shape pair is still seen elsewhere
        seen = [p for p in POSITIONS if SceneObject(obj.color, obj.shape, p) not in HELD_OUT]
        assert len(seen) >= 3
    rng = np.random.default_rng(0)
    assert not any(o in HELD_OUT for _ in range(200) for o in random_objects(rng, 2, "train"))
    assert all(any(o in HELD_OUT for o in random_objects(rng, 2, "eval")) for _ in range(50))


def test_contrastive_captions_change_exactly_one_thing():
    rng = np.random.default_rng(0)
    for _ in range(50):
        objects = random_objects(rng, 2, "any")
        negative, kind = contrastive_objects(objects, rng)
        assert caption(negative) != caption(objects)
        assert negative in all_contrastive(objects)
        if kind != "swap_colors":
            changed = [(a, b) for a, b in zip(objects, negative, strict=True) if a != b]
            assert len(changed) == 1


def test_oracle_accepts_true_renders_and_rejects_broken_ones():
    rng = np.random.default_rng(1)
    for i in range(30):
        objects = random_objects(rng, 1 + i % 2, "any")
        metadata = render(objects, seed=i).metadata
        assert evaluate(render(objects, seed=i).image, metadata).strict == 1.0
        for negative in all_contrastive(objects):
            result = evaluate(render(negative, seed=i).image, metadata)
            assert result.strict == 0.0, (caption(objects), caption(negative))


def test_oracle_share_and_masks():
    scene = render((RED_CIRCLE, BLUE_SQUARE), seed=2)
    wrong = render((RED_CIRCLE, dataclasses.replace(BLUE_SQUARE, shape="triangle")), seed=2)
    result = evaluate(wrong.image, scene.metadata)
    assert result.share == 0.5 and result.strict == 0.0
    assert [c.shape for c in result.objects] == ["circle", "triangle"]
    good = evaluate(scene.image, scene.metadata)
    overlap = (good.masks & scene.masks).sum() / scene.masks.sum()
    assert overlap > 0.9
    blank = torch.full_like(scene.image, 20 / 255)
    assert evaluate(blank, scene.metadata).share == 0.0


def test_shipped_prompt_files_match_the_generator():
    train, held = prompt_splits()
    for name, sets in (("train", train), ("eval", held)):
        records = load_prompts(ROOT / "prompts" / f"shapes_{name}.jsonl")
        assert [r.prompt for r in records] == [caption(objects) for objects, _ in sets]
        assert [r.negative_prompt for r in records] == [caption(neg) for _, neg in sets]
    train_prompts = {r.prompt for r in load_prompts(ROOT / "prompts" / "shapes_train.jsonl")}
    eval_records = load_prompts(ROOT / "prompts" / "shapes_eval.jsonl")
    assert not train_prompts & {r.prompt for r in eval_records}
    for record in eval_records:
        objects = objects_from_metadata(record.metadata)
        assert any(o in HELD_OUT for o in objects)


def test_prompt_loader_formats_and_errors(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("# a comment\na red circle\n\n  a blue square  \n")
    assert load_prompts(txt) == [PromptRecord("a red circle"), PromptRecord("a blue square")]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps({"prompt": "x", "tag": "t", "metadata": {"k": 1}}) + "\n")
    assert load_prompts(jsonl) == [PromptRecord("x", None, {"tag": "t", "k": 1})]
    for bad, message in (
        ('{"prompt": "ok"}\n{"prompt": ', "line 2: not valid JSON"),
        ('{"prompt": ""}', "line 1: field 'prompt' must be a non-empty string"),
        ('{"prompt": "a", "negative_prompt": 3}', "line 1: field 'negative_prompt'"),
        ('["a"]', "line 1: expected a JSON object"),
        ("\n\n", "holds no prompts"),
    ):
        jsonl.write_text(bad)
        with pytest.raises(PromptFileError, match=message) as err:
            load_prompts(jsonl)
        assert str(jsonl) in str(err.value)
    with pytest.raises(PromptFileError, match="does not exist"):
        load_prompts(tmp_path / "missing.jsonl")


FIXTURES = ROOT.parent / "shared" / "fixtures"


@pytest.mark.skipif(
    not (FIXTURES / "geneval-prompts.jsonl").exists(),
    reason="shared/fixtures is not beside the project (only in the dev checkout)",
)
def test_geneval_prompt_file_loads_with_its_fields_as_metadata():
    records = load_prompts(FIXTURES / "geneval-prompts.jsonl")
    assert len(records) == 553
    assert {r.metadata["tag"] for r in records} >= {"single_object", "two_object", "counting"}
    assert all("include" in r.metadata for r in records)
