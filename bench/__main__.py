"""`python -m bench [NAME ...] [BENCH OPTIONS]`: runs every bench/*_bench.py, or the named ones.

Leading arguments are bench names ("train" or "train_bench"); everything from the first option
on (e.g. `--quick`) is passed to each selected bench's `main(argv)`, except `--verbose`, which
lets TensorFlow's log lines through.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

from seqzoo.serving.tensorflow_logs import quiet_tensorflow_logs

SUFFIX = "_bench"


def bench_names() -> list[str]:
    """Short names of the bench modules in this package, e.g. ["train"]."""
    here = os.path.dirname(__file__)
    return sorted(m.name[: -len(SUFFIX)] for m in pkgutil.iter_modules([here])
                  if m.name.endswith(SUFFIX))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    available = bench_names()
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    selected = [a.removesuffix(SUFFIX) for a in argv[:first_option]]
    options = argv[first_option:]
    unknown = [name for name in selected if name not in available]
    if unknown:
        print(f"Unknown bench(es) {unknown}; accepted: {', '.join(available)}.", file=sys.stderr)
        return 2
    for name in selected or available:
        print(f"== bench {name} ==", flush=True)
        importlib.import_module(f"bench.{name}{SUFFIX}").main(options)
    return 0


if __name__ == "__main__":
    if "--verbose" in sys.argv:
        sys.argv.remove("--verbose")
    else:
        quiet_tensorflow_logs()
    sys.exit(main())
