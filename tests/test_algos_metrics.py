"""Credit figures with a chance level and a perfect score, on hand-computed cases."""

import math

import pytest
import torch

from t2i_gcpo.algos import localization_ratio, precision_at_k, token_auroc


def test_auroc_counts_ordered_pairs_and_shares_ties():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.3], [1.0, 1.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.4]])
    positives = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]).bool()
    assert token_auroc(scores, positives).tolist() == [1.0, 0.5, 0.0]
    # positives 0.5 and 0.2 against negatives 0.4, 0.2: pairs (0.5>0.4, 0.5>0.2, 0.2<0.4, 0.2=0.2)
    mixed = token_auroc(torch.tensor([[0.5, 0.2, 0.4, 0.2]]), torch.tensor([[1, 1, 0, 0]]).bool())
    assert mixed.item() == pytest.approx((1 + 1 + 0 + 0.5) / 4)


def test_auroc_ignores_masked_tokens_and_is_nan_without_both_kinds():
    scores = torch.tensor([[0.9, 0.1, 5.0, 0.5]])
    positives = torch.tensor([[1, 0, 0, 0]]).bool()
    mask = torch.tensor([[1, 1, 0, 1]]).bool()  # the 5.0 is not a valid token
    assert token_auroc(scores, positives, mask).item() == 1.0
    assert token_auroc(scores, positives).item() == pytest.approx(2 / 3)
    assert math.isnan(token_auroc(scores, torch.zeros(1, 4).bool()).item())
    assert math.isnan(token_auroc(scores, torch.ones(1, 4).bool()).item())


def test_precision_at_k_against_its_chance_level():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1, 0.0, 0.2]])
    positives = torch.tensor([[1, 0, 1, 0, 0, 0]]).bool()  # K = 2: top-2 holds one positive
    precision, chance = precision_at_k(scores, positives)
    assert precision.item() == 0.5 and chance.item() == pytest.approx(2 / 6)
    # ties at the K-th score are shared out: K = 1, three tied tokens, one of them positive
    tied, chance = precision_at_k(torch.tensor([[1.0, 1.0, 1.0, 0.0]]),
                                  torch.tensor([[1, 0, 0, 0]]).bool())  # fmt: skip
    assert tied.item() == pytest.approx(1 / 3) and chance.item() == 0.25
    perfect, _ = precision_at_k(torch.tensor([[0.1, 0.9, 0.8]]), torch.tensor([[0, 1, 1]]).bool())
    assert perfect.item() == 1.0
    assert math.isnan(precision_at_k(scores, torch.zeros(1, 6).bool())[0].item())


def test_localization_ratio_is_one_for_uniform_credit():
    coverage = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert localization_ratio(torch.ones(1, 4), coverage).item() == pytest.approx(1.0)
    assert localization_ratio(torch.tensor([[4.0, 0, 0, 0]]), coverage).item() == 4.0
