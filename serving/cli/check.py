"""`seqzoo check PATH`: checks SavedModel versions against TF Serving's loader, without TF Serving.

Each version is loaded the way TF Serving loads it (session loader, tag `serve`, restore op, init
op) and its warmup records are replayed; the work is done by `seqzoo.serving.loader_check`.
"""

from __future__ import annotations

import pathlib


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="check SavedModel versions against TF Serving's loader (no Docker needed)",
        description="Load every version under PATH (a models directory, a model directory NAME/ "
                    "or a version directory NAME/VERSION/) with TF Serving's session loader and "
                    "replay its assets.extra/tf_serving_warmup_requests, as TF Serving does "
                    "before it serves a version. Prints one line per version; exits 1 if any "
                    "version fails.",
    )
    parser.add_argument("path", metavar="PATH", help="models directory, model directory or version "
                                                     "directory")
    parser.set_defaults(func=run)


def _outcome(check) -> str:
    if not check.ok:
        return f"FAILS under TF Serving's loader: {check.error}"
    if not check.replayed:
        return "loads under TF Serving's loader (no warmup requests to replay)"
    plural = "" if check.replayed == 1 else "s"
    return (f"answers under TF Serving's loader ({check.replayed} warmup request{plural} on "
            f"{', '.join(check.warmed)})")


def run(args) -> int:
    path = pathlib.Path(args.path)
    if not path.exists():  # before TensorFlow loads
        raise ValueError(f"{str(path)!r} does not exist; give a models directory, a model "
                         "directory NAME/ or a version directory NAME/VERSION/.")
    from seqzoo.serving.loader_check import check_version, version_dirs

    failed = 0
    for version in version_dirs(path):
        # The model name only labels the servable; TF Serving's loader does not read it.
        check = check_version(version, version.parent.name)
        failed += not check.ok
        print(f"{version}: {_outcome(check)}", flush=True)
    return 1 if failed else 0
