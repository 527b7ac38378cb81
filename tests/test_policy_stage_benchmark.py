"""benchmarks/policy_stage.py sorts the shapes oracle's verdicts by what it found wrong; checked
on renders of records that break the prompt in one known way each."""

import numpy as np
import pytest
import torch
from benchmark_scripts import benchmark_script

from t2i_gcpo.data.geneval import make_record
from t2i_gcpo.toy import scenes as S
from t2i_gcpo.toy.assets import load_shapes_policy
from t2i_gcpo.toy.build import code_colours
from t2i_gcpo.toy.oracle import judge_batch
from t2i_gcpo.toy.rewards import ShapesOracle


@pytest.fixture(scope="module")
def policy_stage():
    with benchmark_script("policy_stage") as module:
        yield module


def two(tag, first, second):
    return make_record(tag, [{"count": 1, **first}, {"count": 1, **second}])


PROMPT = two(
    "color_attr", {"class": "circle", "color": "red"}, {"class": "square", "color": "blue"}
)
DRAWN = {
    "right": PROMPT,
    "colour": two(
        "color_attr", {"class": "circle", "color": "green"}, {"class": "square", "color": "blue"}
    ),
    "class or count": two(
        "color_attr", {"class": "cross", "color": "red"}, {"class": "square", "color": "blue"}
    ),
    "class or count and colour": two(
        "color_attr", {"class": "cross", "color": "red"}, {"class": "square", "color": "green"}
    ),
}


def test_failure_kinds_follow_what_the_oracle_found_wrong(policy_stage):
    rng = np.random.default_rng(0)
    cases = [(kind, S.sample_scene(drawn, rng).image) for kind, drawn in DRAWN.items()]
    # a relation broken: the circle drawn below the square where the prompt says above
    above, below = (
        make_record("position", [{"class": "square", "count": 1},
                                 {"class": "circle", "count": 1, "position": [where, 0]}])
        for where in ("above", "below")
    )  # fmt: skip
    cases.append(("relation", S.sample_scene(below, rng).image))
    # one object too many for an exact count
    three = make_record("counting", [{"class": "circle", "count": 3}])
    cases.append(("class or count", S.sample_scene(three, rng).image))
    prompts = [PROMPT] * 4 + [above, make_record("counting", [{"class": "circle", "count": 2}])]
    verdicts = judge_batch(torch.stack([image for _, image in cases]), prompts)
    kinds = [policy_stage.failure_kind(v.correct, v.reason) for v in verdicts]
    assert kinds == [kind for kind, _ in cases], [v.reason for v in verdicts]
    assert set(kinds) == set(policy_stage.KINDS)


def test_objects_beyond_prompt_counts_what_the_oracle_found(policy_stage):
    rng = np.random.default_rng(1)
    asked = make_record("counting", [{"class": "circle", "count": 2}])
    drawn = [make_record("counting", [{"class": "circle", "count": n}]) for n in (1, 2, 3)]
    drawn.append(two("two_object", {"class": "circle"}, {"class": "cross"}))
    images = torch.stack([S.sample_scene(record, rng).image for record in drawn])
    verdicts = ShapesOracle().judge(images, [asked["prompt"]] * 4, [asked] * 4)
    surplus = [policy_stage.objects_beyond_prompt(v, asked) for v in verdicts]
    assert surplus == [-1, 0, 1, 0]  # a cross counts as an object found, though not a circle


def test_object_mass_on_ground_sums_object_codes_outside_the_boxes(policy_stage, monkeypatch):
    policy = load_shapes_policy()
    colours = code_colours(policy.image_tokenizer)
    ground, red = int((colours < 0).nonzero()[0]), int((colours == 0).nonzero()[0])
    logits = torch.full((colours.numel(),), -1e4)
    logits[[ground, red]] = 0.0  # half on a ground code, half on a red object code
    monkeypatch.setattr(
        policy, "token_logits", lambda prompts, tokens: logits.expand(*tokens.shape, -1)
    )
    scenes = S.random_scenes(5, 3, "train")
    outside = [int((~S.box_patches(scene.objects)).sum()) for scene in scenes]
    mass = policy_stage.object_mass_on_ground(policy, scenes, batch_size=2)
    assert torch.allclose(mass, 0.5 * torch.tensor(outside, dtype=torch.float32), rtol=1e-5)


