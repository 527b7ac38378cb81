"""Which of the pretrained policy's bars each recorded policy variant meets, and which bars no
variant meets together: read from docs/results/policy_variants.txt (the figures
benchmarks/shapes_quality.py printed for every variant of benchmarks/policy_stage.py), nothing
is sampled or trained.

The bars are issue 13's for the pretrained policy on held-out prompts: GenEval score 30-70%,
every category 10-85%, blame AUROC >= 0.90 against the null negative, object AUROC >= 0.80
against attribute negatives. Variants whose evaluation counts prompts they trained on (the
table's header says which) are left out unless named with --include.

    python benchmarks/policy_bars.py [--table docs/results/policy_variants.txt]
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from t2i_gcpo.algos.credit import average_ranks
from t2i_gcpo.data.geneval import TAGS

TABLE = Path(__file__).resolve().parents[1] / "docs" / "results" / "policy_variants.txt"
SEEN_EVAL = ("W", "Y", "Z")
"""Variants trained on held-out shape pairs drawn in position and color_attr prompts but
evaluated on the shipped split, whose position and color_attr prompts they saw."""


@dataclass(frozen=True)
class Bar:
    name: str
    figure: str
    low: float = -math.inf
    high: float = math.inf

    def met(self, value: float) -> bool:
        return self.low <= value <= self.high

    def gap(self, value: float) -> float:
        """How far the value is outside the bar, in the figure's units (0 inside)."""
        return max(self.low - value, value - self.high, 0.0)


BARS = (
    Bar("GenEval 30-70%", "policy/oracle/geneval", 0.30, 0.70),
    *(Bar(f"{tag} 10-85%", f"policy/oracle/{tag}", 0.10, 0.85) for tag in TAGS),
    Bar("blame AUROC null >= 0.90", "policy/credit/null/blame_auroc", 0.90),
    Bar("object AUROC attribute >= 0.80", "policy/credit/attribute/object_auroc", 0.80),
)


def read_table(path: Path) -> dict[str, dict[str, float]]:
    """The figure table of policy_variants.txt -> {variant: {figure: value}}."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    if not lines or not lines[0].startswith("figure"):
        raise ValueError(f"{path}: expected the figure table's header line ('figure ...') first")
    variants = lines[0][len("figure") :].split()
    table: dict[str, dict[str, float]] = {v: {} for v in variants}
    for line in lines[1:]:
        name, *cells = line.split()
        if len(cells) != len(variants):
            raise ValueError(
                f"{path}: row {name!r} has {len(cells)} values for {len(variants)} variants"
            )
        for variant, cell in zip(variants, cells, strict=True):
            table[variant][name] = float(cell)
    return table


def bars_met(figures: dict[str, float]) -> list[bool]:
    return [bar.met(figures[bar.figure]) for bar in BARS]


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation (ties averaged)."""
    ranks = average_ranks(
        torch.tensor([x, y], dtype=torch.float64), torch.ones(2, len(x), dtype=bool)
    )
    a, b = ranks[0] - ranks[0].mean(), ranks[1] - ranks[1].mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def report(table: dict[str, dict[str, float]]) -> str:
    variants = list(table)
    met = {v: bars_met(table[v]) for v in variants}
    out = [f"{len(variants)} policies: {' '.join(variants)}", ""]
    out.append(
        "| policy | GenEval | " + " | ".join(TAGS) + " | blame null | object attr | bars met |"
    )
    out.append("|---" * (len(TAGS) + 5) + "|")
    for v in variants:
        f = table[v]
        cells = [f"{100 * f['policy/oracle/geneval']:.1f}"]
        cells += [f"{100 * f[f'policy/oracle/{t}']:.1f}" for t in TAGS]
        cells += [f"{f[BARS[-2].figure]:.3f}", f"{f[BARS[-1].figure]:.3f}"]
        out.append(f"| {v} | " + " | ".join(cells) + f" | {sum(met[v])} / {len(BARS)} |")
    band = [v for v in variants if met[v][0]]
    out += [
        "",
        f"| bar | policies meeting it | range | range over the {len(band)} in the GenEval band |",
    ]
    out.append("|---|---|---|---|")
    for bar in BARS:
        values = [table[v][bar.figure] for v in variants]
        inside = [table[v][bar.figure] for v in band]
        span = f"{min(inside):.3f}-{max(inside):.3f}" if inside else ""
        count = sum(bar.met(x) for x in values)
        out.append(f"| {bar.name} | {count} | {min(values):.3f}-{max(values):.3f} | {span} |")
    out += ["", "most bars met at once:"]
    top = max(sum(m) for m in met.values())
    for v in variants:
        if sum(met[v]) == top:
            missed = [
                f"{b.name} ({table[v][b.figure]:.3f})"
                for b, m in zip(BARS, met[v], strict=True)
                if not m
            ]
            out.append(f"- {v}: {top} / {len(BARS)}; misses {', '.join(missed)}")
    out += ["", "bars never met together (pairs each met by some policy, by none at once):"]
    for (i, a), (j, b) in itertools.combinations(enumerate(BARS), 2):
        alone = any(m[i] for m in met.values()) and any(m[j] for m in met.values())
        if alone and not any(m[i] and m[j] for m in met.values()):
            out.append(f"- {a.name} and {b.name}")
    out += [
        "",
        "color_attr against two_object x colors^2 (what it would be if drawing both classes and"
        " colouring each named object right were independent), the policies in the GenEval band:",
    ]
    for v in band:
        f = table[v]
        guess = f["policy/oracle/two_object"] * f["policy/oracle/colors"] ** 2
        out.append(f"- {v}: {100 * f['policy/oracle/color_attr']:.1f}% against {100 * guess:.1f}%")
    out += ["", f"Spearman rank correlation over the {len(variants)} policies:"]
    pairs = [
        ("policy/credit/attribute/object_auroc", "policy/oracle/geneval"),
        ("policy/credit/attribute/object_auroc", "policy/oracle/two_object"),
        ("policy/credit/attribute/object_auroc", "policy/oracle/single_object"),
        ("policy/oracle/single_object", "policy/oracle/two_object"),
        ("policy/oracle/color_attr", "policy/oracle/two_object"),
        ("policy/oracle/color_attr", "policy/oracle/colors"),
    ]
    for a, b in pairs:
        rho = spearman([table[v][a] for v in variants], [table[v][b] for v in variants])
        out.append(f"- {a.split('/', 1)[1]} with {b.split('/', 1)[1]}: {rho:+.2f}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument(
        "--include", nargs="*", default=[], help=f"of {SEEN_EVAL}, the variants to keep"
    )
    args = parser.parse_args(argv)
    table = read_table(args.table)
    dropped = [v for v in SEEN_EVAL if v in table and v not in args.include]
    table = {v: f for v, f in table.items() if v not in dropped}
    if dropped:
        print(f"left out (evaluated on prompts they trained on): {' '.join(dropped)}")
    print(report(table))


if __name__ == "__main__":
    main()
