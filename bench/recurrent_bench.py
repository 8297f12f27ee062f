"""Train-step time of the zoo's recurrent layers vs Keras's own and PyTorch's, side by side.

One training step (forward, backward, Adam update; loss: mean square of the outputs) of a
recurrent layer on a random batch, for GRU and LSTM, unidirectional and bidirectional:
- zoo: the layer as `seqzoo train` runs it by default, a `tf.function` step; bidirectional is
  `BidirectionalEncoder`, unidirectional the zoo's `LSTM`/`GRU` (Keras's layers with the
  hoisted-projection CPU kernel of `seqzoo.zoo.layers.hoisted_recurrence`, whose loops train
  XLA-compiled), which the zoo's models use;
- zoo 1 chain: the same with the batch in one chain of compiled loops, not one slice per core
  (`hoisted_recurrence.batch_slices`); "chains vs 1" is what the slicing gains;
- zoo XLA: the same step compiled by XLA (`train.jit_compile=auto` or `on`);
- Keras: `keras.layers.Bidirectional` (or the bare layer), compiled as `model.fit` compiles it by
  default on a machine without GPU (a `tf.function`, no XLA);
- PyTorch: `torch.nn.GRU`/`LSTM(bidirectional=...)`, when torch is installed (an optional bench
  extra: `pip install torch==2.13.0`).
The calls take turns round by round (bench/timing.py), so load drift hits all alike; the table
gives milliseconds per step and the zoo's speed relative to Keras and to PyTorch (a ratio above 1
means the zoo is faster). TensorFlow and PyTorch run with their default thread counts (one
intra-op thread per core each); the table's last line states them.

    python -m bench recurrent [--rounds 3] [--steps 5] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
from logging.handlers import BufferingHandler
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

from bench.timing import interleaved_rates
from seqzoo.zoo.layers import BidirectionalEncoder, hoisted_recurrence
from seqzoo.zoo.layers.recurrent_cells import LAYER_CLASSES

# (direction, batch, time steps, input features, units): the shapes the issue measured.
SHAPES = (("bidirectional", 32, 200, 128, 128), ("unidirectional", 32, 100, 64, 128))
QUICK_SHAPES = (("unidirectional", 4, 6, 5, 3),)
_KERAS_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def _keras_step(layer, jit_compile):
    """A train step of `layer` (built on first call) with Adam, as a compiled function."""
    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function(jit_compile=jit_compile)
    def step(x):
        with tf.GradientTape() as tape:
            outputs = layer(x, training=True)
            outputs = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
            loss = tf.reduce_mean(tf.square(outputs))
        grads = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply_gradients(zip(grads, layer.trainable_variables))
        return loss

    return lambda x: float(step(x))


def _zoo_layer(cell, direction, units):
    if direction == "bidirectional":
        return BidirectionalEncoder(units, cell=cell)
    return LAYER_CLASSES[cell](units, return_sequences=True)


def _keras_layer(cell, direction, units):
    layer = _KERAS_LAYERS[cell](units, return_sequences=True)
    return keras.layers.Bidirectional(layer) if direction == "bidirectional" else layer


def _torch_step(cell, direction, features, units):
    import torch

    torch.manual_seed(0)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        features, units, batch_first=True, bidirectional=direction == "bidirectional")
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)

    def step(x):
        optimizer.zero_grad()
        outputs, _ = module(x)
        loss = outputs.square().mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    return lambda x: step(torch.from_numpy(x))


def _torch_imports() -> bool:
    try:
        import torch  # noqa: F401  (optional: the bench extra)
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench recurrent", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up)")
    parser.add_argument("--steps", type=int, default=5, help="train steps per path per round")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one round")
    args = parser.parse_args(argv)
    shapes = SHAPES
    if args.quick:
        shapes, args.rounds, args.steps = QUICK_SHAPES, 1, 2
    has_torch = _torch_imports()

    keras.utils.set_random_seed(0)
    # The kernel each zoo layer runs, as the layers log it (once per process).
    chosen = BufferingHandler(capacity=100)
    logger = logging.getLogger(hoisted_recurrence.__name__)
    level = logger.level
    logger.addHandler(chosen)
    logger.setLevel(logging.INFO)
    try:
        _print_table(shapes, args, has_torch)
    finally:
        logger.removeHandler(chosen)
        logger.setLevel(level)
    for record in chosen.buffer:
        print(record.getMessage())
    print(_threads(has_torch))
    if not has_torch:
        print("PyTorch is absent: `pip install torch==2.13.0` (CPU build) adds its column.")


def _threads(has_torch) -> str:
    """The intra-op thread counts both frameworks run with, e.g. "threads: TensorFlow 2
    intra-op, 2 inter-op; PyTorch 2 (2 cores)"."""
    cores = os.cpu_count()
    # 0 is TensorFlow's default: one thread per core.
    intra = tf.config.threading.get_intra_op_parallelism_threads() or cores
    inter = tf.config.threading.get_inter_op_parallelism_threads() or cores
    line = f"threads: TensorFlow {intra} intra-op, {inter} inter-op"
    if has_torch:
        import torch

        line += f"; PyTorch {torch.get_num_threads()}"
    return f"{line} ({cores} cores)"


