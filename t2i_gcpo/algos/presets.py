"""The named algorithms: GRPO, DAPO and GCPO as values of one typed recipe."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from t2i_gcpo.algos._checks import check_choice, check_open_unit, check_positive
from t2i_gcpo.algos.advantages import ADVANTAGE_SCALES
from t2i_gcpo.algos.credit import (
    DIVERGENCE_KINDS,
    NORMALIZATIONS,
    credit_weights,
    token_divergence,
)
from t2i_gcpo.algos.losses import AGGREGATIONS

NEGATIVE_MODES = ("null", "caption", "swap", "attribute")
NEGATIVE_COMBINES = ("mean", "max")


def knob(default, help: str):  # noqa: A002 - the word the docs use
    """A preset field with its documentation (read by the config, the CLI and the docs)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class AlgorithmPreset:
    """Every knob of algos/ that distinguishes GRPO, DAPO and GCPO, with its allowed values.

    Each field's meaning is written once, in its `knob(..., help=...)`; `t2i_gcpo.config`
    builds the `algo` config section from these fields."""

    name: str = knob("custom", "Label used in logs and configs.")
    advantage_scale: str = knob(
        "group",
        'Advantage denominator: "group" std, "batch" std (of each process\'s batch) '
        'or "none" (Dr. GRPO).',
    )
    advantage_eps: float = knob(1e-4, "Added to the std in the advantage denominator.")
    dynamic_sampling: bool = knob(
        False, "DAPO: drop groups whose reward std is below min_group_std (no signal)."
    )
    min_group_std: float = knob(1e-6, "Threshold of the dynamic-sampling filter.")
    refill_rounds: int = knob(
        0,
        "Dynamic sampling: when fewer groups than the step's prompts carry a signal, sample "
        "this many more rounds of prompts at most to fill the batch, as DAPO does (0: train on "
        "the informative groups only).",
    )
    divergence: str = knob("k3", 'Per-token prompt dependence: "k3", "abs" or "logratio".')
    normalization: str = knob(
        "uniform", 'Credit: "uniform" (plain GRPO/DAPO), "rank", "softmax" or "linear".'
    )
    top_fraction: float = knob(0.4, "Rank credit: this fraction of the most prompt-dependent "
                               "tokens ...")  # fmt: skip
    top_mass: float = knob(0.8, "... carries this fraction of the credit.")
    temperature: float = knob(1.0, "Softmax credit temperature.")
    negative: str = knob(
        "null",
        'Negative prompt of the credit contrast: "null" (the CFG null prompt), '
        '"caption" (each prompt record\'s negative_prompt), "swap" (one colour or object word '
        'of the prompt swapped) or "attribute" (one thing a GenEval record names changed), '
        "see t2i_gcpo.data.negatives.",
    )
    negative_count: int = knob(
        1,
        'Negatives a prompt is contrasted with ("swap" and "attribute" draw this many '
        "different captions); their divergences are combined by negative_combine, then "
        "normalized once.",
    )
    negative_combine: str = knob(
        "mean", 'How several negatives\' per-token divergences combine: "mean" or "max".'
    )
    clip_low: float = knob(0.2, "Lower clip range: the ratio is clipped at 1 - clip_low.")
    clip_high: float = knob(
        0.2, "Upper clip range: the ratio is clipped at 1 + clip_high (0.28: DAPO's clip-higher)."
    )
    aggregation: str = knob(
        "sequence_mean", 'Loss aggregation: "sequence_mean", "token_mean" or "credit_weighted".'
    )
    beta: float = knob(
        0.0, "Weight of the k3 KL to a frozen reference policy (0: no reference model is loaded)."
    )
    kl_relax: bool = knob(
        False, "GCPO: halve the KL on tokens with credit >= 1 (mask 0.5 + 0.5 clamp(2 - 2w, 0, 1))."
    )

    def __post_init__(self) -> None:
        check_choice("advantage_scale", self.advantage_scale, ADVANTAGE_SCALES)
        check_choice("divergence", self.divergence, DIVERGENCE_KINDS)
        check_choice("normalization", self.normalization, NORMALIZATIONS)
        check_choice("negative", self.negative, NEGATIVE_MODES)
        check_choice("aggregation", self.aggregation, AGGREGATIONS)
        check_choice("negative_combine", self.negative_combine, NEGATIVE_COMBINES)
        if isinstance(self.negative_count, bool) or not isinstance(self.negative_count, int):
            raise ValueError(f"negative_count={self.negative_count!r} must be an int >= 1")
        if self.negative_count < 1:
            raise ValueError(f"negative_count={self.negative_count} must be >= 1")
        if self.negative_count > 1 and self.negative not in ("swap", "attribute"):
            raise ValueError(
                f"negative_count={self.negative_count} needs negative 'swap' or 'attribute' "
                f"(the {self.negative!r} negative has one caption a prompt)"
            )
        check_open_unit("top_fraction", self.top_fraction)
        check_open_unit("top_mass", self.top_mass)
        check_positive("temperature", self.temperature)
        check_positive("advantage_eps", self.advantage_eps, allow_zero=True)
        check_positive("min_group_std", self.min_group_std, allow_zero=True)
        if isinstance(self.refill_rounds, bool) or not isinstance(self.refill_rounds, int):
            raise ValueError(f"refill_rounds={self.refill_rounds!r} must be an int >= 0")
        check_positive("refill_rounds", self.refill_rounds, allow_zero=True)
        check_positive("clip_low", self.clip_low, allow_zero=True)
        check_positive("clip_high", self.clip_high, allow_zero=True)
        check_positive("beta", self.beta, allow_zero=True)
        if self.clip_low >= 1.0:
            raise ValueError(f"clip_low={self.clip_low} must be < 1")
        if self.normalization == "linear" and self.divergence == "logratio":
            raise ValueError(
                "normalization='linear' needs a non-negative divergence; "
                "use divergence 'k3' or 'abs' with it"
            )

    @property
    def uses_credit(self) -> bool:
        """True when tokens get non-uniform credit (so logp under the negative is needed)."""
        return self.normalization != "uniform"

    def token_credit(
        self,
        logp_pos: torch.Tensor,
        logp_neg: torch.Tensor | list[torch.Tensor],
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """logp_pos, logp_neg, mask (B, T) -> (divergence, credit), (B, T) each: this preset's
        divergence and credit weights (uniform credit for GRPO and DAPO). A list of logp_neg
        (several negatives) combines their divergences (mean or max) before the one
        normalization."""
        negatives = logp_neg if isinstance(logp_neg, list | tuple) else [logp_neg]
        each = [token_divergence(logp_pos, n, self.divergence) for n in negatives]
        stacked = torch.stack(each)
        divergence = stacked.mean(dim=0) if self.negative_combine == "mean" else stacked.amax(0)
        credit = credit_weights(
            divergence,
            mask,
            self.normalization,
            self.top_fraction,
            self.top_mass,
            self.temperature,
        )
        return divergence, credit

    def replace(self, **changes) -> AlgorithmPreset:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


GRPO = AlgorithmPreset(name="grpo", beta=0.03)
"""GRPO: group-std advantages broadcast to every token, clip 0.2, per-sequence mean. The KL
weight matches the GCPO reference recipe so the two differ only in credit."""

DAPO = AlgorithmPreset(
    name="dapo",
    dynamic_sampling=True,
    refill_rounds=3,
    clip_high=0.28,
    aggregation="token_mean",
)
"""DAPO: dynamic sampling (drop zero-variance groups and sample up to 3 more rounds of prompts to
refill the batch), clip-higher 0.28, token mean, no KL."""

GCPO = AlgorithmPreset(
    name="gcpo",
    divergence="k3",
    normalization="rank",
    top_fraction=0.4,
    top_mass=0.8,
    negative="null",
    aggregation="credit_weighted",
    beta=0.03,
    kl_relax=True,
)
"""GCPO reference recipe: k3 divergence against the null (CFG) branch, rank credit 0.4/0.8,
sum(ratio A w) / sum(w), KL beta 0.03 relaxed on credited tokens."""

PRESETS: dict[str, AlgorithmPreset] = {p.name: p for p in (GRPO, DAPO, GCPO)}


def credit_preset(preset: AlgorithmPreset) -> AlgorithmPreset:
    """The preset itself when it gives token credit, else GCPO's credit settings (so that a
    GRPO or DAPO run can still be asked where GCPO would have put the credit)."""
    return preset if preset.uses_credit else GCPO


def get_preset(name: str) -> AlgorithmPreset:
    """The preset called `name` ("grpo", "dapo" or "gcpo")."""
    check_choice("algorithm", name, PRESETS)
    return PRESETS[name]
