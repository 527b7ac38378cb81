"""The shapes world: scenes, GenEval prompts and held-out splits, the local tokenizer, the
oracle's rules, and the wrong versions of the blame test."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from t2i_gcpo.data.geneval import make_record
from t2i_gcpo.data.prompts import load_prompts
from t2i_gcpo.toy import scenes as S
from t2i_gcpo.toy.oracle import (
    Detection,
    detect,
    flow_grpo_score,
    judge_batch,
    wrong_edit,
    wrong_version,
)
from t2i_gcpo.toy.prompts import shapes_prompt_set
from t2i_gcpo.toy.rewards import ShapesOracle
from t2i_gcpo.toy.tokenizer import PatchVQ, fit_codebook


def record(tag, *include):
    return make_record(tag, list(include))


def scene_of(*objects, texture=1.0, seed=0):
    return S.draw(objects, np.random.default_rng(seed), texture)


def verdict(image, metadata):
    return judge_batch(image[None], [metadata])[0]


# ---------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------


def test_scenes_are_deterministic_and_the_ground_follows_the_texture_knob():
    a, b = S.random_scenes(5, seed=3), S.random_scenes(5, seed=3)
    assert [s.prompt for s in a] == [s.prompt for s in b]
    assert all(torch.equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    assert [s.prompt for s in S.random_scenes(5, seed=4)] != [s.prompt for s in a]
    flat, ids = S.background(np.random.default_rng(0), texture=0.0)
    assert (ids == 0).all() and torch.equal(flat, S.TILES[0].repeat(1, S.GRID, S.GRID))
    _, ids = S.background(np.random.default_rng(0), texture=1.0)
    assert len(np.unique(ids)) == len(S.TILES)  # 144 tiles drawn from 9
    with pytest.raises(ValueError, match="texture"):
        S.background(np.random.default_rng(0), texture=1.5)


def test_objects_are_drawn_where_their_box_says_on_a_flat_ground():
    obj = S.SceneObject("square", "red", 10, 6, 16)
    scene = scene_of(obj)
    assert scene.image.shape == (3, 48, 48) and scene.masks.shape == (1, 48, 48)
    assert scene.masks[0, 6:22, 10:26].all() and scene.masks.sum() == 16 * 16
    red = torch.tensor(S.COLORS["red"]) / 255
    assert torch.allclose(scene.image[:, 10, 12], red)
    assert torch.allclose(scene.image[:, 4, 8], S.TILES[0][:, 0, 0])  # its tiles are flat
    # x 10..26 touches patch columns 2..6, y 6..22 rows 1..5: 5 x 5 patches, all flat
    boxes = S.box_patches([obj])
    assert boxes.shape == (12, 12) and boxes.sum() == 25 and boxes[1:6, 2:7].all()
    assert S.box_patches([S.SceneObject("square", "red", 8, 4, 12)]).sum() == 9  # aligned: 3x3
    with pytest.raises(ValueError, match="does not fit"):
        S.SceneObject("square", "red", 40, 0, 12)
    with pytest.raises(ValueError, match="color='pink'"):
        S.SceneObject("square", "pink", 0, 0, 12)


def test_first_patches_are_where_each_object_starts_in_raster_order():
    square = S.SceneObject("square", "red", 10, 6, 16)  # pixels from row 6, column 10
    circle = S.SceneObject("circle", "blue", 28, 28, 16)
    first = S.first_patches(scene_of(square, circle).masks)
    assert first.shape == (12, 12) and first.sum() == 2
    assert first[1, 2]  # pixel (6, 10) lies in patch row 1, column 2
    # the circle's box starts at patch (7, 7); its top pixel row (y = 28) starts at x = 33,
    # in patch column 8, but the disc widens within patch row 7 (y 28-31) into column 7
    assert first[7, 7]
    # a triangle's apex: its first patch is not its box's corner
    triangle = S.SceneObject("triangle", "green", 28, 28, 16)
    assert S.first_patches(scene_of(triangle).masks).nonzero().tolist() == [[7, 8]]
    assert S.first_patches(torch.zeros(0, 48, 48, dtype=torch.bool)).sum() == 0


def test_every_record_of_every_category_can_be_drawn_and_the_oracle_agrees():
    rng = np.random.default_rng(0)
    for tag in S.CATEGORIES:
        records = S.all_metadata(tag)
        for metadata in [records[i] for i in rng.choice(len(records), 6)]:
            scene = S.sample_scene(metadata, rng)
            assert len(scene.objects) == sum(r["count"] for r in metadata["include"])
            assert verdict(scene.image, metadata).correct, metadata["prompt"]


def by_tag(split):
    """The records of a split under the current HELD_OUT_RULE, by category."""
    return {t: [m for m in S.split_metadata(split) if m["tag"] == t] for t in S.CATEGORIES}


def test_held_out_compositions_never_appear_in_training_scenes():
    train, held = S.split_metadata("train"), S.split_metadata("eval")
    assert {m["tag"] for m in held} == set(S.CATEGORIES)
    assert all(S.is_held_out(m) for m in held) and not any(S.is_held_out(m) for m in train)
    assert {m["prompt"] for m in train}.isdisjoint(m["prompt"] for m in held)
    for scene in S.random_scenes(300, seed=1, split="train"):
        named = {(r["color"], r["class"]) for r in scene.metadata["include"] if "color" in r}
        assert not named & S.HELD_OUT_COLOR_SHAPES  # drawn only where the colour is free
        if scene.metadata["tag"] == "position":  # the pairs meet, in other arrangements
            assert S.arrangement(scene.metadata) not in S.HELD_OUT_ARRANGEMENTS
        elif scene.metadata["tag"] != "color_attr":  # which names them (unnamed_colors)
            assert frozenset(o.shape for o in scene.objects) not in S.HELD_OUT_PAIRS
    # every held-out part is still seen: each shape and colour, each count, each pair's shapes
    seen = {
        (o.color, o.shape) for s in S.random_scenes(300, seed=2, split="train") for o in s.objects
    }
    assert {c for c, _ in seen} == set(S.COLORS) and {s for _, s in seen} == set(S.SHAPES)


def test_held_out_pairs_leave_the_train_split_only_for_the_categories_named(monkeypatch):
    def pairs_by_tag(split):
        return Counter(
            m["tag"]
            for m in S.split_metadata(split)
            if frozenset(r["class"] for r in m["include"]) in S.HELD_OUT_PAIRS
        )

    # the shipped rule: position prompts draw the pairs in every arrangement but one, color_attr
    # prompts in every colouring that names no held-out colour-shape and is not held out itself
    assert set(pairs_by_tag("train")) == {"position", "color_attr"}
    assert pairs_by_tag("train")["position"] == 12
    monkeypatch.setattr(S, "HELD_OUT_RULE", "arrangements")  # position alone
    assert set(pairs_by_tag("train")) == {"position"} and pairs_by_tag("train")["position"] == 12
    monkeypatch.setattr(S, "HELD_OUT_RULE", "pairs")
    assert pairs_by_tag("train") == Counter()
    held = pairs_by_tag("eval")
    assert set(held) == {"two_object", "position", "color_attr"}
    monkeypatch.setattr(S, "HELD_OUT_PAIR_TAGS", ("two_object",))
    moved = pairs_by_tag("train")
    # position names no colour, so all its pair records move; color_attr keeps those that name
    # a held-out colour-shape pair; two_object keeps all of its own
    assert moved["position"] == held["position"] and moved["two_object"] == 0
    assert 0 < moved["color_attr"] < held["color_attr"]
    assert pairs_by_tag("eval") == held - moved


def test_arrangement_reads_both_phrasings_of_a_position_alike(monkeypatch):
    def position(anchor, placed, relation):
        return record("position", {"class": anchor, "count": 1},
                      {"class": placed, "count": 1, "position": [relation, 0]})  # fmt: skip

    left, right = position("cross", "circle", "left of"), position("circle", "cross", "right of")
    assert S.arrangement(left) == S.arrangement(right) == ("circle", "cross", "horizontal")
    below = position("square", "triangle", "below")
    above = position("square", "triangle", "above")
    assert S.arrangement(below) == ("square", "triangle", "vertical")
    assert S.arrangement(above) == ("triangle", "square", "vertical")
    assert not S.is_held_out(below) and S.is_held_out(above)
    monkeypatch.setattr(S, "HELD_OUT_RULE", "pairs")  # the pair itself is held out
    assert S.is_held_out(below) and S.is_held_out(above)
    monkeypatch.setattr(S, "HELD_OUT_RULE", "pair")
    with pytest.raises(ValueError, match="HELD_OUT_RULE='pair'; expected one of"):
        S.is_held_out(below)


def test_the_rules_differ_in_where_pretraining_draws_the_held_out_pairs(monkeypatch):
    monkeypatch.setattr(S, "HELD_OUT_RULE", "arrangements")

    def classes(m):
        return frozenset(r["class"] for r in m["include"])

    train, held = by_tag("train"), by_tag("eval")
    # position's held-out prompts are the arrangements, its others draw the pairs
    assert {S.arrangement(m) for m in held["position"]} == S.HELD_OUT_ARRANGEMENTS
    assert len(held["position"]) == 2 * len(S.HELD_OUT_ARRANGEMENTS)
    assert {classes(m) for m in train["position"]} >= S.HELD_OUT_PAIRS
    for first, second, axis in S.HELD_OUT_ARRANGEMENTS:  # the pair's three other arrangements
        other = "vertical" if axis == "horizontal" else "horizontal"
        seen = {S.arrangement(m) for m in train["position"]}
        assert {(second, first, axis), (first, second, other), (second, first, other)} <= seen
    arrangements = {"train": train, "eval": held}

    monkeypatch.setattr(S, "HELD_OUT_RULE", "pairs")  # only position changes
    train, held = by_tag("train"), by_tag("eval")
    for tag in set(S.CATEGORIES) - {"position"}:
        assert train[tag] == arrangements["train"][tag] and held[tag] == arrangements["eval"][tag]
    assert not {classes(m) for m in train["position"]} & S.HELD_OUT_PAIRS

    monkeypatch.setattr(S, "HELD_OUT_RULE", "per_category")
    train, held = by_tag("train"), by_tag("eval")
    for tag in ("single_object", "two_object", "counting", "colors", "position"):
        assert held[tag] == arrangements["eval"][tag], tag  # their own compositions
    for tag in ("position", "color_attr"):  # the parts of two_object's and colors' held out
        assert {classes(m) for m in train[tag]} >= S.HELD_OUT_PAIRS
    named = {(r["color"], r["class"]) for m in train["color_attr"] for r in m["include"]}
    assert named >= S.HELD_OUT_COLOR_SHAPES
    assert 0 < len(held["color_attr"]) < len(train["color_attr"])
    for m in held["color_attr"]:  # a pair and its swapped colours are held out together
        a, b = m["include"]
        swapped = [{**a, "color": b["color"]}, {**b, "color": a["color"]}]
        assert S.is_held_out(make_record("color_attr", swapped))


def test_unnamed_colors_keeps_colors_held_out_and_splits_color_attr_by_its_own_pairs(monkeypatch):
    def named(m):
        return {(r["color"], r["class"]) for r in m["include"] if "color" in r}

    assert S.HELD_OUT_RULE == "unnamed_colors"  # the shipped split
    monkeypatch.setattr(S, "HELD_OUT_RULE", "arrangements")
    arrangements = {split: by_tag(split) for split in ("train", "eval")}
    monkeypatch.setattr(S, "HELD_OUT_RULE", "per_category")
    per_category_eval = by_tag("eval")["color_attr"]
    monkeypatch.setattr(S, "HELD_OUT_RULE", "unnamed_colors")
    train, held = by_tag("train"), by_tag("eval")
    for tag in set(S.CATEGORIES) - {"color_attr"}:  # the arrangements split's
        assert train[tag] == arrangements["train"][tag], tag
        assert held[tag] == arrangements["eval"][tag], tag
    # no pretraining prompt names a held-out colour-shape, so colors' held-out prompts stay so
    assert not any(named(m) & S.HELD_OUT_COLOR_SHAPES for t in train.values() for m in t)
    assert all(named(m) <= S.HELD_OUT_COLOR_SHAPES for m in held["colors"])
    # color_attr's held-out prompts: per_category's, less those naming such a colour-shape
    assert held["color_attr"] == [
        m for m in per_category_eval if not named(m) & S.HELD_OUT_COLOR_SHAPES
    ]
    assert len(held["color_attr"]) == 70 and len(train["color_attr"]) == 136
    # the held-out shape pairs meet in color_attr's pretraining prompts, as under per_category
    assert {
        frozenset(r["class"] for r in m["include"]) for m in train["color_attr"]
    } >= S.HELD_OUT_PAIRS
    # the records naming a held-out colour-shape in color_attr are in neither split
    neither = [m for m in S.split_metadata("any") if S.split_of(m) is None]
    assert len(neither) == 154 and {m["tag"] for m in neither} == {"color_attr"}
    assert all(named(m) & S.HELD_OUT_COLOR_SHAPES for m in neither)
    assert not any(S.is_held_out(m) for m in neither)
    assert (
        len(S.split_metadata("any")) == sum(len(v) for v in (*train.values(), *held.values())) + 154
    )
    for scene in S.random_scenes(200, seed=3, split="train"):
        assert not named(scene.metadata) & S.HELD_OUT_COLOR_SHAPES


def test_prompt_sets_are_balanced_with_hard_negative_captions():
    for split, per_category in (("train", 32), ("eval", 16)):
        records = shapes_prompt_set(split)
        tags = [r.metadata["tag"] for r in records]
        assert all(tags.count(tag) == per_category for tag in S.CATEGORIES)
        for r in records:
            negatives = {m["prompt"] for m in S.hard_negatives({**r.metadata, "prompt": r.prompt})}
            assert r.negative_prompt in negatives
            assert S.is_held_out(r.metadata) == (split == "eval")
        # prompts/shapes_*.jsonl hold the same records for users who read files
        on_disk = load_prompts(Path(__file__).parents[1] / "prompts" / f"shapes_{split}.jsonl")
        assert [(r.prompt, r.negative_prompt, r.metadata) for r in on_disk] == [
            (r.prompt, r.negative_prompt, r.metadata) for r in records
        ]


def test_hard_negatives_change_one_named_thing_per_category():
    counting = record("counting", {"class": "circle", "count": 2})
    prompts = {m["prompt"] for m in S.hard_negatives(counting)}
    assert prompts == {
        "a photo of one circle", "a photo of three circles", "a photo of two squares",
        "a photo of two triangles", "a photo of two crosses"}  # fmt: skip
    position = record("position", {"class": "square", "count": 1},
                      {"class": "circle", "count": 1, "position": ["left of", 0]})  # fmt: skip
    prompts = {m["prompt"] for m in S.hard_negatives(position)}
    assert "a photo of a circle right of a square" in prompts
    assert "a photo of a square left of a circle" in prompts  # the two objects swapped
    assert "a photo of a cross left of a square" in prompts
    attr = record("color_attr", {"class": "circle", "count": 1, "color": "red"},
                  {"class": "cross", "count": 1, "color": "blue"})  # fmt: skip
    assert "a photo of a blue circle and a red cross" in {
        m["prompt"] for m in S.hard_negatives(attr)
    }


# ---------------------------------------------------------------------------------------------
# The local tokenizer
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    images = torch.stack([s.image for s in S.random_scenes(40, seed=5)])
    empty = PatchVQ(torch.zeros(1, 48), S.PATCH, S.IMAGE_SIZE)
    codebook, _ = fit_codebook(empty.patches(images).reshape(-1, 48), 128, iterations=5)
    return PatchVQ(codebook, S.PATCH, S.IMAGE_SIZE)


def test_changing_pixels_in_one_patch_changes_no_other_token(tokenizer):
    image = S.random_scenes(1, seed=6)[0].image
    tokens = tokenizer.encode(image[None])[0]
    generator = torch.Generator().manual_seed(0)
    for row, col in [(0, 0), (5, 7), (11, 11), (3, 10)]:
        edited = image.clone()
        block = (slice(None), slice(4 * row, 4 * row + 4), slice(4 * col, 4 * col + 4))
        edited[block] = torch.rand(3, 4, 4, generator=generator)
        changed = (tokenizer.encode(edited[None])[0] != tokens).nonzero().flatten().tolist()
        assert set(changed) <= {row * 12 + col}


def test_replacing_one_token_changes_no_pixel_outside_its_patch(tokenizer):
    tokens = torch.randint(0, 128, (1, 144), generator=torch.Generator().manual_seed(1))
    image = tokenizer.decode(tokens)[0]
    for position in (0, 17, 77, 143):
        other = tokens.clone()
        other[0, position] = (tokens[0, position] + 1) % 128
        moved = (tokenizer.decode(other)[0] != image).any(dim=0)
        row, col = divmod(position, 12)
        outside = moved.clone()
        outside[4 * row : 4 * row + 4, 4 * col : 4 * col + 4] = False
        assert moved.any() and not outside.any()


def test_tokenizer_round_trips_its_codebook_and_saves(tokenizer, tmp_path):
    tokens = torch.randint(0, 128, (3, 144), generator=torch.Generator().manual_seed(2))
    again = tokenizer.encode(tokenizer.decode(tokens))
    assert torch.equal(tokenizer.decode(again), tokenizer.decode(tokens))
    loaded = PatchVQ.from_pretrained(tokenizer.save_pretrained(tmp_path / "vq"))
    assert torch.equal(loaded.codebook, tokenizer.codebook) and loaded.grid == (12, 12)
    with pytest.raises(ValueError, match=r"images must be \(N, 3, 48, 48\)"):
        tokenizer.encode(torch.zeros(1, 3, 32, 32))


# ---------------------------------------------------------------------------------------------
# The oracle: GenEval's rules
# ---------------------------------------------------------------------------------------------

CIRCLE = {"class": "circle", "count": 1}


def test_detection_reads_class_colour_and_box():
    scene = scene_of(S.SceneObject("triangle", "yellow", 4, 4, 16),
                     S.SceneObject("cross", "purple", 28, 26, 14))  # fmt: skip
    found = detect(scene.image[None])[0]
    assert [(d.shape, d.color) for d in found] == [("triangle", "yellow"), ("cross", "purple")]
    assert found[1].box == (28, 26, 42, 40)


def test_counts_are_at_least_except_for_counting_which_is_exact():
    circles = [S.SceneObject("circle", "red", x, 4, 12) for x in (2, 18, 34)]
    image = scene_of(*circles).image
    assert verdict(image, record("single_object", CIRCLE)).correct  # GenEval: at least one
    assert verdict(image, record("counting", {**CIRCLE, "count": 3})).correct
    wrong = verdict(image, record("counting", {**CIRCLE, "count": 2}))
    assert not wrong.correct and "circle < 3" in wrong.reason  # the exclude rule
    assert not verdict(image, record("counting", {**CIRCLE, "count": 4})).correct


def found(*objects):
    """Hand-made detections (shape, colour, box) in the order given."""
    mask = torch.zeros(48, 48, dtype=torch.bool)
    return [Detection(shape, color, box, mask, 100) for shape, color, box in objects]


def test_flow_grpo_score_grades_exact_counts_colours_and_relations():
    red_circle = {**CIRCLE, "color": "red"}
    colors = record("colors", red_circle)
    left, right = (2, 20, 14, 32), (30, 20, 42, 32)
    assert flow_grpo_score(found(("circle", "red", left)), colors) == 1.0
    # wrong colour: the count term 1, the colour term 1 - |1 - 0| / 1 = 0
    assert flow_grpo_score(found(("circle", "blue", left)), colors) == 0.5
    # one circle too many: the count term 1 - |1 - 2| = 0 and the colour check's 0
    two = found(("circle", "red", left), ("circle", "red", right))
    assert flow_grpo_score(two, colors) == 0.0
    # objects of another class cost nothing
    assert flow_grpo_score(found(("circle", "red", left), ("square", "red", right)), colors) == 1.0
    three = record("counting", {**CIRCLE, "count": 3})
    assert flow_grpo_score(two, three) == pytest.approx(2 / 3)
    four = found(*[("circle", "red", (x, 0, x + 8, 8)) for x in (0, 10, 20, 30)])
    assert flow_grpo_score(four, three) == pytest.approx(2 / 3)  # exclude not read
    assert flow_grpo_score(four, record("single_object", CIRCLE)) == -2.0
    square = {"class": "square", "count": 1}
    position = record("position", square, {**CIRCLE, "position": ["left of", 0]})
    pair = found(("circle", "red", left), ("square", "blue", right))
    assert flow_grpo_score(pair, position) == 1.0  # terms 1, 1, 1
    swapped = found(("circle", "red", right), ("square", "blue", left))
    assert flow_grpo_score(swapped, position) == 0.75  # terms 1, 1, 0, 1 as the server appends
    no_target = found(("circle", "red", left))
    assert flow_grpo_score(no_target, position) == pytest.approx(1 / 3)  # terms 0, 1, 0
    # the shapes-oracle reward in this mode, on a drawn scene
    image = scene_of(S.SceneObject("circle", "red", 4, 4, 16)).image
    oracle = ShapesOracle("flow_grpo")
    assert oracle(image[None], [""], [colors]).tolist() == [1.0]
    with pytest.raises(ValueError, match="extras='named' with mode 'flow_grpo'"):
        ShapesOracle("flow_grpo", extras="named")


def test_colours_and_relations_follow_geneval():
    red_left = S.SceneObject("circle", "red", 2, 18, 12)
    blue_right = S.SceneObject("square", "blue", 30, 18, 12)
    image = scene_of(red_left, blue_right).image
    assert verdict(image, record("colors", {**CIRCLE, "color": "red"})).correct
    assert not verdict(image, record("colors", {**CIRCLE, "color": "blue"})).correct
    square = {"class": "square", "count": 1}
    left = record("position", square, {**CIRCLE, "position": ["left of", 0]})
    right = record("position", square, {**CIRCLE, "position": ["right of", 0]})
    assert verdict(image, left).correct and not verdict(image, right).correct
    attr = record("color_attr", {**CIRCLE, "color": "red"}, {**square, "color": "blue"})
    swapped = record("color_attr", {**CIRCLE, "color": "blue"}, {**square, "color": "red"})
    assert verdict(image, attr).correct and not verdict(image, swapped).correct
    assert S.relations((0, 0, 10, 10), (30, 0, 40, 10)) == {"left of"}
    assert S.relations((0, 0, 10, 10), (2, 1, 12, 11)) == set()  # within the margin


def test_drawn_hard_negatives_are_judged_wrong():
    rng = np.random.default_rng(3)
    for tag in S.CATEGORIES:
        metadata = S.all_metadata(tag)[-1]
        for negative in S.hard_negatives(metadata)[:8]:
            scene = S.sample_scene(negative, rng)
            assert not verdict(scene.image, metadata).correct, (metadata["prompt"], scene.prompt)


def test_bad_metadata_is_an_error_that_shows_the_layout():
    image = torch.zeros(1, 3, 48, 48)
    with pytest.raises(ValueError, match="GenEval's layout"):
        judge_batch(image, [{"tag": "two_object", "include": [{"class": "dog", "count": 1}]}])
    with pytest.raises(ValueError, match="1 images but 2 metadata"):
        judge_batch(image, [{}, {}])


def test_a_wrong_version_changes_one_object_in_place():
    metadata = record("color_attr", {**CIRCLE, "color": "red"},
                      {"class": "square", "count": 1, "color": "blue"})  # fmt: skip
    scene = S.sample_scene(metadata, np.random.default_rng(4))
    edited = wrong_version(scene.image, metadata, seed=0)
    assert edited is not None and not verdict(edited, metadata).correct
    moved = (edited != scene.image).any(dim=0)
    regions = []
    for x0, y0, x1, y1 in (o.box for o in scene.objects):  # the tiles each box touches
        region = torch.zeros(48, 48, dtype=torch.bool)
        region[y0 // 4 * 4 : -(-y1 // 4) * 4, x0 // 4 * 4 : -(-x1 // 4) * 4] = True
        regions.append(region)
    assert moved.any() and sum(not (moved & ~r).any() for r in regions) == 1  # one object's
    assert wrong_version(torch.zeros(3, 48, 48), metadata, seed=0) is None  # not right


def test_a_wrong_edit_says_what_it_changed():
    metadata = record("colors", {**CIRCLE, "color": "red"})
    scene = S.sample_scene(metadata, np.random.default_rng(5))
    kinds = set()
    for seed in range(12):
        edited, change = wrong_edit(scene.image, metadata, seed)
        assert torch.equal(edited, wrong_version(scene.image, metadata, seed))
        ((field, value),) = change.items()
        found = detect(edited[None])[0][0]  # the one object, with the changed field
        assert getattr(found, field) == value != {"shape": "circle", "color": "red"}[field]
        kinds.add(field)
    assert kinds == {"shape", "color"}  # a colour prompt's object can be wrong either way


def test_boxes_at_whole_pixels_are_drawn_from_the_cache_with_the_same_numbers():
    for shape in S.SHAPES:
        for x, y, size in ((0, 0, 12), (7, 29, 16), (28, 28, 20), (36, 3, 12)):
            direct = S._coverage(shape, x, y, size, S.IMAGE_SIZE)
            assert np.array_equal(S.coverage(shape, x, y, size), direct)
            assert direct.sum() > 0 and direct[:y].sum() == 0 and direct[:, :x].sum() == 0
    assert np.array_equal(  # off the pixel grid: computed directly
        S.coverage("circle", 8.5, 8.25, 12), S._coverage("circle", 8.5, 8.25, 12, S.IMAGE_SIZE)
    )
