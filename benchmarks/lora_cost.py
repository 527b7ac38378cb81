"""Full fine-tuning against LoRA against LoRA with gradient checkpointing, on Janus-Pro's shape.

One update each (teacher-forced forward and backward over `--samples` images of 576 tokens,
then AdamW's step), on a Janus-Pro-1B-shaped model with random weights and its language model
cut to `--layers`, measured in one run: the median step time and the peak memory the step adds
(each variant in a fresh process: resident memory on the CPU, torch's peak on CUDA). Printed
with the --dry-run estimate of the same layout, so the estimate can be checked against the
measurement.

    python benchmarks/lora_cost.py                      # CPU, 2 layers, 2 samples
    python benchmarks/lora_cost.py --layers 24 --samples 16 --device cuda   # the full shape
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from step_cost import PeakResident

from t2i_gcpo.memory import StepPlan, estimate, janus_shape
from t2i_gcpo.policies.lora import DEFAULT_TARGETS, add_adapters
from t2i_gcpo.toy.models import janus_pro_config, janus_pro_policy

VARIANTS = {
    "full": {"lora": False, "checkpointing": False},
    "lora": {"lora": True, "checkpointing": False},
    "lora+checkpointing": {"lora": True, "checkpointing": True},
}
PROMPT = "a photo of a red circle"


def one_variant(args: argparse.Namespace, name: str) -> dict:
    """Build the model, time `repeats` updates and measure the first one's peak memory."""
    variant = VARIANTS[name]
    device = torch.device(args.device)
    policy = janus_pro_policy(args.shape, num_layers=args.layers, seed=0)
    policy.model.to(device)
    if variant["lora"]:
        policy = add_adapters(policy, r=args.rank, alpha=2 * args.rank, base="random")
    if variant["checkpointing"]:
        policy.enable_gradient_checkpointing()
    policy.train()
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(0)
    shape = (args.samples, policy.num_tokens)
    tokens = torch.randint(0, policy.codebook_size, shape, generator=generator)
    prompts = [PROMPT] * args.samples

    def step() -> None:
        loss = -policy.token_logprobs(prompts, tokens.to(device)).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        peak = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:
        with PeakResident() as memory:
            step()
        peak = memory.mib
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    trainable = sum(p.numel() for p in policy.trainable_parameters())
    return {"seconds": statistics.median(times), "peak_mib": peak, "trainable": trainable}


def estimated(args: argparse.Namespace, name: str) -> float:
    """The --dry-run estimate (GB) of the update alone: gradients, optimizer, activations."""
    variant = VARIANTS[name]
    lora = {"r": args.rank, "target_modules": list(DEFAULT_TARGETS)}
    shape = janus_shape(janus_pro_config(args.shape, args.layers), lora)
    plan = StepPlan(samples=args.samples, positions=shape.image_tokens + 16,
                    minibatch=args.samples, lora=variant["lora"],
                    checkpointing=variant["checkpointing"], reference=False)  # fmt: skip
    result = estimate(shape, plan)
    return result.gradients + result.optimizer + result.activations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("1b", "7b"), default="1b")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=tuple(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(one_variant(args, args.child)))
        return
    print(f"Janus-Pro-{args.shape.upper()} shape, {args.layers} layers, {args.samples} samples x "
          f"576 tokens, one update (forward, backward, AdamW), device {args.device}")  # fmt: skip
    print(f"{'variant':20s} {'trainable':>12s} {'step s':>8s} {'peak MiB':>9s} {'est. MiB':>9s}")
    base = None
    for name in VARIANTS:
        command = [sys.executable, __file__, *sys.argv[1:], "--child", name]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.splitlines()[-1])
        base = base or result
        print(f"{name:20s} {result['trainable'] / 1e6:11.1f}M {result['seconds']:8.2f} "
              f"{result['peak_mib']:9.0f} {estimated(args, name) * 1e9 / 2**20:9.0f}  "
              f"(time {result['seconds'] / base['seconds']:.2f}x, memory "
              f"{result['peak_mib'] / base['peak_mib']:.2f}x of full)")  # fmt: skip


if __name__ == "__main__":
    main()
