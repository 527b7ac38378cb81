"""The method study on the shapes world: GCPO against GRPO and DAPO, and GCPO's own knobs.

Every run fine-tunes a pretrained shapes policy with `t2i-gcpo train` (one subprocess per run,
one CPU thread each) at the default run's budget: the same steps, prompts per step, group size,
learning rate and seeds. Only the algorithm, the reward, the policy's background or one GCPO
knob changes (the full study's ten configurations first, then the optional ones):

    gcpo / grpo / dapo        on the oracle reward (GenEval's strict rules) and the tiny CLIP
    gcpo-flat / grpo-flat     oracle reward, on a policy whose grounds are flat (flat_policy):
                              the prediction is that GCPO's edge over GRPO shrinks there
    gcpo-attribute            the attribute negative (one named colour, class, count or
                              relation changed) instead of the null prompt (oracle)
    gcpo-softmax              softmax credit instead of rank credit (oracle)
    optional: gcpo-linear (oracle), gcpo-caption and gcpo-swap (CLIP), gcpo-fullkl (oracle:
              the KL at full weight on every token, not relaxed on credited ones),
              gcpo-gentle (oracle: rank credit with the top 40% of tokens carrying 50% of it
              instead of 80%, so weights p**0.36 where the default's are p**2.15)

Measured per run (from its metrics.jsonl): the held-out GenEval score (the mean of the six
categories' strict accuracies) and each category's accuracy at each evaluation, the training
reward against steps, every sample drawn (DAPO draws more when it refills), and whether the
credit is right on the held-out images: the object AUROC against the null and attribute
negatives and the blame AUROC (null negative), 0.5 = chance. Printed: mean +- std over seeds,
per comparison the seed-paired difference to GCPO, and the background prediction's
difference of differences. Figures (PNG) and a JSON summary go to --results.

    python benchmarks/study.py --quick            # 1 seed, 3 algorithms, short runs (<10 min)
    python benchmarks/study.py                    # the full study (3 seeds x 10 configurations,
                                                  # 69 minutes on 2 cores)
    python benchmarks/study.py --report-only      # re-print and re-plot finished runs

Runs are resumable one by one: a finished run is skipped, an interrupted one continues from
its last checkpoint. --jobs runs several at once (each on one thread).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVAL_PROMPTS = REPO / "prompts" / "shapes_eval.jsonl"


@dataclass(frozen=True)
class RunSpec:
    """One configuration of the study: a name and its `t2i-gcpo train` overrides."""

    name: str
    algo: str
    reward: str = "clip"
    overrides: tuple[str, ...] = ()
    group: tuple[str, ...] = field(default=("algorithms",))
    background: str = "textured"  # "textured": the shipped policy; "flat": flat_policy's


CONFIGS = (
    RunSpec("gcpo/oracle", "gcpo", "oracle",
            group=("algorithms", "normalizations", "negatives", "background")),
    RunSpec("grpo/oracle", "grpo", "oracle", group=("algorithms", "background")),
    RunSpec("gcpo-flat/oracle", "gcpo", "oracle", group=("background",), background="flat"),
    RunSpec("grpo-flat/oracle", "grpo", "oracle", group=("background",), background="flat"),
    RunSpec("dapo/oracle", "dapo", "oracle"),
    RunSpec("gcpo-attribute/oracle", "gcpo", "oracle", ("--algo.negative", "attribute"),
            group=("negatives",)),
    RunSpec("gcpo-softmax/oracle", "gcpo", "oracle", ("--algo.normalization", "softmax"),
            group=("normalizations",)),
    RunSpec("gcpo/clip", "gcpo"),
    RunSpec("grpo/clip", "grpo"),
    RunSpec("dapo/clip", "dapo"),
    # not in the full study's default list (--configs runs them)
    RunSpec("gcpo-linear/oracle", "gcpo", "oracle", ("--algo.normalization", "linear"),
            group=("normalizations",)),
    RunSpec("gcpo-caption/clip", "gcpo", overrides=("--algo.negative", "caption"),
            group=("negatives",)),
    RunSpec("gcpo-swap/clip", "gcpo", overrides=("--algo.negative", "swap"),
            group=("negatives",)),
    RunSpec("gcpo-fullkl/oracle", "gcpo", "oracle", ("--algo.kl_relax", "false")),
    RunSpec("gcpo-gentle/oracle", "gcpo", "oracle", ("--algo.top_mass", "0.5"),
            group=("normalizations",)),
)  # fmt: skip
FULL_CONFIGS = tuple(spec.name for spec in CONFIGS[:10])
QUICK_CONFIGS = ("gcpo/oracle", "grpo/oracle", "dapo/oracle")


@dataclass(frozen=True)
class Budget:
    """What every run of a study gets."""

    steps: int
    eval_every: int
    eval_samples: int
    seeds: tuple[int, ...]
    eval_prompts: int | None = None  # N eval prompts, as many of each category (None: all 96)


FULL = Budget(steps=50, eval_every=25, eval_samples=4, seeds=(0, 1, 2))
QUICK = Budget(steps=12, eval_every=12, eval_samples=2, seeds=(0,), eval_prompts=24)


def run_dir(root: Path, spec: RunSpec, seed: int) -> Path:
    return root / spec.name.replace("/", "__") / f"seed{seed}"


def read_metrics(folder: Path) -> list[dict]:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_done(folder: Path, budget: Budget) -> bool:
    done = folder / "done.json"
    return done.is_file() and json.loads(done.read_text()).get("steps") == budget.steps


FLAT_POLICY_STEPS = 100
"""Pretraining steps on flat scenes that turn the shipped policy into the flat one."""


def flat_policy_dir(root: Path) -> Path:
    return root / "policy-flat"


def flat_policy(root: Path, steps: int = FLAT_POLICY_STEPS) -> Path:
    """The background ablation's policy: the shipped one after `steps` more pretraining steps
    (batch 64, seed 0) on flat scenes (texture 0), so that it draws flat grounds and its
    background tokens are near certain; built once into the study folder, then reused."""
    folder = flat_policy_dir(root)
    if (folder / "config.json").is_file():
        return folder
    import torch

    from t2i_gcpo.policies import load_policy
    from t2i_gcpo.toy.build import pretrain_policy

    torch.manual_seed(0)
    policy = load_policy("shapes", device="cpu")
    report = pretrain_policy(policy, steps, lr=1e-3, n_scenes=64 * steps, texture=0.0,
                             progress=False)  # fmt: skip
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    policy.save(partial)
    partial.rename(folder)
    print(f"built the flat-ground policy ({steps} steps, final nll {report['nll']:.3f})")
    return folder


def train_command(spec: RunSpec, seed: int, folder: Path, budget: Budget, eval_file: str,
                  threads: int) -> list[str]:  # fmt: skip
    flat = ["--policy.name", str(flat_policy_dir(folder.parents[1]))]  # folder: root/config/seed
    return [
        sys.executable, "-m", "t2i_gcpo.cli", "train",
        "--algo", spec.algo,
        "--rewards.models", f"[shapes-{spec.reward}]",
        "--prompts.eval", eval_file,
        "--optim.steps", str(budget.steps),
        "--optim.updates_per_rollout", "1",  # the recipe the study measured
        "--logging.eval_every", str(budget.eval_every),
        "--logging.eval_samples_per_prompt", str(budget.eval_samples),
        "--logging.sample_every", "0",
        "--logging.heatmap_every", "0",
        "--logging.trackers", "none",
        "--logging.progress_bar", "false",
        "--logging.output_dir", str(folder),
        "--checkpoint.every", str(budget.eval_every),
        "--checkpoint.keep_last", "1",
        "--policy.cpu_threads", str(threads),
        "--seed", str(seed),
        *(flat if spec.background == "flat" else ()),
        *spec.overrides,
    ]  # fmt: skip


def execute(spec: RunSpec, seed: int, root: Path, budget: Budget, eval_file: str,
            threads: int, keep_checkpoints: bool) -> str:  # fmt: skip
    """Run (or resume, or skip) one run; returns a line for the log."""
    folder = run_dir(root, spec, seed)
    if is_done(folder, budget):
        return f"{spec.name} seed {seed}: done before, skipped"
    command = train_command(spec, seed, folder, budget, eval_file, threads)
    resumable = (folder / "checkpoints").is_dir() and any((folder / "checkpoints").iterdir())
    if resumable:
        command.append("--resume")
    elif folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(folder.parent / f"seed{seed}.log", "a", encoding="utf-8") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{spec.name} seed {seed} failed (exit {code}); see "
                           f"{folder.parent / f'seed{seed}.log'}")  # fmt: skip
    if not keep_checkpoints:
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    (folder / "done.json").write_text(json.dumps({"steps": budget.steps, "seconds": seconds}))
    return f"{spec.name} seed {seed}: {seconds:.0f} s{' (resumed)' if resumable else ''}"


# -- summarising --------------------------------------------------------------------------------

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
SCORE = "eval/oracle/geneval"
CREDIT_KEYS = ("eval/credit/null/object_auroc", "eval/credit/attribute/object_auroc",
               "eval/credit/null/blame_auroc")  # fmt: skip
EVAL_KEYS = (SCORE, *(f"eval/oracle/{tag}" for tag in TAGS), *CREDIT_KEYS)


def run_summary(records: list[dict], budget: Budget) -> dict:
    """Per run: eval curves, the first/last tenth's mean training reward, final figures."""
    evals = [r for r in records if SCORE in r]
    train = [r for r in records if "reward/mean" in r]
    tenth = max(1, len(train) // 10)
    summary = {
        "eval_steps": [r["step"] for r in evals],
        "curves": {k: [r.get(k, math.nan) for r in evals] for k in EVAL_KEYS},
        "reward_steps": [r["step"] for r in train],
        "reward": [r["reward/mean"] for r in train],
        "reward_first": statistics.fmean(r["reward/mean"] for r in train[:tenth]),
        "reward_last": statistics.fmean(r["reward/mean"] for r in train[-tenth:]),
        "samples_drawn": sum(r.get("samples/drawn", 0) for r in train),
        "drawn_at_eval": [  # samples drawn by each evaluation
            sum(r.get("samples/drawn", 0) for r in train if r["step"] <= e["step"]) for e in evals
        ],
    }
    for key in EVAL_KEYS:
        summary[f"start/{key}"] = evals[0].get(key, math.nan)
        summary[f"final/{key}"] = evals[-1].get(key, math.nan)
    return summary


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    mean, std = mean_std([v * scale for v in values])
    return f"{mean:.{digits}f} +- {std:.{digits}f}"


def summarise(root: Path, specs: list[RunSpec], budget: Budget) -> dict:
    result = {}
    for spec in specs:
        runs = {}
        for seed in budget.seeds:
            records = read_metrics(run_dir(root, spec, seed))
            if is_done(run_dir(root, spec, seed), budget) and records:
                runs[seed] = run_summary(records, budget)
        if runs:
            result[spec.name] = runs
    return result


def final_differences(
    summary: dict, ours: str, other: str, key: str = f"final/{SCORE}", scale: float = 100.0
) -> dict[int, float]:
    """Seed -> `ours` minus `other` in a run figure (default: the final held-out GenEval score,
    in points), for the seeds both configurations finished."""
    a, b = summary.get(ours, {}), summary.get(other, {})
    return {s: scale * (a[s][key] - b[s][key]) for s in sorted(set(a) & set(b))}


def per_seed(diffs) -> str:
    return ", ".join(f"{d:+.1f}" for d in diffs)


def spread(diffs) -> str:
    mean, std = mean_std(list(diffs))
    return f"{mean:+.1f} +- {std:.1f}"


def print_tables(summary: dict, specs: list[RunSpec], budget: Budget) -> list[str]:
    """The study's tables as markdown lines (also printed)."""
    n_eval = budget.eval_prompts or len(EVAL_PROMPTS.read_text().splitlines())
    lines = [
        f"Budget per run: {budget.steps} steps x 4 prompts x 8 samples, eval every "
        f"{budget.eval_every} steps on {n_eval} held-out prompts x {budget.eval_samples} "
        f"samples ({n_eval * budget.eval_samples} images a run); seeds {list(budget.seeds)}; "
        "mean +- std over seeds.",
        "",
        "| run | seeds | GenEval: start -> final (%) | colors (%) | position (%) "
        "| color_attr (%) | train reward: first -> last tenth | samples drawn "
        "| object AUROC null | object AUROC attribute | blame AUROC null |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in specs:
        runs = summary.get(spec.name)
        if not runs:
            continue
        r = list(runs.values())

        def col(key: str, r: list[dict] = r) -> list[float]:
            return [x[key] for x in r]

        lines.append(
            f"| {spec.name} | {len(r)} | {fmt(col(f'start/{SCORE}'), 100)} -> "
            f"{fmt(col(f'final/{SCORE}'), 100)} "
            + "".join(
                f"| {fmt(col(f'final/eval/oracle/{t}'), 100)} "
                for t in ("colors", "position", "color_attr")
            )
            + f"| {fmt(col('reward_first'), digits=3)} -> {fmt(col('reward_last'), digits=3)} "
            + f"| {fmt(col('samples_drawn'), digits=0)} "
            + "".join(f"| {fmt(col(f'final/{k}'), digits=2)} " for k in CREDIT_KEYS)
            + "|"
        )
    lines += ["", "Seed-paired differences in the final held-out GenEval score (points), GCPO "
              "(null negative, rank credit) minus the other run on the same reward:", "",
              "| comparison | per seed | mean +- std |", "|---|---|---|"]  # fmt: skip
    pairs = [("gcpo/oracle", o) for o in ("grpo/oracle", "dapo/oracle", "gcpo-attribute/oracle",
             "gcpo-softmax/oracle", "gcpo-linear/oracle", "gcpo-fullkl/oracle",
             "gcpo-gentle/oracle")]  # fmt: skip
    pairs += [("gcpo-flat/oracle", "grpo-flat/oracle")]
    pairs += [("gcpo/clip", o) for o in ("grpo/clip", "dapo/clip", "gcpo-caption/clip",
              "gcpo-swap/clip")]  # fmt: skip
    for ours, other in pairs:
        diffs = final_differences(summary, ours, other)
        if diffs:
            lines.append(
                f"| {ours} - {other} | {per_seed(diffs.values())} | {spread(diffs.values())} |"
            )
    by_category = []  # where each difference comes from; the training reward on the same prompts
    for ours, other in pairs:
        if not final_differences(summary, ours, other):
            continue
        cells = [spread(final_differences(summary, ours, other, f"final/eval/oracle/{t}").values())
                 for t in TAGS]  # fmt: skip
        reward = final_differences(summary, ours, other, "reward_last", scale=1.0).values()
        mean, std = mean_std(list(reward))
        by_category.append(f"| {ours} - {other} | " + " | ".join(cells)
                           + f" | {mean:+.3f} +- {std:.3f} |")  # fmt: skip
    if by_category:
        lines += ["", "The same differences per category (points), and in the training reward's "
                  "last tenth (the same prompts for both, a seed fixing their order):", "",
                  "| comparison | " + " | ".join(TAGS) + " | train reward, last tenth |",
                  "|---" * (len(TAGS) + 2) + "|", *by_category]  # fmt: skip
    equal_samples = []  # DAPO refills: compare it at equal samples drawn too
    for reward in ("oracle", "clip"):
        a, b = summary.get(f"gcpo/{reward}", {}), summary.get(f"dapo/{reward}", {})
        cells, diffs = [], []
        for s in sorted(set(a) & set(b)):
            drawn = b[s]["drawn_at_eval"]
            i = [k for k, n in enumerate(drawn) if n <= a[s]["samples_drawn"]][-1]  # DAPO's last
            diffs.append(100 * (a[s][f"final/{SCORE}"] - b[s]["curves"][SCORE][i]))
            cells.append(f"step {b[s]['eval_steps'][i]} ({drawn[i]})")
        if diffs:
            equal_samples.append(f"| gcpo/{reward} - dapo/{reward} | {', '.join(cells)} "
                                 f"| {per_seed(diffs)} | {spread(diffs)} |")  # fmt: skip
    if equal_samples:
        lines += ["", "At equal samples drawn: GCPO's final score minus DAPO's at its last "
                  "evaluation within GCPO's samples (points):", "",
                  "| comparison | DAPO at (samples drawn), per seed | per seed | mean +- std |",
                  "|---|---|---|---|", *equal_samples]  # fmt: skip
    textured = final_differences(summary, "gcpo/oracle", "grpo/oracle")  # GCPO's edge over GRPO
    flat = final_differences(summary, "gcpo-flat/oracle", "grpo-flat/oracle")
    diffs = [textured[s] - flat[s] for s in sorted(set(textured) & set(flat))]
    if diffs:
        mean, std = mean_std(diffs)
        lines += ["", "The background prediction: GCPO's edge over GRPO (oracle reward) on "
                  "textured grounds minus its edge on flat grounds (points; > 0 if the "
                  "prediction holds):",
                  "", f"per seed {per_seed(diffs)}; mean {mean:+.1f} +- {std:.1f}"]  # fmt: skip
    print("\n".join(lines))
    return lines


def plot(summary: dict, specs: list[RunSpec], out: Path) -> list[Path]:
    """Accuracy and reward curves (mean +- std band) per reward, and the knob comparisons."""
    import numpy as np
    from matplotlib.figure import Figure

    written = []
    rewards = sorted({s.reward for s in specs if s.name in summary and "algorithms" in s.group})
    if rewards:
        fig = Figure(figsize=(5.2 * len(rewards), 7.0))
        axes = fig.subplots(2, len(rewards), squeeze=False)
        for column, reward in enumerate(rewards):
            for spec in specs:
                if spec.reward != reward or "algorithms" not in spec.group:
                    continue
                runs = list(summary.get(spec.name, {}).values())
                if not runs:
                    continue
                for row, (xkey, ykey, scale) in enumerate(
                    (("eval_steps", "acc", 100.0), ("reward_steps", "reward", 1.0))
                ):
                    x = np.array(runs[0][xkey])
                    if ykey == "acc":
                        ys = np.array([r["curves"][SCORE] for r in runs]) * scale
                    else:
                        width = max(1, len(x) // 12)  # trailing mean over `width` steps
                        kernel = np.ones(width) / width
                        ys = np.array([np.convolve(r["reward"], kernel, "valid") for r in runs])
                        x = x[width - 1 :]
                    mean, std = ys.mean(axis=0), ys.std(axis=0)
                    ax = axes[row, column]
                    ax.plot(x, mean, label=spec.algo, marker="o" if row == 0 else None)
                    ax.fill_between(x, mean - std, mean + std, alpha=0.2)
            axes[0, column].set_title(f"{reward} reward: held-out GenEval score (%)")
            axes[1, column].set_title(f"{reward} reward: training reward (smoothed)")
            for ax in axes[:, column]:
                ax.set_xlabel("step")
                ax.grid(alpha=0.3)
                ax.legend()
        fig.tight_layout()
        path = out / "study_algorithms.png"
        fig.savefig(path, dpi=90)
        written.append(path)
    knobs = [s for s in specs if s.name in summary and s.algo == "gcpo" and s.background != "flat"]
    if knobs:
        fig = Figure(figsize=(11, 3.6))
        axes = fig.subplots(1, 2)
        names = [s.name for s in knobs]
        for ax, key, title in (
            (axes[0], f"final/{SCORE}", "final held-out GenEval score (%)"),
            (
                axes[1],
                "final/eval/credit/attribute/object_auroc",
                "final object AUROC (attribute negative)",
            ),
        ):
            stats = [mean_std([r[key] for r in summary[s.name].values()]) for s in knobs]
            scale = 100.0 if "oracle" in key else 1.0
            ax.bar(names, [m * scale for m, _ in stats], yerr=[sd * scale for _, sd in stats],
                   capsize=4, color="#4a7ab5")  # fmt: skip
            ax.set_title(title, fontsize=10)
            ax.tick_params(axis="x", labelsize=8, rotation=20)
            ax.grid(alpha=0.3, axis="y")
        start = mean_std([r[f"start/{SCORE}"] for r in summary[knobs[0].name].values()])[0]
        axes[0].axhline(100 * start, color="gray", linestyle="--", linewidth=1)  # before RL
        axes[1].axhline(0.5, color="gray", linestyle="--", linewidth=1)  # chance
        fig.tight_layout()
        path = out / "study_gcpo_knobs.png"
        fig.savefig(path, dpi=90)
        written.append(path)
    trained = [s for s in specs if s.name in summary]
    if trained:  # is the credit right, and does training move it? (0.5 = chance)
        fig = Figure(figsize=(5.2 * len(CREDIT_KEYS), 3.8))
        axes = fig.subplots(1, len(CREDIT_KEYS))
        for ax, key in zip(axes, CREDIT_KEYS, strict=True):
            for spec in trained:
                runs = list(summary[spec.name].values())
                ys = np.array([r["curves"][key] for r in runs])
                ax.errorbar(runs[0]["eval_steps"], ys.mean(axis=0), yerr=ys.std(axis=0),
                            label=spec.name, marker="o", capsize=3)  # fmt: skip
            ax.axhline(0.5, color="gray", linestyle="--", linewidth=1)
            ax.set_title(key.removeprefix("eval/credit/").replace("/", ": "), fontsize=10)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[-1].legend(fontsize=7)
        fig.tight_layout()
        path = out / "study_credit.png"
        fig.savefig(path, dpi=90)
        written.append(path)
    return written


def eval_prompt_file(root: Path, budget: Budget) -> str:
    """The eval prompts: the shipped file, or for short budgets N of its lines, as many of each
    category as N allows (at least one each)."""
    source = EVAL_PROMPTS
    if budget.eval_prompts is None:
        return str(source)
    lines = source.read_text().splitlines()
    per_tag = max(1, budget.eval_prompts // len(TAGS))
    chosen = [line for tag in TAGS for line in [x for x in lines if f'"{tag}"' in x][:per_tag]]
    path = root / f"eval_{budget.eval_prompts}.jsonl"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(chosen) + "\n")
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the <10 minute version")
    parser.add_argument("--out", default=None, help="run folders (default: study_runs/<mode>)")
    parser.add_argument(
        "--results", default=None, help="summary JSON, tables and PNGs (default: the --out folder)"
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        default=None,
        help=f"subset of: {', '.join(s.name for s in CONFIGS)}",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None, help="override the budget's steps")
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--eval-prompts", type=int, default=None)
    parser.add_argument("--eval-samples", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default: 2)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument(
        "--flat-steps",
        type=int,
        default=FLAT_POLICY_STEPS,
        help="pretraining steps on flat scenes for the flat-ground policy",
    )
    parser.add_argument("--keep-checkpoints", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="summarise finished runs")
    args = parser.parse_args(argv)  # fmt: skip

    budget = QUICK if args.quick else FULL
    changes = {
        "steps": args.steps,
        "eval_every": args.eval_every,
        "eval_samples": args.eval_samples,
        "eval_prompts": args.eval_prompts,
        "seeds": tuple(args.seeds) if args.seeds else None,
    }
    budget = Budget(**{**budget.__dict__, **{k: v for k, v in changes.items() if v}})
    names = args.configs or (QUICK_CONFIGS if args.quick else FULL_CONFIGS)
    unknown = sorted(set(names) - {s.name for s in CONFIGS})
    if unknown:
        parser.error(f"unknown --configs {unknown}; choose from {[s.name for s in CONFIGS]}")
    specs = [s for s in CONFIGS if s.name in names]
    root = Path(args.out or REPO / "study_runs" / ("quick" if args.quick else "full"))
    results = Path(args.results or root)
    results.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    if not args.report_only:
        eval_file = eval_prompt_file(root, budget)
        if any(spec.background == "flat" for spec in specs):
            flat_policy(root, args.flat_steps)
        jobs = [(spec, seed) for seed in budget.seeds for spec in specs]
        print(f"{len(jobs)} runs ({len(specs)} configurations x {len(budget.seeds)} seeds), "
              f"{args.jobs} at a time, into {root}", flush=True)  # fmt: skip
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(
                    execute,
                    spec,
                    seed,
                    root,
                    budget,
                    eval_file,
                    args.threads,
                    args.keep_checkpoints,
                )  # fmt: skip
                for spec, seed in jobs
            ]
            for future in futures:
                print(future.result(), flush=True)
    summary = summarise(root, specs, budget)
    lines = print_tables(summary, specs, budget)
    elapsed = time.perf_counter() - start
    (results / "study_tables.md").write_text("\n".join(lines) + "\n")
    (results / "study_summary.json").write_text(
        json.dumps({"budget": budget.__dict__, "runs": summary}, indent=1) + "\n"
    )
    for path in plot(summary, specs, results):
        print(f"wrote {path}")
    print(f"(study: {elapsed:.0f} s wall clock)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
