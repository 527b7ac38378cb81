"""The clipped policy loss, its aggregations and KL, and the presets."""

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from t2i_gcpo.algos import (
    GCPO,
    GRPO,
    PRESETS,
    AlgorithmPreset,
    credit_weights,
    get_preset,
    k3_kl,
    policy_loss,
    relaxed_kl_mask,
)

LN2 = math.log(2.0)


def _ratios(values, requires_grad=False):
    """logp and old_logp (1, T) whose ratios are `values`."""
    old = torch.full((1, len(values)), -2.0)
    logp = (old + torch.tensor([values]).log()).clone().requires_grad_(requires_grad)
    return logp, old


def test_clipped_surrogate_hand_computed_positive_advantage():
    logp, old = _ratios([1.5, 0.5])
    loss, metrics = policy_loss(logp, old, torch.tensor([1.0]), None)
    # min(1.5, 1.2) = 1.2 and min(0.5, 0.8) = 0.5 -> loss -(1.2 + 0.5) / 2
    assert loss.item() == pytest.approx(-0.85, abs=1e-6)
    assert metrics["clip_fraction"] == pytest.approx(0.5)
    assert metrics["ratio_mean"] == pytest.approx(1.0, abs=1e-6)


def test_clipped_surrogate_hand_computed_negative_advantage_and_clip_higher():
    logp, old = _ratios([1.5, 0.5])
    loss, metrics = policy_loss(logp, old, torch.tensor([-1.0]), None)
    # min(-1.5, -1.2) = -1.5 and min(-0.5, -0.8) = -0.8 -> loss (1.5 + 0.8) / 2
    assert loss.item() == pytest.approx(1.15, abs=1e-6)
    assert metrics["clip_fraction"] == pytest.approx(0.5)
    logp, old = _ratios([1.25])
    loss, _ = policy_loss(logp, old, torch.tensor([1.0]), None, clip_high=0.28)
    assert loss.item() == pytest.approx(-1.25, abs=1e-6)


def test_aggregations_hand_computed():
    logp = torch.zeros(2, 3)  # ratio 1 everywhere: per-token loss = -A * w
    adv = torch.tensor([1.0, 2.0])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    seq, _ = policy_loss(logp, logp, adv, mask, aggregation="sequence_mean")
    tok, _ = policy_loss(logp, logp, adv, mask, aggregation="token_mean")
    assert seq.item() == pytest.approx(-1.5)  # rows -1 and -2
    assert tok.item() == pytest.approx(-1.25)  # (-3 - 2) / 4
    credit = torch.tensor([[0.5, 1.0, 1.5], [1.0, 7.0, 7.0]])
    cw, metrics = policy_loss(logp, logp, adv, mask, credit=credit, aggregation="credit_weighted")
    # sum(-A w) = -(0.5 + 1 + 1.5) - 2 = -5 over sum(w) = 4 on valid tokens
    assert cw.item() == pytest.approx(-1.25)
    assert metrics["credit_max"] == 1.5 and metrics["credit_min"] == 0.5


def test_kl_term_and_relaxed_mask_hand_computed():
    logp = torch.zeros(1, 2)
    ref = logp + LN2  # k3 = 2 - ln2 - 1 per token
    k3 = 1.0 - LN2
    torch.testing.assert_close(k3_kl(logp, ref), torch.full((1, 2), k3))
    loss, metrics = policy_loss(logp, logp, torch.zeros(1), None, ref_logp=ref, beta=0.1)
    assert loss.item() == pytest.approx(0.1 * k3, abs=1e-7)
    assert metrics["kl_mean"] == pytest.approx(k3, abs=1e-6)
    credit = torch.tensor([[0.25, 1.75]])
    assert relaxed_kl_mask(credit).tolist() == [[1.0, 0.5]]
    loss, _ = policy_loss(
        logp,
        logp,
        torch.zeros(1),
        None,
        credit=credit,
        ref_logp=ref,
        beta=0.1,
        aggregation="token_mean",
        kl_relax=True,
    )
    assert loss.item() == pytest.approx(0.1 * k3 * (1.0 + 0.5) / 2, abs=1e-7)


def test_first_update_has_ratio_one_with_gradient():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    loss, metrics = policy_loss(logp, logp.detach(), torch.tensor([2.0]), None)
    loss.backward()
    assert metrics["ratio_mean"] == 1.0
    torch.testing.assert_close(logp.grad, torch.tensor([[-1.0, -1.0]]))  # d(-mean(ratio A))/dlogp


