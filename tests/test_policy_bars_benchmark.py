"""benchmarks/policy_bars.py on hand-made variant tables."""

import math

import pytest
from benchmark_scripts import benchmark_script

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


@pytest.fixture(scope="module")
def policy_bars():
    with benchmark_script("policy_bars") as module:
        yield module


def figures(geneval, single, colour_attr, blame, object_auroc):
    """One variant's figures: the other categories at 0.3."""
    out = {f"policy/oracle/{t}": 0.3 for t in TAGS}
    out |= {
        "policy/oracle/geneval": geneval,
        "policy/oracle/single_object": single,
        "policy/oracle/color_attr": colour_attr,
        "policy/credit/null/blame_auroc": blame,
        "policy/credit/attribute/object_auroc": object_auroc,
    }
    return out


def write_table(path, table):
    names = list(next(iter(table.values())))
    lines = ["# a comment line, skipped", "figure" + " " * 47 + "\t".join(table)]
    lines += [f"{n:<53}" + "\t".join(f"{table[v][n]:.3f}" for v in table) for n in names]
    path.write_text("\n".join(lines) + "\n")


def test_read_table_round_trips_and_rejects_a_short_row(policy_bars, tmp_path):
    table = {"A": figures(0.3, 0.9, 0.0, 0.91, 0.7), "B": figures(0.2, 0.8, 0.1, 0.8, 0.85)}
    write_table(tmp_path / "t.txt", table)
    assert policy_bars.read_table(tmp_path / "t.txt") == table  # 3 decimals: exact
    (tmp_path / "bad.txt").write_text("figure A B\npolicy/oracle/geneval 0.3\n")
    with pytest.raises(
        ValueError, match=r"bad.txt: row 'policy/oracle/geneval' has 1 values for 2"
    ):
        policy_bars.read_table(tmp_path / "bad.txt")
    (tmp_path / "none.txt").write_text("# only comments\n")
    with pytest.raises(ValueError, match="header line"):
        policy_bars.read_table(tmp_path / "none.txt")


def test_bars_are_the_issues_with_their_edges_inclusive(policy_bars):
    # A: GenEval in band, single_object above 0.85, color_attr below 0.10, blame at 0.90
    # exactly (met), object AUROC below 0.80
    met = policy_bars.bars_met(figures(0.30, 0.86, 0.05, 0.90, 0.79))
    names = [b.name for b, m in zip(policy_bars.BARS, met, strict=True) if not m]
    assert names == ["single_object 10-85%", "color_attr 10-85%", "object AUROC attribute >= 0.80"]
    assert all(policy_bars.bars_met(figures(0.70, 0.85, 0.10, 0.95, 0.80)))
    assert policy_bars.BARS[0].gap(0.25) == pytest.approx(0.05)
    assert policy_bars.BARS[0].gap(0.5) == 0.0


def test_spearman_against_hand_computed_ranks(policy_bars):
    # ranks differ by 0, 1, 1, 0: 1 - 6 * 2 / (4 * 15) = 0.8
    assert policy_bars.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # tied x ranks 1.5, 1.5, 3 against 1, 2, 3: centred (-.5, -.5, 1).(-1, 0, 1) = 1.5 over
    # sqrt(1.5) sqrt(2)
    assert policy_bars.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(3))


def test_report_names_the_bars_no_policy_meets_together(policy_bars):
    table = {
        # in the GenEval band, credit short; credit met, out of the band
        "A": figures(0.35, 0.80, 0.12, 0.92, 0.75),
        "B": figures(0.20, 0.80, 0.12, 0.92, 0.85),
    }
    text = policy_bars.report(table)
    assert "- GenEval 30-70% and object AUROC attribute >= 0.80" in text
    assert "| A | 35.0 | 80.0 | 30.0 | 30.0 | 30.0 | 30.0 | 12.0 | 0.920 | 0.750 | 8 / 9 |" in text
    assert "| object AUROC attribute >= 0.80 | 1 | 0.750-0.850 | 0.750-0.750 |" in text
    assert "- A: 8 / 9; misses object AUROC attribute >= 0.80 (0.750)" in text
    # only A is in the GenEval band: two_object 0.3 x colors 0.3^2 = 2.7%
    assert "- A: 12.0% against 2.7%" in text
    assert "- B: 12.0%" not in text
