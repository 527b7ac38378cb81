"""benchmarks/credit_where.py's split of an image's patches, on a hand-made mask and tile map."""

import pytest
import torch
from benchmark_scripts import benchmark_script


@pytest.fixture(scope="module")
def credit_where():
    with benchmark_script("credit_where") as module:
        yield module


def test_token_kinds_split_objects_rows_and_the_background_by_tile(credit_where):
    masks = torch.zeros(1, 48, 48, dtype=torch.bool)
    masks[0, 5:11, 4:12] = True  # patches rows 1-2, columns 1-2 on a 12 x 12 grid of 4 px
    tiles = torch.full((144,), 3)  # a textured ground tile everywhere...
    tiles[0] = 0  # ...but the flat tile at the top left
    tiles[[20, 100]] = -1  # and two coloured patches that no tile draws
    tiles[13] = -1  # under the object: an object patch whatever its tile
    kinds = credit_where.token_kinds(masks, (12, 12), tiles)
    assert kinds["lead"].nonzero().flatten().tolist() == [13, 14]
    assert kinds["rest"].nonzero().flatten().tolist() == [25, 26]
    assert kinds["flat"].nonzero().flatten().tolist() == [0]
    assert kinds["unmatched"].nonzero().flatten().tolist() == [20, 100]
    assert int(kinds["textured"].sum()) == 144 - 4 - 1 - 2
    assert torch.equal(kinds["background"], kinds["flat"] | kinds["textured"] | kinds["unmatched"])


def test_object_rows_rank_every_detected_object_against_the_rest(credit_where):
    matched = torch.zeros(1, 48, 48, dtype=torch.bool)
    matched[0, 0:4, 0:4] = True  # patch 0
    extra = torch.zeros(1, 48, 48, dtype=torch.bool)
    extra[0, 0:4, 4:8] = True  # patch 1: an object the prompt did not ask for
    credit = torch.zeros(144)
    credit[0], credit[1] = 2.0, 3.0  # the extra object gets the most credit
    rows = credit_where.ObjectRows()
    rows.add(matched, (12, 12), credit, credit, torch.full((144,), 3), torch.cat([matched, extra]))
    # the matched object ranks below one background patch (the extra object) of 143
    assert abs(rows.aurocs["all"][0] - 142 / 143) < 1e-6
    assert rows.against["unmatched"] == [] and rows.detected == [1.0]


def test_extras_and_push_split_the_tokens_and_weigh_them_by_credit(credit_where):
    from t2i_gcpo.toy.oracle import Detection

    matched = torch.zeros(1, 48, 48, dtype=torch.bool)
    matched[0, 5:11, 4:12] = True  # patch rows 1-2, columns 1-2
    extra = torch.zeros(48, 48, dtype=torch.bool)
    extra[20:28, 20:24] = True  # patch rows 5-6, column 5
    detections = [
        Detection("circle", "red", (4, 5, 12, 11), matched[0], 48),
        Detection("square", "red", (20, 20, 24, 28), extra, 32),
    ]
    others = credit_where.extra_objects(matched, detections, (12, 12))
    assert [d.shape for d, _ in others] == ["square"]
    assert others[0][1].nonzero().flatten().tolist() == [65, 77]
    kinds = credit_where.Push.kinds(matched, others, (12, 12))
    assert kinds["matched lead"].nonzero().flatten().tolist() == [13, 14]
    assert kinds["matched rest"].nonzero().flatten().tolist() == [25, 26]
    assert kinds["extras lead"].nonzero().flatten().tolist() == [65]
    assert kinds["extras rest"].nonzero().flatten().tolist() == [77]
    assert int(kinds["ground"].sum()) == 144 - 6
    credit = torch.ones(144)
    credit[[13, 14, 65]] = 3.0
    push = credit_where.Push()
    push.add(0.5, kinds, credit)
    assert push.push[("grpo", "matched lead")] == [0.5 * 2 / 144]
    assert push.push[("gcpo", "matched lead")] == [0.5 * 6 / 144]
    assert push.push[("gcpo", "extras lead")] == [0.5 * 3 / 144]
    assert push.push[("grpo", "ground")] == [0.5 * 138 / 144]
    extras = credit_where.Extras()
    gap = torch.zeros(144)
    gap[[65, 77]] = torch.tensor([1.0, 2.0])
    extras.add(others, {"circle"}, credit, credit, gap)
    assert extras.per_image == {"named": [0.0], "other": [1.0]}
    assert extras.weight["other"] == [2.0] and extras.gap["other"] == [1.5]
