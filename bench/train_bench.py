"""Steps per second of the custom training loop vs Keras `model.fit`, side by side, one device.

Every runner trains the same task model (same seed, data, global batch size, optimizer and
gradient clipping) for the same number of steps; the first steps (tracing, XLA compilation) are
not timed. `model.fit` runs with its defaults (one step per call; no XLA on a CPU-only machine)
and with the loop's settings; the custom loop runs with each combination of
`train.steps_per_execution` and `train.jit_compile`, as `seqzoo.training.loop` calls its step
(the loss fetched to the host after every call, to stop on NaN). The tasks' input pipelines
prefetch in every row.

    python -m bench train [--task sentiment] [--steps 200] [--batch-size 64] [--rounds 2]
                          [--window 10] [--set k=v] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import keras
import tensorflow as tf

from seqzoo.training import config as run_config
from seqzoo.training import train_step
from seqzoo.training.strategy import make_strategy
from seqzoo.training.tasks import build_task

QUICK_OVERRIDES = {
    "sentiment": ["model.num_examples=200", "model.vocab_size=100", "model.units=8",
                  "model.embedding_dim=8", "model.max_length=16"],
}


class _FitAdapter(keras.Model):
    """Runs a task's `compute_loss` inside `model.fit`, as Keras runs a compiled loss."""

    def __init__(self, task, model, **kwargs):
        super().__init__(**kwargs)
        self.task = task
        self.model = model

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            per_example_loss, metrics = self.task.compute_loss(self.model, data, training=True)
            loss = tf.reduce_mean(per_example_loss)
            if self.model.losses:
                loss += tf.add_n(self.model.losses)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss, **{name: tf.reduce_mean(value) for name, value in metrics.items()}}


class _StepClock(keras.callbacks.Callback):
    """(steps done, time) after every call of fit's train function."""

    def __init__(self):
        super().__init__()
        self.marks = []

    def on_train_batch_end(self, batch, logs=None):
        self.marks.append((batch + 1, time.perf_counter()))


def _steps_per_second(marks, warmup):
    """Rate over the marks after the first `warmup` steps."""
    first = next(mark for mark in marks if mark[0] >= warmup)
    last = marks[-1]
    return (last[0] - first[0]) / (last[1] - first[1])


def _time_custom_loop(task, cfg, total, window, jit):
    train = dataclasses.replace(cfg.train, jit_compile="on" if jit else "off")
    strategy = make_strategy("one_device")
    keras.utils.set_random_seed(train.seed)
    with strategy.scope():
        model = task.build_model()
        optimizer = train_step.make_optimizer(train)
        optimizer.build(model.trainable_variables)
    dataset = strategy.distribute_datasets_from_function(
        lambda context: task.train_dataset(train.batch_size, context)
    )
    iterator = iter(dataset)
    step = train_step.make_train_step(strategy, task, model, optimizer, train)
    marks, done = [], 0
    while done < total:
        loss, _ = step(iterator, window)
        float(loss)
        done += window
        marks.append((done, time.perf_counter()))
    return marks


def _time_fit(task, cfg, total, window, jit):
    keras.utils.set_random_seed(cfg.train.seed)
    model = task.build_model()
    adapter = _FitAdapter(task, model)
    optimizer = train_step.make_optimizer(cfg.train)
    if cfg.train.clip_norm:
        optimizer.global_clipnorm = cfg.train.clip_norm
    adapter.compile(optimizer=optimizer, steps_per_execution=window, jit_compile=jit)
    clock = _StepClock()
    adapter.fit(task.train_dataset(cfg.train.batch_size), epochs=1, steps_per_epoch=total,
                callbacks=[clock], shuffle=False, verbose=0)
    return clock.marks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench train", description=__doc__)
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per runner")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best is kept")
    parser.add_argument("--window", type=int, default=10,
                        help="steps per execution of the spe rows (the loop's log_every default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--quick", action="store_true", help="tiny model and a few steps")
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    if args.quick:
        args.steps, args.warmup, args.batch_size, args.rounds, args.window = 4, 2, 8, 1, 2
        overrides = QUICK_OVERRIDES.get(args.task, []) + overrides
    overrides += [f"train.batch_size={args.batch_size}", "train.strategy=one_device"]
    cfg = run_config.resolve(args.task, overrides=overrides)
    task = build_task(cfg)
    task.prepare()

    window = args.window
    total = args.warmup + args.steps
    total += -total % window
    runners = {
        "keras model.fit (defaults)": (_time_fit, 1, False),
        f"keras model.fit (spe {window}, XLA)": (_time_fit, window, True),
        "custom loop (spe 1)": (_time_custom_loop, 1, False),
        f"custom loop (spe {window})": (_time_custom_loop, window, False),
        "custom loop (spe 1, XLA)": (_time_custom_loop, 1, True),
        f"custom loop (spe {window}, XLA)": (_time_custom_loop, window, True),
    }
    unsupported = sorted({type(layer).__name__ for layer in task.build_model()._flatten_layers()
                          if not layer.supports_jit})
    if unsupported:
        runners = {name: runner for name, runner in runners.items() if not runner[2]}
    if args.quick:
        runners = {name: runners[name] for name in ("keras model.fit (defaults)",
                                                    f"custom loop (spe {window})")}
    rates = dict.fromkeys(runners, 0.0)
    # Alternating rounds, best of each, so that no runner profits from running later.
    for _ in range(args.rounds):
        for name, (runner, steps_per_call, jit) in runners.items():
            marks = runner(task, cfg, total, steps_per_call, jit)
            rates[name] = max(rates[name], _steps_per_second(marks, args.warmup))
    baseline = rates["keras model.fit (defaults)"]
    print(f"train bench: task {args.task}, global batch {args.batch_size}, {args.steps} timed "
          f"steps after {args.warmup} warm-up, best of {args.rounds} rounds, one device; "
          f"spe = steps per execution (one call of the compiled step)")
    print(f"{'runner':<34}{'steps/s':>10}{'vs fit':>10}")
    for name, rate in rates.items():
        print(f"{name:<34}{rate:>10.1f}{rate / baseline:>9.2f}x")
    if unsupported:
        print(f"(no XLA rows: XLA cannot compile the model's {', '.join(unsupported)} layers)")
