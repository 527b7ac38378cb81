"""Group advantages and the DAPO filter, against hand-computed numbers."""

import math

import pytest
import torch

from t2i_gcpo.algos import group_advantages, informative_groups

REWARDS = torch.tensor([1.0, 2.0, 3.0, 4.0, 4.0, 4.0])


def test_group_scale_uses_unbiased_group_std():
    # group 1: mean 2, unbiased std 1; group 2: constant -> zero advantages
    s = 1.0 / (1.0 + 1e-4)
    expected = torch.tensor([-s, 0.0, s, 0.0, 0.0, 0.0])
    torch.testing.assert_close(group_advantages(REWARDS, 3), expected)


def test_batch_scale_divides_by_std_of_all_rewards():
    # all six rewards: mean 3, squared deviations sum 8, unbiased variance 8/5
    s = 1.0 / (math.sqrt(1.6) + 1e-4)
    expected = torch.tensor([-s, 0.0, s, 0.0, 0.0, 0.0])
    torch.testing.assert_close(group_advantages(REWARDS, 3, scale="batch"), expected)


def test_none_scale_only_centres():
    expected = torch.tensor([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    torch.testing.assert_close(group_advantages(REWARDS, 3, scale="none"), expected)


def test_group_of_two_and_custom_eps():
    # mean 1, unbiased std sqrt(2): (0 - 1) / sqrt(2)
    out = group_advantages(torch.tensor([0.0, 2.0]), 2, eps=0.0)
    torch.testing.assert_close(out, torch.tensor([-1 / math.sqrt(2), 1 / math.sqrt(2)]))


def test_informative_groups_drops_constant_groups():
    keep = informative_groups(REWARDS, 3)
    assert keep.tolist() == [True, True, True, False, False, False]
    # a group with a tiny spread is dropped by a larger threshold only
    near = torch.tensor([1.0, 1.0 + 1e-5, 0.0, 1.0])
    assert informative_groups(near, 2).tolist() == [True, True, True, True]
    assert informative_groups(near, 2, min_std=1e-3).tolist() == [False, False, True, True]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rewards": REWARDS, "group_size": 4}, "does not divide"),
        ({"rewards": REWARDS, "group_size": 1}, "group_size=1"),
        ({"rewards": REWARDS, "group_size": 3, "scale": "std"}, "scale='std'"),
        ({"rewards": REWARDS.view(2, 3), "group_size": 3}, "rewards must be (N,)"),
        ({"rewards": torch.tensor([1.0, float("nan")]), "group_size": 2}, "finite"),
        ({"rewards": torch.tensor([1.0, float("inf")]), "group_size": 2}, "finite"),
    ],
)
def test_group_advantages_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        group_advantages(**kwargs)


def test_informative_groups_rejects_bad_group_size():
    with pytest.raises(ValueError, match="group_size"):
        informative_groups(REWARDS, 5)