def test_pair_drawn_says_which_classes_of_the_prompts_pair_were_found(policy_stage):
    rng = np.random.default_rng(2)
    asked = two("two_object", {"class": "circle"}, {"class": "cross"})
    drawn = [
        asked,
        two("two_object", {"class": "circle"}, {"class": "triangle"}),
        make_record("counting", [{"class": "cross", "count": 2}]),
    ]
    images = torch.stack([S.sample_scene(record, rng).image for record in drawn])
    verdicts = ShapesOracle().judge(images, [asked["prompt"]] * 3, [asked] * 3)
    counts = [policy_stage.pair_drawn(v, asked) for v in verdicts]
    assert counts == [
        {"circle": 1, "cross": 1, "both": 1, "other": 0, "objects": 2},
        {"circle": 1, "cross": 0, "both": 0, "other": 1, "objects": 2},
        {"circle": 0, "cross": 1, "both": 0, "other": 0, "objects": 2},
    ]


def test_count_errors_tell_too_few_from_too_many(policy_stage):
    rng = np.random.default_rng(1)
    drawn = [make_record("counting", [{"class": "square", "count": n}]) for n in (1, 2, 3)]
    images = torch.stack([S.sample_scene(record, rng).image for record in drawn])
    asked = [make_record("counting", [{"class": "square", "count": 2}])] * 3
    verdicts = judge_batch(images, asked)
    errors = [policy_stage.count_error(v.reason) for v in verdicts]
    assert errors == ["too few", "right", "too many"], [v.reason for v in verdicts]


def circle_and_square(circle_colour, square_colour):
    return two(
        "color_attr",
        {"class": "circle", "color": circle_colour},
        {"class": "square", "color": square_colour},
    )


def test_colour_pairing_says_how_the_two_named_colours_came_out(policy_stage):
    rng = np.random.default_rng(3)
    drawn = {
        "both right": PROMPT,
        "swapped": circle_and_square("blue", "red"),
        "one named colour on both": circle_and_square("red", "red"),
        "other": DRAWN["colour"],
        "class missing": DRAWN["class or count"],
    }
    images = torch.stack([S.sample_scene(record, rng).image for record in drawn.values()])
    verdicts = ShapesOracle().judge(images, [PROMPT["prompt"]] * 5, [PROMPT] * 5)
    pairings = [policy_stage.colour_pairing(v, PROMPT) for v in verdicts]
    assert pairings == list(drawn), [v.details for v in verdicts]
    assert set(pairings) == set(policy_stage.PAIRINGS)


def test_held_out_colour_shapes_counts_the_prompts_unseen_colour_shapes(policy_stage):
    # the train split never names (colour, shape) where colour index + shape index is 0 mod 4:
    # red circle (0 + 0) and green square (3 + 1) are held out, red cross (0 + 3) and blue
    # square (4 + 1) are not
    assert ("red", "circle") in S.HELD_OUT_COLOR_SHAPES
    assert policy_stage.held_out_colour_shapes(PROMPT) == 1
    assert policy_stage.held_out_colour_shapes(circle_and_square("red", "green")) == 2
    assert policy_stage.held_out_colour_shapes(DRAWN["class or count"]) == 0
    # swapped, PROMPT draws a blue circle (4 + 0: held out) and a red square (0 + 1: named)
    assert policy_stage.held_out_colour_shapes(PROMPT, swapped=True) == 1
    # a green circle (3 + 0) and a red square (0 + 1), both named
    assert policy_stage.held_out_colour_shapes(circle_and_square("red", "green"), swapped=True) == 0
    # a red circle (0 + 0) and a green square (3 + 1), both held out
    assert policy_stage.held_out_colour_shapes(circle_and_square("green", "red"), swapped=True) == 2
