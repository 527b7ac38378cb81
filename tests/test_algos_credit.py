"""Token divergence and credit weights: hand-computed values and properties."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from t2i_gcpo.algos import NORMALIZATIONS, credit_weights, rank_exponent, token_divergence
from t2i_gcpo.algos.credit import average_ranks

LN2 = math.log(2.0)


def test_k3_divergence_hand_computed():
    logp_pos = torch.tensor([[0.0, -LN2, -1.0, -31.0]])
    logp_neg = torch.tensor([[-LN2, 0.0, -1.0, -1.0]])
    d = token_divergence(logp_pos, logp_neg)
    # delta = neg - pos: -ln2 -> 0.5 + ln2 - 1; +ln2 -> 2 - ln2 - 1; 0 -> 0; 30 -> 20 -> cap 10
    expected = torch.tensor([[0.5 + LN2 - 1.0, 1.0 - LN2, 0.0, 10.0]])
    torch.testing.assert_close(d, expected)


def test_k3_clamps_large_negative_delta():
    # delta = -30 is clamped to -20: exp(-20) + 20 - 1 = 19.0000..., then capped at 10
    d = token_divergence(torch.tensor([[0.0]]), torch.tensor([[-30.0]]))
    assert d.item() == 10.0
    d = token_divergence(torch.tensor([[0.0]]), torch.tensor([[-5.0]]))
    torch.testing.assert_close(d, torch.tensor([[math.exp(-5.0) + 4.0]]))


def test_abs_and_logratio():
    logp_pos = torch.tensor([[-1.0, -3.0]])
    logp_neg = torch.tensor([[-2.0, -1.0]])
    torch.testing.assert_close(
        token_divergence(logp_pos, logp_neg, "abs"), torch.tensor([[1.0, 2.0]])
    )
    torch.testing.assert_close(
        token_divergence(logp_pos, logp_neg, "logratio"), torch.tensor([[1.0, -2.0]])
    )


def test_divergence_carries_no_gradient():
    logp_pos = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    d = token_divergence(logp_pos, torch.tensor([[-2.0, -1.0]]))
    assert not d.requires_grad


def test_rank_exponent_reference_value():
    assert rank_exponent(0.4, 0.8) == pytest.approx(2.150660103, abs=1e-8)


def test_rank_weights_hand_computed():
    d = torch.tensor([[0.1, 0.3, 0.2, 0.4]])
    # percentiles 1/4, 3/4, 2/4, 4/4, raised to 2.15066, rescaled to sum 4
    expected = torch.tensor([[0.1118047, 1.1873687, 0.4964473, 2.2043794]])
    torch.testing.assert_close(credit_weights(d), expected)


def test_rank_ties_share_their_average_rank():
    d = torch.tensor([[1.0, 1.0, 2.0, 2.0]])
    # ranks 1.5, 1.5, 3.5, 3.5 -> percentiles 0.375, 0.375, 0.875, 0.875
    expected = torch.tensor([[0.2783283, 0.2783283, 1.7216717, 1.7216717]])
    torch.testing.assert_close(credit_weights(d), expected)
    ranks = average_ranks(
        torch.tensor([[5.0, 1.0, 5.0, 5.0, 0.0]]), torch.ones(1, 5, dtype=torch.bool)
    )
    assert ranks.tolist() == [[4.0, 2.0, 4.0, 4.0, 1.0]]


def test_rank_ignores_masked_tokens():
    d = torch.tensor([[0.1, 99.0, 0.3, 0.2, 0.4]])
    mask = torch.tensor([[True, False, True, True, True]])
    expected = torch.tensor([[0.1118047, 0.0, 1.1873687, 0.4964473, 2.2043794]])
    torch.testing.assert_close(credit_weights(d, mask), expected)


def test_softmax_weights_hand_computed():
    d = torch.tensor([[0.0, LN2]])
    # softmax = 1/3, 2/3 -> times 2
    torch.testing.assert_close(
        credit_weights(d, normalization="softmax"), torch.tensor([[2 / 3, 4 / 3]])
    )
    # temperature 0.5 doubles the logits: 1/5, 4/5
    torch.testing.assert_close(
        credit_weights(d, normalization="softmax", temperature=0.5), torch.tensor([[0.4, 1.6]])
    )


def test_linear_and_uniform_weights_hand_computed():
    d = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(
        credit_weights(d, mask, normalization="linear"), torch.tensor([[0.5, 1.5, 0.0]])
    )
    torch.testing.assert_close(
        credit_weights(d, mask, normalization="uniform"), torch.tensor([[1.0, 1.0, 0.0]])
    )


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_all_zero_row_is_uniform_and_empty_row_is_zero(normalization):
    d = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    mask = torch.tensor([[True, True, True], [False, False, False]])
    w = credit_weights(d, mask, normalization=normalization)
    assert w.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"normalization": "hist"}, "normalization='hist'"),
        ({"top_fraction": 1.0}, "top_fraction"),
        ({"top_mass": 0.0}, "top_mass"),
        ({"temperature": 0.0}, "temperature"),
        ({"mask": torch.ones(1, 3, dtype=torch.bool)}, "mask has shape"),
    ],
)
def test_credit_weights_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        credit_weights(torch.tensor([[0.1, 0.2]]), **kwargs)


def test_linear_rejects_signed_divergence_and_nan_is_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        credit_weights(torch.tensor([[1.0, -2.0]]), normalization="linear")
    with pytest.raises(ValueError, match="finite"):
        credit_weights(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="kind='js'"):
        token_divergence(torch.zeros(1, 2), torch.zeros(1, 2), kind="js")
    with pytest.raises(ValueError, match="logp_neg has shape"):
        token_divergence(torch.zeros(1, 2), torch.zeros(1, 3))


# ---- properties -----------------------------------------------------------------------------

rows = st.integers(min_value=1, max_value=4)
cols = st.integers(min_value=1, max_value=40)


@st.composite
def divergence_and_mask(draw):
    b, t = draw(rows), draw(cols)
    values = draw(
        st.lists(
            st.floats(min_value=0.0, max_value=10.0, allow_nan=False, width=32),
            min_size=b * t,
            max_size=b * t,
        )
    )
    flags = draw(st.lists(st.booleans(), min_size=b * t, max_size=b * t))
    return torch.tensor(values).view(b, t), torch.tensor(flags).view(b, t)


@settings(max_examples=60, deadline=None)
@given(divergence_and_mask(), st.sampled_from(NORMALIZATIONS))
def test_weights_nonnegative_masked_zero_and_rows_sum_to_count(dm, normalization):
    d, mask = dm
    w = credit_weights(d, mask, normalization=normalization)
    assert torch.isfinite(w).all()
    assert (w >= 0).all()
    assert (w[~mask] == 0).all()
    torch.testing.assert_close(w.sum(dim=1), mask.sum(dim=1).float(), rtol=1e-5, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(divergence_and_mask())
def test_equal_divergences_get_equal_weights(dm):
    d, mask = dm
    d = d.round()  # many ties
    for normalization in NORMALIZATIONS:
        w = credit_weights(d, mask, normalization=normalization)
        for row in range(d.shape[0]):
            for value in d[row][mask[row]].unique():
                tied = w[row][mask[row] & (d[row] == value)]
                torch.testing.assert_close(tied, tied[:1].expand_as(tied))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=-50, max_value=50), min_size=1, max_size=60, unique=True),
    st.sampled_from(["exp", "affine", "cube"]),
)
def test_rank_weights_invariant_to_increasing_transforms(values, transform):
    d = torch.tensor([values], dtype=torch.float64)
    transformed = {
        "exp": torch.exp(d / 10.0),
        "affine": 3.0 * d + 7.0,
        "cube": d**3,
    }[transform]
    torch.testing.assert_close(credit_weights(d), credit_weights(transformed))


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_top_40_percent_of_576_distinct_tokens_carry_80_percent(seed):
    gen = torch.Generator().manual_seed(seed)
    d = torch.randperm(576, generator=gen).float().view(1, 576) / 100.0
    w = credit_weights(d)
    top = w[0][d[0].topk(round(0.4 * 576)).indices]  # the 230 most prompt-dependent tokens
    assert top.sum().item() / 576 == pytest.approx(0.8, abs=0.01)


@settings(max_examples=60, deadline=None)
@given(divergence_and_mask())
def test_k3_divergence_is_nonnegative_and_zero_on_equal_logps(dm):
    logp, _ = dm
    logp = -logp
    other = logp.flip(1)
    assert (token_divergence(logp, other) >= 0).all()
    assert (token_divergence(logp, logp) == 0).all()
