"""Long time lags (Hochreiter & Schmidhuber, 1997): which cells learn them, and up to what length.

Every cell (SimpleRNN, Elman, LSTM, GRU) is trained with the same budget (steps, batch, units,
optimizer, seed, fresh data every step) on the adding problem and on the copy task at several
lengths, then evaluated on held-out sequences. The table reports the final error divided by the
error of a predictor that ignores the inputs (adding: mean squared error / 1/6, the error of
always answering 1.0; copy: symbol error rate / (1 - 1/alphabet), the error of guessing), so 1.0
means nothing was learned and values near 0 mean solved. Lengths are the number of steps between
the first piece of information and the answer.

    python -m bench long_lag [--steps 1500] [--adding-lengths 10,30,60,100] [--copy-delays 5,15,30]
                             [--distractors 0] [--cells simple_rnn,elman,lstm,gru] [--units 32]
                             [--quick]
"""

from __future__ import annotations

import argparse
import time

from zoo.models.recurrent.long_lag_training import (
    CELL_NAMES, NUM_SYMBOLS, error_ratio, train_long_lag,
)

SOLVED_BELOW = 0.1


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, received {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, received {text!r}")
    return values


def _cell_list(text: str) -> list[str]:
    names = [part for part in text.split(",") if part]
    unknown = [name for name in names if name not in CELL_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown cell(s) {unknown or text!r}; accepted: {', '.join(CELL_NAMES)}")
    return names


def _format_table(rows, cells) -> str:
    header = f"{'task':<8}{'lag':>6}  " + "".join(f"{name:>12}" for name in cells)
    lines = [header, "-" * len(header)]
    for (task, length, lag), ratios in rows:
        cells_text = "".join(
            f"{ratios[name]:>11.3f}{'*' if ratios[name] < SOLVED_BELOW else ' '}" for name in cells
        )
        lines.append(f"{task:<8}{lag:>6}  {cells_text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench long_lag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adding-lengths", type=_int_list, default=[10, 30, 60, 100])
    parser.add_argument("--copy-delays", type=_int_list, default=[5, 15, 30])
    parser.add_argument("--distractors", type=int, default=0,
                        help="distractor symbols filling the copy task's blanks (default 0)")
    parser.add_argument("--cells", type=_cell_list, default=list(CELL_NAMES))
    parser.add_argument("--steps", type=int, default=1500, help="training steps per run")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny smoke run: one short length per task, 20 steps, 8 units")
    args = parser.parse_args(argv)
    if args.quick:
        args.adding_lengths, args.copy_delays = [4], [2]
        args.steps, args.units, args.batch_size = 20, 8, 16
    if args.steps < 1 or args.units < 1 or args.batch_size < 1 or args.distractors < 0:
        parser.error("--steps, --units and --batch-size must be positive, --distractors >= 0")

    runs = [("adding", n, n) for n in args.adding_lengths]
    runs += [("copy", d, d + NUM_SYMBOLS) for d in args.copy_delays]
    print(f"Training {len(args.cells)} cells x {len(runs)} settings, {args.steps} steps each "
          f"(batch {args.batch_size}, {args.units} units, Adam {args.learning_rate}).", flush=True)
    rows, seconds = [], {name: 0.0 for name in args.cells}
    for task, length, lag in runs:
        ratios = {}
        for name in args.cells:
            start = time.perf_counter()
            model = train_long_lag(
                name, task, length, steps=args.steps, units=args.units,
                batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
                distractors=args.distractors,
            )
            ratios[name] = error_ratio(model, task, length, seed=args.seed,
                                       distractors=args.distractors)
            seconds[name] += time.perf_counter() - start
        rows.append(((task, length, lag), ratios))
        print(f"  {task} lag {lag}: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()),
              flush=True)

    print()
    print("Final error / error of a predictor ignoring the inputs (1 = nothing learned; "
          f"* = below {SOLVED_BELOW}, solved).")
    print("adding: MSE / (1/6); copy: symbol error / (1 - 1/4). lag = steps from the first "
          "information to the answer.")
    print(_format_table(rows, args.cells))
    print("training seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    return 0
