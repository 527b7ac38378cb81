"""The `t2i-gcpo` command line. `main(argv)` is the entry point, callable from tests."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from t2i_gcpo import __version__


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="t2i-gcpo",
        description="RL fine-tuning (GCPO, GRPO, DAPO) of autoregressive image-token models.",
    )
    parser.add_argument("--version", action="version", version=f"t2i-gcpo {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `t2i-gcpo` with `argv` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
