"""The `seqzoo` command line.

`COMMANDS` lists every command; `seqzoo NAME` lives in `serving/cli/NAME.py`, which only parses
arguments and calls the library. Each command module defines `register(subparsers)`, which adds
its parser with `parser.set_defaults(func=run)`; `run(args)` returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = ("train", "export", "serve", "predict", "attention", "gradients", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqzoo",
        description="Recurrent sequence models: train, export and serve them behind TF Serving's API.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"seqzoo {args.command}: error: {err}", file=sys.stderr)
        return 2
