"""KV-cached Janus sampling against a naive loop that recomputes the whole sequence every step.

Same tiny random Janus model (a fixed width for all grids), same prompts, same doubled CFG
batch, greedy decoding in both so their tokens must agree (checked). Prints image tokens per
second of each, their ratio, and how the time per image grows with the number of tokens
(the exponent k in time ~ tokens^k between consecutive grids: about 1 for the cached loop,
approaching 2 for the naive one as the recomputed sequence dominates).

    python benchmarks/rollout.py                 # grids 8x8, 16x16, 24x24 on CPU
    python benchmarks/rollout.py --grids 8 16 --hidden-size 128 --device cuda

With --sampler static it times instead the static sampler (a preallocated KV cache whose decode
step is compiled into a CUDA graph on CUDA) against the dynamic loop, on a Janus-Pro-shaped
model (--shape janus-pro-1b: its vocabulary, 16,384 codes and 24 x 24 grid, --layers of its
language model), greedy, both branches of CFG in one batch; tokens must agree (checked):

    python benchmarks/rollout.py --sampler static --layers 4 --images 16 --device cuda
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import torch

from t2i_gcpo.policies.janus import (
    JanusPolicy,
    cfg_logits,
    extend_mask,
    pick_tokens,
)
from t2i_gcpo.toy.models import janus_pro_policy, tiny_janus_policy

PROMPTS = ["a red circle above a blue square", "a small green triangle", "a cat", "a big tree"]


@dataclass
class Timing:
    """Seconds for one rollout of `images` images of `tokens` tokens each, by each method."""

    grid: int
    tokens: int
    images: int
    cached_s: float
    naive_s: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--grids",
        type=int,
        nargs="+",
        default=[8, 16, 24],
        help="image-token grid sides to time (default: 8 16 24)",
    )
    parser.add_argument(
        "--hidden-size",
        type=int,
        default=256,
        help="Llama hidden size, the same for every grid (default: 256)",
    )
    parser.add_argument("--layers", type=int, default=2, help="Llama layers (default: 2)")
    parser.add_argument(
        "--prompts",
        type=int,
        default=2,
        choices=range(1, len(PROMPTS) + 1),
        help="prompts per rollout, one image each (default: 2)",
    )
    parser.add_argument("--cfg-scale", type=float, default=5.0, help="guidance (default: 5)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed runs per method and grid; the fastest is kept (default: 1)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="model init seed (default: 0)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; 1 keeps timings stable on a shared machine, 0 keeps torch's "
        "default (default: 1)",
    )
    parser.add_argument(
        "--sampler",
        choices=("naive", "static"),
        default="naive",
        help="what the dynamic (cached) loop is timed against (default: naive)",
    )
    parser.add_argument(
        "--shape", choices=("janus-pro-1b", "janus-pro-7b"), default="janus-pro-1b",
        help="with --sampler static: the model shape (default: janus-pro-1b)",
    )  # fmt: skip
    parser.add_argument(
        "--images", type=int, default=16, help="with --sampler static: images a rollout"
    )
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    return parser.parse_args(argv)


@torch.no_grad()
def compare_samplers(args: argparse.Namespace) -> None:
    """Dynamic against static sampling on a Janus-Pro-shaped model: tokens/s and the ratio."""
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    size = args.shape.rsplit("-", 1)[1]
    policy = janus_pro_policy(size, num_layers=args.layers, seed=args.seed, dtype=dtype)
    policy.model.to(device)
    policy.eval()
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.images)]
    ids, mask, _ = policy.cfg_batch(prompts, None, 1)
    results = {}
    for sampler in ("dynamic", "static"):
        policy.sampler = sampler

        def run():
            return policy.generate_tokens(ids, mask, args.cfg_scale, top_k=1)[0]

        run()  # warm-up: allocator, kernels, and for static on CUDA the graph capture
        results[sampler] = timed(run, device, args.repeats)
    if not torch.equal(results["dynamic"][0], results["static"][0]):
        raise RuntimeError("dynamic and static greedy tokens differ")
    generated = args.images * policy.num_tokens
    print(
        f"{args.shape} with {args.layers} layers ({args.dtype}), {args.images} images x "
        f"{policy.num_tokens} tokens, CFG batch {2 * args.images}, greedy, device {args.device}"
    )
    for sampler, (_, seconds) in results.items():
        print(f"{sampler:>8}: {generated / seconds:10.1f} tokens/s ({seconds:.2f} s)")
    ratio = results["dynamic"][1] / results["static"][1]
    print(f"static / dynamic speed: {ratio:.2f}x (the goal on a GPU: >= 3x)")


def naive_tokens(policy: JanusPolicy, ids: torch.Tensor, mask: torch.Tensor, cfg_scale: float):
    """Doubled prompt batch (2B, L) -> greedy tokens (B, T), re-running the whole sequence."""
    text = policy.text_embeds(ids)
    tokens = ids.new_empty((ids.shape[0] // 2, 0))
    for step in range(policy.num_tokens):
        embeds = torch.cat([text, policy.image_embeds(tokens.repeat(2, 1))], dim=1)
        hidden, _ = policy.backbone(embeds, extend_mask(mask, step))
        logits = policy.image_logits(hidden[:, -1])
        token = pick_tokens(cfg_logits(logits, cfg_scale), 1.0, 1, None, None)
        tokens = torch.cat([tokens, token[:, None]], dim=1)
    return tokens


def timed(fn, device: torch.device, repeats: int):
    """Run fn() `repeats` times -> (its last result, the fastest wall time in seconds)."""
    best, result = math.inf, None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return result, best


@torch.no_grad()
def time_grid(grid: int, args: argparse.Namespace) -> Timing:
    """Build the grid's tiny model, check both loops agree, and time them."""
    device = torch.device(args.device)
    policy = tiny_janus_policy(
        grid=grid, hidden_size=args.hidden_size, num_layers=args.layers, seed=args.seed
    )
    policy.model.to(device)
    policy.eval()
    ids, mask, _ = policy.cfg_batch(PROMPTS[: args.prompts], None, 1)

    def cached():
        return policy.generate_tokens(ids, mask, args.cfg_scale, top_k=1)[0]

    def naive():
        return naive_tokens(policy, ids, mask, args.cfg_scale)

    cached()  # warm-up (allocator, kernels)
    cached_out, cached_s = timed(cached, device, args.repeats)
    naive_out, naive_s = timed(naive, device, args.repeats)
    if not torch.equal(cached_out, naive_out):
        raise RuntimeError(f"grid {grid}: cached and naive greedy tokens differ")
    return Timing(grid, grid * grid, args.prompts, cached_s, naive_s)


