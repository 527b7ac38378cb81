"""`t2i-gcpo toy build`: the shapes world's command, published under the entry-point group
"t2i_gcpo.commands" like any plug-in's sub-command."""

from __future__ import annotations

import argparse
import json

from t2i_gcpo.cli import InputError


def add_toy_command(commands) -> None:
    """Add `toy build` (rebuild the shapes world's shipped models) to the sub-commands."""
    toy = commands.add_parser("toy", help="the built-in shapes world")
    toy_commands = toy.add_subparsers(dest="toy_command", metavar="TOY_COMMAND", required=True)
    build = toy_commands.add_parser(
        "build",
        help="train the shapes world's tokenizer, policy, CLIP and aesthetic head from scratch",
        description="Train every shapes-world asset from scratch (at most 45 minutes on 2 CPU "
        "cores at --steps-scale 1) and write them, with build_report.json, to --out.",
    )
    build.add_argument(
        "--out", default=None, help="output folder (default: the package's shipped assets folder)"
    )
    build.add_argument("--seed", type=int, default=0, help="random seed of data and weights")
    build.add_argument(
        "--reward-seed",
        type=int,
        default=None,
        help="seed of the CLIP and aesthetic head stage alone (default: --seed; the shipped "
        "assets: --seed 0 --reward-seed 1)",
    )
    build.add_argument(
        "--steps-scale",
        type=float,
        default=1.0,
        help="multiply every stage's optimizer steps by this (e.g. 0.01 to smoke-test)",
    )
    build.add_argument(
        "--texture",
        type=float,
        default=1.0,
        help="the background knob: the share of ground tiles drawn from the textured tiles "
        "(1: textured, the shipped world; 0: a flat ground)",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.set_defaults(handler=run_toy_build)


def run_toy_build(args: argparse.Namespace) -> int:
    """Train the assets into --out (default: the shipped assets folder)."""
    from t2i_gcpo.toy.assets import ASSETS_DIR
    from t2i_gcpo.toy.build import build_assets

    if args.steps_scale <= 0:
        raise InputError(f"--steps-scale must be > 0, got {args.steps_scale}")
    if not 0.0 <= args.texture <= 1.0:
        raise InputError(f"--texture must be in [0, 1] (0: flat, 1: textured), got {args.texture}")
    out = args.out or ASSETS_DIR
    report = build_assets(
        out,
        seed=args.seed,
        steps_scale=args.steps_scale,
        texture=args.texture,
        progress=not args.quiet,
        reward_seed=args.reward_seed,
    )
    print(f"wrote the shapes-world assets to {out}")
    print(json.dumps({"seconds": report["seconds"], "bytes": report["bytes"]}, indent=2))
    return 0