@pytest.mark.parametrize(
    ("ratio", "advantage", "frozen"),
    [(1.5, 1.0, True), (1.5, -1.0, False), (0.5, -1.0, True), (0.5, 1.0, False), (1.1, 1.0, False)],
)
def test_clipping_stops_gradient_only_in_the_favoured_direction(ratio, advantage, frozen):
    logp, old = _ratios([ratio, 1.0], requires_grad=True)
    loss, _ = policy_loss(logp, old, torch.tensor([advantage]), None)
    loss.backward()
    assert (logp.grad[0, 0].item() == 0.0) == frozen
    assert logp.grad[0, 1].item() != 0.0


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=0, max_value=2**31 - 1),
    st.floats(min_value=0.0, max_value=0.5),
)
def test_uniform_credit_reduces_gcpo_to_grpo(batch, tokens, seed, beta):
    gen = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, tokens, generator=gen) * 5
    ref = -torch.rand(batch, tokens, generator=gen) * 5
    adv = torch.randn(batch, generator=gen)
    start = old + 0.4 * torch.randn(batch, tokens, generator=gen)
    mask = torch.ones(batch, tokens, dtype=torch.bool)
    credit = credit_weights(torch.rand(batch, tokens, generator=gen), mask, normalization="uniform")

    results = []
    for preset, w in (
        (GRPO, None),
        (GCPO.replace(normalization="uniform", kl_relax=False), credit),
    ):
        logp = start.clone().requires_grad_(True)
        loss, _ = policy_loss(
            logp,
            old,
            adv,
            mask,
            credit=w,
            clip_low=preset.clip_low,
            clip_high=preset.clip_high,
            aggregation=preset.aggregation,
            ref_logp=ref,
            beta=beta,
        )
        loss.backward()
        results.append((loss.detach(), logp.grad))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-6, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-30, max_value=0, allow_nan=False), min_size=2, max_size=20))
def test_k3_kl_nonnegative_and_zero_at_reference(values):
    logp = torch.tensor([values], dtype=torch.float64)
    ref = logp.flip(1)
    assert (k3_kl(logp, ref) >= 0).all()
    assert (k3_kl(logp, logp) == 0).all()
    loss, metrics = policy_loss(logp, logp, torch.zeros(1), None, ref_logp=logp, beta=1.0)
    assert loss.item() == 0.0 and metrics["kl_mean"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"old_logp": torch.zeros(2, 4)}, "old_logp has shape"),
        ({"advantages": torch.zeros(3)}, "advantages has shape"),
        ({"credit": torch.ones(2, 2)}, "credit has shape"),
        ({"aggregation": "mean"}, "aggregation='mean'"),
        ({"beta": 0.1}, "needs ref_logp"),
        ({"beta": -1.0}, "beta"),
        ({"clip_low": 1.0}, "clip_low"),
        ({"mask": torch.full((2, 3), 2)}, "0 and 1"),
    ],
)
def test_policy_loss_rejects_bad_arguments(kwargs, message):
    args = {"logp": torch.zeros(2, 3), "old_logp": torch.zeros(2, 3), "advantages": torch.zeros(2)}
    args["mask"] = None
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        policy_loss(**args)


def test_presets_follow_the_reference_recipe():
    assert set(PRESETS) == {"grpo", "dapo", "gcpo"}
    gcpo = get_preset("gcpo")
    assert (gcpo.divergence, gcpo.normalization, gcpo.negative) == ("k3", "rank", "null")
    assert (gcpo.top_fraction, gcpo.top_mass, gcpo.beta, gcpo.kl_relax) == (0.4, 0.8, 0.03, True)
    assert gcpo.aggregation == "credit_weighted" and gcpo.uses_credit
    dapo = get_preset("dapo")
    assert dapo.dynamic_sampling and dapo.clip_high == 0.28 and dapo.aggregation == "token_mean"
    assert not get_preset("grpo").uses_credit and get_preset("grpo").aggregation == "sequence_mean"
    with pytest.raises(dataclasses.FrozenInstanceError):
        gcpo.beta = 0.0  # type: ignore[misc]


def test_presets_reject_bad_values():
    with pytest.raises(ValueError, match=r"algorithm='ppo'.*'grpo', 'dapo', 'gcpo'"):
        get_preset("ppo")
    with pytest.raises(ValueError, match="normalization='hist'"):
        AlgorithmPreset(name="x", normalization="hist")
    with pytest.raises(ValueError, match="top_fraction"):
        GCPO.replace(top_fraction=1.5)
    with pytest.raises(ValueError, match="non-negative divergence"):
        GCPO.replace(normalization="linear", divergence="logratio")