def print_table(timings: list[Timing], args: argparse.Namespace) -> None:
    """Tokens/s of each loop, their ratio, time per image and its growth exponent."""
    print(
        f"tiny Janus: hidden {args.hidden_size}, {args.layers} layers, {args.prompts} images "
        f"per rollout (doubled CFG batch {2 * args.prompts}), greedy, device {args.device}"
    )
    header = (
        f"{'grid':>6} {'tokens':>6} {'cached tok/s':>12} {'naive tok/s':>12} {'speed-up':>8} "
        f"{'cached s/img':>12} {'naive s/img':>12} {'k cached':>8} {'k naive':>8}"
    )
    print(header)
    print("-" * len(header))
    previous = None
    for t in timings:
        generated = t.tokens * t.images
        growth = ["", ""]
        if previous is not None:
            scale = math.log(t.tokens / previous.tokens)
            growth = [
                f"{math.log(t.cached_s / previous.cached_s) / scale:.2f}",
                f"{math.log(t.naive_s / previous.naive_s) / scale:.2f}",
            ]
        print(
            f"{f'{t.grid}x{t.grid}':>6} {t.tokens:>6} {generated / t.cached_s:>12.1f} "
            f"{generated / t.naive_s:>12.1f} {t.naive_s / t.cached_s:>7.1f}x "
            f"{t.cached_s / t.images:>12.3f} {t.naive_s / t.images:>12.3f} "
            f"{growth[0]:>8} {growth[1]:>8}"
        )
        previous = t
    print("k: exponent of time per image ~ tokens^k against the previous grid")


def main(argv: list[str] | None = None) -> None:
    """Time every grid and print the table."""
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.sampler == "static":
        compare_samplers(args)
        return
    timings = [time_grid(grid, args) for grid in sorted(args.grids)]
    print_table(timings, args)


if __name__ == "__main__":
    main()
