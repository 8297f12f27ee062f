"""The `seqzoo` command line.

`COMMANDS` lists every command; `seqzoo NAME` lives in `serving/cli/NAME.py`, which only parses
arguments and calls the library. Each command module defines `register(subparsers)`, which adds
its parser with `parser.set_defaults(func=run)`; `run(args)` returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from seqzoo.serving.tensorflow_logs import quiet_tensorflow_logs

COMMANDS = ("train", "export", "check", "serve", "predict", "attention", "timeline", "gradients",
            "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqzoo",
        description="Recurrent sequence models: train, export and serve them behind TF Serving's API.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    for command in subparsers.choices.values():
        command.add_argument("--verbose", action="store_true",
                             help="also show TensorFlow's own log lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if not args.verbose:
        quiet_tensorflow_logs()
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"seqzoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C (e.g. while TensorFlow loads) ends a command with a line, not a traceback;
        # 130 is the shell's code for a command ended by SIGINT.
        print(f"seqzoo {args.command}: interrupted", file=sys.stderr)
        return 130
