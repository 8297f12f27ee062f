"""The `seqzoo` command. It only parses arguments and calls importable functions.

Each module in COMMAND_MODULES defines `register(subparsers)`, adding its subcommands with
`parser.set_defaults(func=handler)`; `handler(args)` returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = (
    "seqzoo.training.cli",
    "seqzoo.training.translation_cli",
    "seqzoo.serving.commands",
    "seqzoo.training.gradients_cli",
    "seqzoo.serving.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqzoo",
        description="Recurrent sequence models: train, export and serve them behind TF Serving's API.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
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


if __name__ == "__main__":
    sys.exit(main())
