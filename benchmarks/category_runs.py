"""The default run's recipe on one GenEval category at a time: what 50 steps of RL move, on the
prompts it trains on and on that category's held-out prompts.

For each category: the first `--prompts` distinct training prompts of that category (the
"shapes:train" set) are the run's training set, and that category's held-out prompts
("shapes:eval") its eval set, `--eval-samples` images each. Each run is `t2i-gcpo
train --seed S` with the defaults otherwise (or `--extra` overrides), in a subprocess on one
CPU thread, `--jobs` at a time. Printed per category: the training reward (the default reward,
the oracle's partial credit) over the first and last fifth of the steps (10 of 50), where a
fixed set of prompts, each drawn about 25 times, shows whether the run learns them at all; and
the strict held-out accuracy before and after, which shows how much of it reaches unseen
compositions.

    python benchmarks/category_runs.py [--categories counting colors] [--jobs 2] [--out DIR]
    python benchmarks/category_runs.py --report-only --out DIR    # the table of finished runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from t2i_gcpo.data.prompts import PromptRecord
from t2i_gcpo.toy.prompts import shapes_prompt_set
from t2i_gcpo.toy.scenes import CATEGORIES


def write_records(path: Path, records: list[PromptRecord]) -> None:
    """A prompt file (one JSON object a line) that `--prompts.train` reads back as `records`."""
    rows = [
        {"prompt": r.prompt, "negative_prompt": r.negative_prompt, **r.metadata} for r in records
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def category_prompts(tag: str, count: int) -> tuple[list[PromptRecord], list[PromptRecord]]:
    """-> (the first `count` distinct training prompts of `tag`, its held-out prompts)."""
    train, seen = [], set()
    for record in shapes_prompt_set("train"):
        if record.metadata["tag"] == tag and record.prompt not in seen and len(train) < count:
            seen.add(record.prompt)
            train.append(record)
    held_out = [r for r in shapes_prompt_set("eval") if r.metadata["tag"] == tag]
    return train, held_out


def run_category(tag: str, args) -> float:
    """Train on `tag`'s prompts into args.out/tag; returns the wall time in seconds."""
    folder = Path(args.out) / tag
    folder.mkdir(parents=True, exist_ok=True)
    train, held_out = category_prompts(tag, args.prompts)
    write_records(folder / "train.jsonl", train)
    write_records(folder / "eval.jsonl", held_out)
    command = [
        sys.executable, "-m", "t2i_gcpo.cli", "train", "--seed", str(args.seed),
        "--prompts.train", str(folder / "train.jsonl"),
        "--prompts.eval", str(folder / "eval.jsonl"),
        "--logging.eval_samples_per_prompt", str(args.eval_samples),
        "--logging.eval_negatives", "['null']", "--logging.output_dir", str(folder / "run"),
        "--logging.progress_bar", "false", "--policy.cpu_threads", "1", *args.extra,
    ]  # fmt: skip
    start = time.perf_counter()
    with (folder / "train.log").open("w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    (folder / "wall_seconds.txt").write_text(f"{seconds:.1f}\n")
    print(f"{tag}: {seconds:.0f} s", flush=True)
    return seconds


def summary(folder: Path) -> dict:
    """The training reward's first and last fifths and the held-out accuracy of one run."""
    records = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").open()]
    config = yaml.safe_load((folder / "run" / "config.yaml").read_text())
    held_out = (folder / "eval.jsonl").read_text().splitlines()
    rewards = [r["reward/mean"] for r in records if "reward/mean" in r]
    evals = [r for r in records if "eval/oracle/all" in r]
    fifth = max(1, len(rewards) // 5)  # 10 of 50 steps
    return {
        "steps": len(rewards),
        "first": statistics.fmean(rewards[:fifth]),
        "last": statistics.fmean(rewards[-fifth:]),
        "before": evals[0]["eval/oracle/all"],
        "after": evals[-1]["eval/oracle/all"],
        "images": len(held_out) * config["logging"]["eval_samples_per_prompt"],
        "seconds": float((folder / "wall_seconds.txt").read_text()),
    }


def report(out: Path, tags: list[str]) -> None:
    print("| category | training reward: first -> last 10 steps | held-out strict accuracy "
          "(%): before -> after | held-out images | wall s |")  # fmt: skip
    print("|---|---|---|---|---|")
    for tag in tags:
        if not (out / tag / "wall_seconds.txt").is_file():
            print(f"| {tag} | not run | | | |")
            continue
        s = summary(out / tag)
        gain = 100 * (s["after"] - s["before"])
        print(f"| {tag} | {s['first']:.3f} -> {s['last']:.3f} ({s['last'] - s['first']:+.3f}) "
              f"| {100 * s['before']:.1f} -> {100 * s['after']:.1f} ({gain:+.1f}) "
              f"| {s['images']} | {s['seconds']:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    parser.add_argument("--prompts", type=int, default=8, help="training prompts a category")
    parser.add_argument("--eval-samples", type=int, default=8, help="images a held-out prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (1 thread each)")
    parser.add_argument("--out", default="runs_categories", help="run folders")
    parser.add_argument("--report-only", action="store_true", help="tabulate finished runs")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more overrides")
    args = parser.parse_args()
    if not args.report_only:
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda tag: run_category(tag, args), args.categories))
    report(Path(args.out), args.categories)


if __name__ == "__main__":
    main()
