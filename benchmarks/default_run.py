"""The default `t2i-gcpo train`, three times (seeds 0, 1, 2): wall time and the held-out GenEval
score before and after, per seed and on average, with every category's accuracy and the objects
found beyond the prompt's an image (`eval/objects/extra`, "extras").

Each run is the command a user types, `t2i-gcpo train --seed S --logging.output_dir DIR`, in a
subprocess on the whole machine (2 CPU threads); nothing else should run meanwhile.

    python benchmarks/default_run.py [--seeds 0 1 2] [--out runs_default]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


def read_metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def table(rows: list[tuple]) -> str:
    """(seed, seconds, first eval record, last eval record) rows -> the markdown table and the
    mean gain line."""
    lines = [
        "| seed | wall s | GenEval start -> end (points) | " + " | ".join(TAGS) + " | extras |"
    ]
    lines.append("|---" * (5 + len(TAGS)) + "|")
    for seed, seconds, first, last in rows:
        gain = 100 * (last["eval/oracle/geneval"] - first["eval/oracle/geneval"])
        cells = [
            f"{100 * first[f'eval/oracle/{t}']:.0f}->{100 * last[f'eval/oracle/{t}']:.0f}"
            for t in TAGS
        ]
        score = f"{100 * first['eval/oracle/geneval']:.1f} -> "
        score += f"{100 * last['eval/oracle/geneval']:.1f} ({gain:+.1f})"
        extras = [r.get("eval/objects/extra", float("nan")) for r in (first, last)]
        cells.append(f"{extras[0]:.2f}->{extras[1]:.2f}")
        lines.append(f"| {seed} | {seconds:.0f} | {score} | " + " | ".join(cells) + " |")
    gains = [100 * (r[3]["eval/oracle/geneval"] - r[2]["eval/oracle/geneval"]) for r in rows]
    spread = statistics.stdev(gains) if len(gains) > 1 else 0.0
    lines.append(
        f"\nmean gain {statistics.fmean(gains):+.1f} +- {spread:.1f} points; every seed rising: "
        f"{all(g > 0 for g in gains)}; longest run {max(r[1] for r in rows):.0f} s"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs_default", help="run folders (replaced)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more overrides")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        folder = Path(args.out) / f"seed{seed}"
        shutil.rmtree(folder, ignore_errors=True)
        command = [sys.executable, "-m", "t2i_gcpo.cli", "train", "--seed", str(seed),
                   "--logging.output_dir", str(folder), "--logging.progress_bar", "false",
                   *args.extra]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        evals = [r for r in read_metrics(folder) if "eval/oracle/geneval" in r]
        first, last = evals[0], evals[-1]
        rows.append((seed, seconds, first, last))
        print(f"seed {seed}: {seconds:.0f} s, GenEval {100 * first['eval/oracle/geneval']:.1f} -> "
              f"{100 * last['eval/oracle/geneval']:.1f}", flush=True)  # fmt: skip
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
