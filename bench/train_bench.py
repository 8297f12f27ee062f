"""Steps per second of the custom training loop vs Keras `model.fit`, side by side, one device.

Both runners train the same task model (same seed, data, global batch size, optimizer and
gradient clipping) for the same number of steps; the first steps (tracing) are not timed. The
custom loop fetches the loss every step, as `seqzoo.training.loop.train` does to stop on NaN.

    python -m bench train [--task sentiment] [--steps 200] [--batch-size 64] [--rounds 2]
                          [--set k=v] [--quick]
"""

from __future__ import annotations

import argparse
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
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def _steps_per_second(times, warmup):
    return (len(times) - warmup) / (times[-1] - times[warmup - 1])


def _time_custom_loop(task, cfg, total):
    strategy = make_strategy("one_device")
    keras.utils.set_random_seed(cfg.train.seed)
    with strategy.scope():
        model = task.build_model()
        optimizer = train_step.make_optimizer(cfg.train)
        optimizer.build(model.trainable_variables)
    dataset = strategy.distribute_datasets_from_function(
        lambda context: task.train_dataset(cfg.train.batch_size, context)
    )
    iterator = iter(dataset)
    step = train_step.make_train_step(strategy, task, model, optimizer, cfg.train)
    times = []
    for _ in range(total):
        loss, _ = step(iterator)
        float(loss)
        times.append(time.perf_counter())
    return times


def _time_fit(task, cfg, total):
    keras.utils.set_random_seed(cfg.train.seed)
    model = task.build_model()
    adapter = _FitAdapter(task, model)
    optimizer = train_step.make_optimizer(cfg.train)
    if cfg.train.clip_norm:
        optimizer.global_clipnorm = cfg.train.clip_norm
    adapter.compile(optimizer=optimizer)
    clock = _StepClock()
    adapter.fit(task.train_dataset(cfg.train.batch_size), epochs=1, steps_per_epoch=total,
                callbacks=[clock], shuffle=False, verbose=0)
    return clock.times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench train", description=__doc__)
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per runner")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best is kept")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--quick", action="store_true", help="tiny model and a few steps")
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    if args.quick:
        args.steps, args.warmup, args.batch_size, args.rounds = 5, 2, 8, 1
        overrides = QUICK_OVERRIDES.get(args.task, []) + overrides
    overrides += [f"train.batch_size={args.batch_size}", "train.strategy=one_device"]
    cfg = run_config.resolve(args.task, overrides=overrides)
    task = build_task(cfg)
    task.prepare()

    total = args.warmup + args.steps
    runners = {"keras model.fit": _time_fit, "custom loop (seqzoo.training.loop)": _time_custom_loop}
    rates = dict.fromkeys(runners, 0.0)
    # Alternating rounds, best of each, so that neither runner profits from running second.
    for _ in range(args.rounds):
        for name, runner in runners.items():
            rate = _steps_per_second(runner(task, cfg, total), args.warmup)
            rates[name] = max(rates[name], rate)
    baseline = rates["keras model.fit"]
    print(f"train bench: task {args.task}, global batch {args.batch_size}, {args.steps} timed "
          f"steps after {args.warmup} warm-up, best of {args.rounds} rounds, one device")
    print(f"{'runner':<30}{'steps/s':>10}{'vs fit':>10}")
    for name, rate in rates.items():
        print(f"{name:<30}{rate:>10.1f}{rate / baseline:>9.2f}x")
