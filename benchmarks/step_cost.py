"""What GCPO's token credit costs: one training step of GRPO, DAPO and GCPO on the same rollouts.

A step here is everything after the rewards: the reference policy's log-probs (when the KL
weight is positive), the credit (GCPO), then the loss, backward and optimizer update, all
through the trainer's own code (Trainer.build_batch and Trainer.update). The rollouts are sampled
once and reused by every variant: one guided against the null prompt, one against each
prompt's negative caption. Variants:

    grpo, dapo                 uniform credit
    gcpo null (reuse)          credit against the null prompt, read from the CFG branch that
                               sampling already computed: no extra forward pass
    gcpo caption (reuse)       credit against the negative caption, sampled with it as CFG's
                               negative: no extra forward pass
    gcpo caption (+1 pass)     credit against the negative caption, sampled against the null
                               prompt: one extra no-grad teacher-forced pass

Timings are the median of --repeats steps, variants interleaved so that load on the machine
hits all alike. Peak memory: each variant runs one step in a fresh process and reports the
growth of its resident memory during the step (CPU; it includes the optimizer state created
by the first update, the same for every variant) or torch.cuda.max_memory_allocated (GPU).

    python benchmarks/step_cost.py                      # tiny random Janus, 16x16 grid, CPU
    python benchmarks/step_cost.py --policy shapes      # the shapes world's policy
    python benchmarks/step_cost.py --device cuda --grid 24 --hidden-size 1024 --layers 8
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from transformers.utils import logging as transformers_logging

from reward_models.combine import RewardResult
from t2i_gcpo.config import build_config
from t2i_gcpo.policies import Rollout
from t2i_gcpo.toy.models import tiny_janus_policy
from t2i_gcpo.trainer import Trainer

VARIANTS: dict[str, tuple[dict, str]] = {
    "grpo": ({"preset": "grpo"}, "algo"),
    "dapo": ({"preset": "dapo"}, "algo"),
    "gcpo null (reuse)": ({"preset": "gcpo"}, "algo"),
    "gcpo caption (reuse)": ({"preset": "gcpo", "negative": "caption"}, "algo"),
    "gcpo caption (+1 pass)": ({"preset": "gcpo", "negative": "caption"}, "null"),
}
"""Variant -> (algo section, rollout.cfg_negative)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--policy",
        choices=("tiny", "shapes"),
        default="tiny",
        help="tiny random Janus (default) or the shapes world's policy",
    )
    parser.add_argument("--grid", type=int, default=16, help="tiny policy's token grid side")
    parser.add_argument("--hidden-size", type=int, default=256, help="tiny policy's width")
    parser.add_argument("--layers", type=int, default=2, help="tiny policy's layers")
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step (default: 2)")
    parser.add_argument("--group-size", type=int, default=8, help="samples per prompt")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per variant")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="policy weights dtype (default: float32)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)  # fmt: skip


def policy_name(args: argparse.Namespace, workdir: Path) -> str:
    """The policy to benchmark: the shapes policy, or a tiny random one saved in workdir."""
    if args.policy == "shapes":
        return "shapes"
    folder = workdir / "policy"
    if not folder.exists():
        # init std shrinks with the width so that logits keep one scale: at 0.3 for every
        # width, a 1024-wide model gives log-probs near -200 and one update can push a stale
        # rollout's log-ratio past exp's range (the timed steps reuse the same rollouts)
        init_std = 0.3 * (32 / args.hidden_size) ** 0.5
        tiny = tiny_janus_policy(grid=args.grid, hidden_size=args.hidden_size,
                                 num_layers=args.layers, codebook_size=256,
                                 init_std=init_std)  # fmt: skip
        tiny.save(folder)
    return str(folder)


def make_trainer(args, workdir: Path, variant: str) -> Trainer:
    """A Trainer for `variant` on the benchmark's policy (nothing logged, nothing saved)."""
    algo, cfg_negative = VARIANTS[variant]
    config = build_config({
        "policy": {"name": policy_name(args, workdir), "device": "cpu" if args.device == "cpu"
                   else "auto", "dtype": args.dtype},
        "prompts": {"train": "shapes:train", "eval": None},
        "rewards": {"models": ["shapes-oracle"]},  # loaded but never called: rewards are fixed
        "rollout": {"group_size": args.group_size, "prompts_per_step": args.prompts,
                    "cfg_negative": cfg_negative},
        "algo": algo,
        "optim": {"updates_per_rollout": 1},  # one update a step: the reference recipe's cost
        "logging": {"output_dir": str(workdir / f"run-{os.getpid()}-{variant.replace(' ', '_')}"),
                    "trackers": "none", "progress_bar": False},
    })  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        return Trainer(config)


