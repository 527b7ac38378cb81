"""benchmarks/credit_by_change.py: which requirements a negative changes, and its table."""

import math

import pytest
import torch
from benchmark_scripts import benchmark_script

from t2i_gcpo.algos.metrics import token_auroc
from t2i_gcpo.toy import scenes as S
from t2i_gcpo.toy.oracle import Detection


@pytest.fixture(scope="module")
def by_change():
    with benchmark_script("credit_by_change") as module:
        yield module


def record(tag: str, prompt: str) -> dict:
    return next(m for m in S.all_metadata(tag) if m["prompt"] == prompt)


def test_changed_indices_name_the_requirements_a_negative_touches(by_change):
    pair = record("two_object", "a photo of a circle and a triangle")
    assert by_change.changed_indices(pair, "a photo of a square and a triangle") == ("class", {0})
    assert by_change.changed_indices(pair, "a photo of a circle and a square") == ("class", {1})
    colours = record("color_attr", "a photo of a red circle and an orange square")
    swapped = "a photo of an orange circle and a red square"
    assert by_change.changed_indices(colours, swapped) == ("swap_colors", {0, 1})
    three = record("counting", "a photo of three circles")
    assert by_change.changed_indices(three, "a photo of two circles") == ("count", {0})
    with pytest.raises(ValueError, match="not one change"):
        by_change.changed_indices(three, "a photo of two squares")


def test_table_averages_each_cell_and_pools_by_kind(by_change):
    out = {
        ("all", "two_object", "class"): [0.5, 0.7],
        ("changed", "two_object", "class"): [0.9, float("nan")],
        ("unchanged", "two_object", "class"): [0.2],
        ("all", "counting", "count"): [0.1],
        ("changed", "counting", "count"): [0.1],
        ("gap changed", "counting", "count"): [-0.5, 1.5],
    }
    lines = by_change.table(out).splitlines()
    assert lines[2] == "| counting | count | 0.100 (1) | 0.100 (1) |  | 0.500 (2) |  |  |  |"
    assert lines[3] == "| two_object | class | 0.600 (2) | 0.900 (1) | 0.200 (1) |  |  |  |  |"
    assert lines[-1] == (
        "| every | every | 0.433 (3) | 0.500 (2) | 0.200 (1) | 0.500 (2) |  |  |  |"
    )
    assert math.isnan(by_change.mean([float("nan")])[0])


def box_detection(top: int, left: int, size: int) -> Detection:
    mask = torch.zeros(S.IMAGE_SIZE, S.IMAGE_SIZE, dtype=torch.bool)
    mask[top : top + size, left : left + size] = True
    return Detection("square", "red", (left, top, left + size, top + size), mask, size * size)


def test_first_rows_mark_each_objects_first_token_row(by_change):
    grid = (S.GRID, S.GRID)
    # pixels 6-17 down, 8-19 across: token rows 1-4, columns 2-4; the first row is row 1
    # (pixels 6-7 touch its patches); a second box, pixels 32-39 by 0-7: token rows 8-9, columns 0-1
    objects = [box_detection(6, 8, 12), box_detection(32, 0, 8)]
    rows = by_change.first_rows(objects, grid).reshape(grid)
    expected = torch.zeros(grid, dtype=torch.bool)
    expected[1, 2:5] = True
    expected[8, 0:2] = True
    assert torch.equal(rows, expected)
    assert not by_change.first_rows([], grid).any()
    # as a credit against both boxes' 12 + 4 patches: the 5 first-row tokens outscore the 128
    # ground tokens, the other 9 + 2 object tokens tie with them: (5 + 11 / 2) / 16
    objects_mask = by_change.patches(objects, grid)
    assert objects_mask.sum() == 16
    auroc = token_auroc(rows.flatten().float()[None], objects_mask[None]).item()
    assert auroc == pytest.approx((5 + 11 / 2) / 16, rel=1e-6)
