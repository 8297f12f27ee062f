"""`seqzoo train TASK`: trains a task's model with `seqzoo.training.loop.train`."""

from __future__ import annotations

import argparse
import sys

from seqzoo.training.config import STRATEGIES, TrainConfig
from seqzoo.training.data.sources import check_source
from seqzoo.training.tasks import SUMMARIES, TASKS, TRAIN_DEFAULTS, check_task_name


def _task_defaults(setting: str, default) -> str:
    """`default`, and the tasks that set `setting` otherwise, for the help."""
    own = [f"{task} {values[setting]}" for task, values in TRAIN_DEFAULTS.items()
           if setting in values]
    return f"{default}; {', '.join(own)}" if own else f"{default}"


def register(subparsers) -> None:
    """Adds the `train` subcommand to the `seqzoo` parser's `subparsers`."""
    width = max(map(len, TASKS))
    tasks = "\n".join(f"  {name:<{width}}  {SUMMARIES.get(name, '')}" for name in TASKS)
    parser = subparsers.add_parser(
        "train",
        help="train a task's model (resumes when the run directory has checkpoints)",
        description="Train TASK with the custom distributed loop. Settings come from defaults,\n"
        "then RUN_DIR/config.yaml when resuming, then --config, then --set, then the flags.\n"
        "A run directory with checkpoints is resumed with its own settings; only the number\n"
        "of steps, the strategy and how often to log, evaluate and checkpoint may change\n"
        "(--fresh starts over).",
        epilog=f"tasks:\n{tasks}\n\nThe README's \"Built-in datasets\" says what each one "
        "covers\n(builtin:dates, for one, spans the years 1950-2049).\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = TrainConfig()
    parser.add_argument("task", metavar="TASK", help="task name (listed below)")
    parser.add_argument("--data", help="builtin[:NAME], tfds:NAME or file:PATH (default: builtin, "
                        "the task's first built-in dataset)")
    parser.add_argument("--run-dir", help="run directory (default: runs/TASK)")
    parser.add_argument("--strategy", choices=STRATEGIES,
                        help=f"distribution strategy (default: {defaults.strategy}: "
                        "multi_worker_mirrored when TF_CONFIG names several workers, mirrored "
                        "on several GPUs, else one_device)")
    parser.add_argument("--steps", type=int,
                        help="total optimizer steps of the run (default: "
                        f"{_task_defaults('steps', defaults.steps)})")
    parser.add_argument("--batch-size", type=int,
                        help="global batch size (default: "
                        f"{_task_defaults('batch_size', defaults.batch_size)})")
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of settings")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append",
                        default=[], help="override a setting, e.g. --set model.units=64")
    parser.add_argument("--fresh", action="store_true",
                        help="delete the run the run directory holds and start over")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress lines (the summary at the end stays)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Before TensorFlow loads: a typo is answered at once.
    check_task_name(args.task)
    if args.data is not None:
        check_source(args.data)
    from seqzoo.training import loop, run_directory
    from seqzoo.training.worker_lost import WorkerLost

    flags = {"data": args.data, "train.strategy": args.strategy, "train.steps": args.steps,
             "train.batch_size": args.batch_size}
    overrides = args.overrides + [f"{key}={value}" for key, value in flags.items()
                                  if value is not None]
    run_dir = args.run_dir or f"runs/{args.task}"
    config = run_directory.configure(args.task, run_dir, config_file=args.config,
                                     overrides=overrides, fresh=args.fresh)
    try:
        loop.train(config, run_dir, progress=not args.no_progress, fresh=args.fresh)
    except KeyboardInterrupt:
        return 130
    except WorkerLost as err:
        print(f"seqzoo train: error: {err}", file=sys.stderr, flush=True)
        return 1
    return 0
