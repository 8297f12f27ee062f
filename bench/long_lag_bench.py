"""Long time lags (Hochreiter & Schmidhuber, 1997): which cells learn them, and up to what length.

Every cell (SimpleRNN, Elman, LSTM, GRU) is trained with the same budget (steps, batch, units,
optimizer, seed, fresh data every step) on the adding problem and on the copy task at several
lengths, then evaluated on held-out sequences. The optimizer is Adam with gradient clipping at
norm 1 for every cell, with one learning rate per task (3e-3 adding, 1e-2 copy), never one per
cell. The table reports the final error divided by the error of a predictor that ignores the
inputs (adding: mean squared error / 1/6, the error of always answering 1.0; copy: symbol error
rate / (1 - 1/alphabet), the error of guessing), so 1.0 means nothing was learned and values near
0 mean solved. Lags are the number of steps between the first piece of information and the answer.

The copy task (3 symbols of 4, blanks, a go marker, recall) trains on delays drawn from 1..T, the
symbols arriving at a random step as the relevant inputs do in Hochreiter & Schmidhuber's
experiments, and is evaluated at the delay T alone. With one fixed delay (`--fixed-copy-delay`) a
SimpleRNN, whose orthogonal recurrent initialisation nearly preserves its state over blank steps,
can read the symbols out of a state rotated by a known amount, while the gated cells start out
forgetting fast and are still at chance after this budget: the table then mostly reflects the
initialisations, not which cell learns to hold information for as long as needed.

A second table trains an Elman network on a delayed echo with truncated backpropagation through
time at several truncations U, next to full backpropagation.

    python -m bench long_lag [--steps 1500] [--adding-lengths 10,30,60,100] [--copy-steps 3000]
                             [--copy-delays 10,30,60,100] [--copy-learning-rate 1e-2]
                             [--fixed-copy-delay] [--distractors 0]
                             [--cells simple_rnn,elman,lstm,gru] [--units 32] [--quick]
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from seqzoo.training.data.long_lag_builtin import delayed_echo
from seqzoo.training.long_lag_training import (
    CELL_NAMES, NUM_SYMBOLS, error_ratio, parse_cell_names, train_long_lag,
)
from seqzoo.training.truncated_bptt import TruncatedBPTT
from seqzoo.zoo.models.recurrent.elman_network import ElmanNetwork

SOLVED_BELOW = 0.1


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, received {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, received {text!r}")
    return values


def _format_table(rows, cells) -> str:
    header = f"{'task':<8}{'lag':>6}  " + "".join(f"{name:>12}" for name in cells)
    lines = [header, "-" * len(header)]
    for (task, length, lag), ratios in rows:
        cells_text = "".join(
            f"{ratios[name]:>11.3f}{'*' if ratios[name] < SOLVED_BELOW else ' '}" for name in cells
        )
        lines.append(f"{task:<8}{lag:>6}  {cells_text}")
    return "\n".join(lines)


def truncation_error_ratio(truncation, *, delay, length, steps, units, seed) -> float:
    """Trains an `ElmanNetwork` on the delayed echo with `TruncatedBPTT(truncation)`; returns the
    held-out sign error rate / 0.5 (the error of guessing)."""
    keras.utils.set_random_seed(seed)
    tbptt = TruncatedBPTT(ElmanNetwork(units, 1), keras.losses.MeanSquaredError(),
                          keras.optimizers.Adam(1e-2), truncation=truncation)
    for i in range(steps):
        x, y, weight = (tf.constant(a) for a in delayed_echo(32, length, delay,
                                                             seed=seed * 1_000_003 + i))
        tbptt.train_step(x, y, sample_weight=weight)
    x, y, _ = delayed_echo(1000, length, delay, seed=2**31 - 1 - seed)
    outputs, _ = tbptt.forward(tf.constant(x))
    errors = np.sign(outputs.numpy()[:, delay:]) != y[:, delay:]
    return float(np.mean(errors) / 0.5)


def _truncation_table(delay, length, steps, units, seed) -> str:
    # Chunks of at most `delay` steps never hold an input together with its echo.
    truncations = [None] + sorted({2 * delay, delay + 1, delay, max(1, delay // 2)}, reverse=True)
    lines = [f"{'truncation U':<14}{'error ratio':>12}", "-" * 26]
    for truncation in truncations:
        ratio = truncation_error_ratio(truncation, delay=delay, length=length, steps=steps,
                                       units=units, seed=seed)
        label = f"full ({length})" if truncation is None else str(truncation)
        lines.append(f"{label:<14}{ratio:>11.3f}{'*' if ratio < SOLVED_BELOW else ' '}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench long_lag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adding-lengths", type=_int_list, default=[10, 30, 60, 100])
    parser.add_argument("--copy-delays", type=_int_list, default=[10, 30, 60, 100])
    parser.add_argument("--fixed-copy-delay", action="store_true",
                        help="train the copy task on its delay T only, not on delays 1..T")
    parser.add_argument("--distractors", type=int, default=0,
                        help="distractor symbols filling the copy task's blanks (default 0)")
    parser.add_argument("--cells", default=",".join(CELL_NAMES),
                        help=f"comma-separated cells (default {','.join(CELL_NAMES)})")
    parser.add_argument("--steps", type=int, default=1500,
                        help="training steps per adding-problem run (default 1500)")
    parser.add_argument("--copy-steps", type=int, default=3000,
                        help="training steps per copy run (default 3000)")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3,
                        help="Adam learning rate of the adding problem (default 3e-3)")
    parser.add_argument("--copy-learning-rate", type=float, default=1e-2,
                        help="Adam learning rate of the copy task (default 1e-2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--echo-delay", type=int, default=8,
                        help="delay of the echo task comparing truncations (default 8)")
    parser.add_argument("--echo-steps", type=int, default=300,
                        help="training sequences per truncation, batches of 32 (default 300)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny smoke run: one short length per task, 20 steps, 8 units")
    args = parser.parse_args(argv)
    try:
        args.cells = parse_cell_names(args.cells)
    except ValueError as err:
        parser.error(str(err))
    if args.quick:
        args.adding_lengths, args.copy_delays = [4], [2]
        args.steps, args.copy_steps, args.units, args.batch_size = 20, 20, 8, 16
        args.echo_delay, args.echo_steps = 1, 5  # truncations: full, 2 and 1
    if min(args.steps, args.copy_steps, args.units, args.batch_size, args.echo_delay,
           args.echo_steps) < 1:
        parser.error("--steps, --copy-steps, --units, --batch-size, --echo-delay and "
                     "--echo-steps must be positive")
    if args.distractors < 0:
        parser.error("--distractors must be >= 0")
    if min(args.learning_rate, args.copy_learning_rate) <= 0:
        parser.error("--learning-rate and --copy-learning-rate must be positive")

    runs = [("adding", n, n) for n in args.adding_lengths]
    runs += [("copy", d, d + NUM_SYMBOLS) for d in args.copy_delays]
    print(f"Training {len(args.cells)} cells x {len(runs)} settings (batch {args.batch_size}, "
          f"{args.units} units, Adam clipped at norm 1): adding {args.steps} steps at learning "
          f"rate {args.learning_rate}, copy {args.copy_steps} steps at {args.copy_learning_rate}.",
          flush=True)
    rows, seconds = [], {name: 0.0 for name in args.cells}
    for task, length, lag in runs:
        ratios = {}
        for name in args.cells:
            start = time.perf_counter()
            copy = task == "copy"
            model = train_long_lag(
                name, task, length, steps=args.copy_steps if copy else args.steps,
                units=args.units, batch_size=args.batch_size,
                learning_rate=args.copy_learning_rate if copy else args.learning_rate,
                seed=args.seed, distractors=args.distractors,
                min_delay=1 if copy and not args.fixed_copy_delay else None,
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
    copy_training = ("on that delay only" if args.fixed_copy_delay
                     else "on delays drawn from 1..T")
    print(f"copy: {NUM_SYMBOLS} symbols, lag = delay T + {NUM_SYMBOLS}; trained {copy_training}, "
          "evaluated at T.")
    print(_format_table(rows, args.cells))
    print("training seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))

    echo_length = 4 * args.echo_delay
    print()
    print(f"Truncated BPTT: an Elman network ({args.units} units) learns to echo its input "
          f"{args.echo_delay} steps later\n({echo_length}-step sequences, {args.echo_steps} "
          "batches of 32, one update per chunk). Error ratio = sign error / 0.5 (guessing);\n"
          f"chunks of U <= {args.echo_delay} steps never hold an input and its echo together.")
    print(_truncation_table(args.echo_delay, echo_length, args.echo_steps, args.units,
                            args.seed))
    return 0