def _print_table(shapes, args, has_torch) -> None:
    print(f"recurrent bench: ms per train step (forward, backward, Adam on a random batch), "
          f"{args.steps} steps x {args.rounds} rounds per path, taking turns; zoo = as `seqzoo "
          f"train` runs it by default, Keras = as model.fit compiles it on a CPU")
    header = (f"{'layer':<10}{'shape b,t,in,units':>20}{'zoo':>8}{'1 chain':>8}{'zoo XLA':>8}"
              f"{'Keras':>8}{'PyTorch':>8}{'zoo vs Keras':>13}{'XLA vs Keras':>13}"
              f"{'zoo vs PyTorch':>15}{'chains vs 1':>12}")
    print(header)
    for direction, batch, time_steps, features, units in shapes:
        x = np.random.default_rng(0).normal(size=(batch, time_steps, features)).astype("float32")
        for cell in ("gru", "lstm"):
            one_chain = _keras_step(_zoo_layer(cell, direction, units), jit_compile=False)
            # Traced (by its first call) while no batch is large enough to slice.
            with mock.patch.object(hoisted_recurrence, "MIN_SLICE", batch + 1):
                one_chain(x)
            calls = {
                "zoo": _keras_step(_zoo_layer(cell, direction, units), jit_compile=False),
                "1 chain": one_chain,
                "zoo XLA": _keras_step(_zoo_layer(cell, direction, units), jit_compile=True),
                "Keras": _keras_step(_keras_layer(cell, direction, units), jit_compile=False),
            }
            if has_torch:
                calls["PyTorch"] = _torch_step(cell, direction, features, units)
            rates = interleaved_rates(calls, [x] * args.steps, args.rounds)
            ms = {key: 1000.0 * batch / rate for key, rate in rates.items()}
            torch_ms = f"{ms['PyTorch']:>8.1f}" if has_torch else f"{'absent':>8}"
            versus_torch = (f"{ms['PyTorch'] / ms['zoo']:>14.2f}x" if has_torch
                            else f"{'-':>15}")
            print(f"{direction[:3] + ' ' + cell.upper():<10}"
                  f"{f'{batch},{time_steps},{features},{units}':>20}"
                  f"{ms['zoo']:>8.1f}{ms['1 chain']:>8.1f}{ms['zoo XLA']:>8.1f}{ms['Keras']:>8.1f}"
                  f"{torch_ms}{ms['Keras'] / ms['zoo']:>12.2f}x"
                  f"{ms['Keras'] / ms['zoo XLA']:>12.2f}x{versus_torch}"
                  f"{ms['1 chain'] / ms['zoo']:>11.2f}x")
