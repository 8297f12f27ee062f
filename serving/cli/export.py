"""`seqzoo export RUN_DIR`: exports a run's latest checkpoint as a new SavedModel version."""

from __future__ import annotations

from seqzoo.training.config import load as load_run_config


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a run's latest checkpoint as a new SavedModel version",
        description="Export RUN_DIR's latest checkpoint to MODELS_DIR/NAME/VERSION (TF Serving layout).",
    )
    parser.add_argument("run_dir", help="run directory written by `seqzoo train`")
    parser.add_argument("--models-dir", "--models_dir", default="models",
                        help="root of the model directories (default: models)")
    parser.add_argument("--name", default=None, help="model name (default: the run's task name)")
    parser.add_argument("--version", type=int, default=None,
                        help="version number (default: one after the latest; never overwritten)")
    parser.set_defaults(func=run)


def run(args) -> int:
    load_run_config(args.run_dir)  # before TensorFlow loads: a wrong RUN_DIR is answered at once
    from seqzoo.serving.export import export_run

    path = export_run(args.run_dir, args.models_dir, args.name, args.version)
    print(f"Exported {args.run_dir} to {path}")
    print(f"Serve it with:   seqzoo serve --models-dir {args.models_dir}")
    return 0
