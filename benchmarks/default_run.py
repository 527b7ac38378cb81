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
import math
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from t2i_gcpo.data.prompts import resolve_prompts

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


def read_metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def images_per_category(folder: Path) -> dict[str, int]:
    """How many images each category's accuracy in a run's evaluation is over: the eval
    prompts of each tag times the samples drawn a prompt (read from the run's config.yaml)."""
    config = yaml.safe_load((folder / "config.yaml").read_text())
    tags = Counter(r.metadata.get("tag") for r in resolve_prompts(config["prompts"]["eval"]))
    return {t: tags[t] * config["logging"]["eval_samples_per_prompt"] for t in TAGS}


def score_error(record: dict, images: dict[str, int]) -> float:
    """The binomial standard error, in points, of a record's GenEval score (the mean of the
    categories' accuracies), each category's accuracy over `images[tag]` images. Images drawn
    from one prompt are taken as independent, so this is a floor on the real error."""
    variance = sum(
        record[f"eval/oracle/{t}"] * (1 - record[f"eval/oracle/{t}"]) / images[t] for t in TAGS
    )
    return 100 * math.sqrt(variance) / len(TAGS)


def error_line(rows: list[tuple], images: dict[str, int]) -> str:
    """The line giving the sampling error of one evaluation, of one seed's gain and of the mean
    gain over the rows' seeds (from score_error on each row's first and last records)."""
    evals = [score_error(r, images) for row in rows for r in row[2:]]
    gains = [math.hypot(score_error(row[2], images), score_error(row[3], images)) for row in rows]
    mean_gain = math.sqrt(sum(g * g for g in gains)) / len(gains)
    return (
        f"binomial standard error (images independent, so a floor): one evaluation's score "
        f"+- {statistics.fmean(evals):.1f} points, one seed's gain +- "
        f"{statistics.fmean(gains):.1f}, the mean gain over {len(rows)} seeds +- {mean_gain:.1f}"
    )


def table(rows: list[tuple], images: dict[str, int] | None = None) -> str:
    """(seed, seconds, first eval record, last eval record) rows -> the markdown table and the
    mean gain line, then, given the images per category, the line of error_line."""
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
    if images is not None:
        lines.append(error_line(rows, images))
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
    print(table(rows, images_per_category(folder)))


if __name__ == "__main__":
    main()