def fixed_rollouts(args, workdir: Path, trainer: Trainer) -> dict[str, dict]:
    """The rollouts every variant trains on (sampled once, saved to workdir), and rewards."""
    path = workdir / "rollouts.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    indices = trainer.draw_prompts()
    prompts = [trainer.records[i].prompt for i in indices]
    captions = [trainer.records[i].negative_prompt for i in indices]
    generator = torch.Generator(trainer.policy.device).manual_seed(0)
    rollouts = {}
    for branch, negatives in (("null", None), ("caption", captions)):
        rollout = trainer.policy.sample(prompts, negatives, args.group_size, cfg_scale=3.0,
                                        generator=generator)  # fmt: skip
        rollouts[branch] = {"rollout": vars(rollout), "indices": indices}
    rollouts["rewards"] = torch.rand(len(prompts) * args.group_size, generator=torch.Generator()
                                     .manual_seed(1)).to(trainer.policy.device)  # fmt: skip
    torch.save(rollouts, path)
    return rollouts


def one_step(trainer: Trainer, rollouts: dict) -> float:
    """Seconds of one step (reference pass, credit, loss, backward, optimizer) of `trainer`."""
    data = rollouts["null" if trainer.sampling_negative == "null" else "caption"]
    rollout, indices = Rollout(**data["rollout"]), data["indices"]
    rewards = rollouts["rewards"]
    result = RewardResult(rewards, {}, torch.ones_like(rewards, dtype=torch.bool), 0)
    advantages, keep = trainer.advantages(result)
    if trainer.policy.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.update(trainer.build_batch(rollout, indices, advantages, keep))
    if trainer.policy.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def extra_passes(trainer: Trainer) -> int:
    """Teacher-forced no-grad passes a step makes beyond the loss's own forward."""
    reuses = trainer.sampling_negative == trainer.preset.negative  # the CFG branch is the credit's
    return int(trainer.reference is not None) + int(trainer.preset.uses_credit and not reuses)


class PeakResident:
    """Peak growth of the process's resident memory inside a `with` block, in MiB, sampled
    from /proc/self/statm every 0.5 ms by a thread (Linux; CPU tensors live outside Python's
    allocator, so tracemalloc cannot see them)."""

    def __enter__(self) -> PeakResident:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self.resident()
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def resident(self) -> int:
        """Resident bytes now."""
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.resident())
            time.sleep(0.0005)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.resident())

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


def child_memory(args: argparse.Namespace) -> None:
    """In a fresh process: one step of args.child; print its peak memory growth in MiB."""
    workdir = Path(args.workdir)
    trainer = make_trainer(args, workdir, args.child)
    rollouts = fixed_rollouts(args, workdir, trainer)
    if trainer.policy.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        one_step(trainer, rollouts)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        with PeakResident() as resident:
            one_step(trainer, rollouts)
        peak = resident.mib
    print(json.dumps({"peak_mib": peak}))


def measure_memory(argv: list[str], workdir: Path) -> dict[str, float]:
    """Peak memory growth of one step per variant, each in its own process."""
    peaks = {}
    for variant in VARIANTS:
        command = [sys.executable, __file__, *argv, "--child", variant, "--workdir", str(workdir)]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        peaks[variant] = json.loads(out.strip().splitlines()[-1])["peak_mib"]
    return peaks


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    transformers_logging.disable_progress_bar()
    if args.child:
        child_memory(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        trainers = {variant: make_trainer(args, workdir, variant) for variant in VARIANTS}
        rollouts = fixed_rollouts(args, workdir, next(iter(trainers.values())))
        for trainer in trainers.values():  # warm-up
            one_step(trainer, rollouts)
        seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        for _ in range(args.repeats):
            for variant, trainer in trainers.items():
                seconds[variant].append(one_step(trainer, rollouts))
        memory = {} if args.no_memory else measure_memory(argv, workdir)
    report(args, trainers, seconds, memory)


def report(args, trainers: dict[str, Trainer], seconds: dict, memory: dict) -> None:
    """Print the table and the GCPO / GRPO ratio against the 1.05 goal."""
    policy = trainers["grpo"].policy
    samples = args.prompts * args.group_size
    print(f"policy {args.policy} ({policy.grid[0]}x{policy.grid[1]} tokens), {samples} samples "
          f"per step, device {args.device}, {args.threads} thread(s), "
          f"median of {args.repeats}")  # fmt: skip
    grpo = statistics.median(seconds["grpo"])
    print(f"{'variant':<24} {'ms':>9} {'/ grpo':>7} {'extra passes':>13} {'peak MiB':>9}")
    for variant, trainer in trainers.items():
        median = statistics.median(seconds[variant])
        peak = f"{memory[variant]:9.1f}" if variant in memory else f"{'-':>9}"
        print(f"{variant:<24} {median * 1e3:9.1f} {median / grpo:7.3f} "
              f"{extra_passes(trainer):>13} {peak}")  # fmt: skip
    ratio = statistics.median(seconds["gcpo null (reuse)"]) / grpo
    verdict = "meets" if ratio <= 1.05 else "misses"
    print(f"GCPO (null negative, CFG branch reused) / GRPO = {ratio:.3f}: {verdict} the goal 1.05")


if __name__ == "__main__":
    main()
