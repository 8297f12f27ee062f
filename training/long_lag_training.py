"""Training one recurrent cell on a long-time-lag problem, the same way for every cell.

Shared by the long-lag benchmark (which compares cells after equal training) and the gradient
flow tool (which can measure cells after training). Every cell gets the same model around it
(one recurrent layer and a linear readout), the same optimizer (Adam with gradient clipping at
norm 1) and a fresh batch of data at every step.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from seqzoo.training.data.long_lag_builtin import ADDING_BASELINE_MSE, adding_problem, copy_task
from seqzoo.zoo.layers.elman_cell import ElmanCell

CELL_NAMES = ("simple_rnn", "elman", "lstm", "gru")
PROBLEMS = ("adding", "copy")
NUM_SYMBOLS = 3
ALPHABET = 4


def make_cell(name: str, units: int):
    """A fresh Keras RNN cell by name: "simple_rnn", "elman", "lstm" or "gru".

    Weights come from Keras's default initializers (seed them with `keras.utils.set_random_seed`).
    """
    builders = {
        "simple_rnn": keras.layers.SimpleRNNCell,
        "elman": ElmanCell,
        "lstm": keras.layers.LSTMCell,
        "gru": keras.layers.GRUCell,
    }
    if name not in builders:
        raise ValueError(f"Unknown cell {name!r}; accepted: {', '.join(CELL_NAMES)}.")
    return builders[name](units)


def parse_cell_names(text: str) -> list[str]:
    """The cells of a comma-separated list such as "lstm,gru" (command-line flags take this form).

    Raises:
        ValueError: naming the unknown cells and listing the accepted ones.
    """
    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in CELL_NAMES]
    if unknown or not names:
        raise ValueError(
            f"Unknown cell(s) {', '.join(unknown) or repr(text)}; accepted: a comma-separated "
            f"list of {', '.join(CELL_NAMES)}."
        )
    return names


def _check_problem(problem):
    if problem not in PROBLEMS:
        raise ValueError(f"Unknown problem {problem!r}; accepted: {', '.join(PROBLEMS)}.")


def problem_batch(problem: str, length: int, size: int, seed: int, distractors: int = 0,
                  min_delay: int | None = None):
    """`(inputs, targets)` of the adding problem of `length` steps, or of the copy problem with
    delay `length` (3 symbols of 4, `distractors` distractor symbols; with `min_delay`, each
    sequence's delay drawn from `min_delay..length`, see `copy_task`)."""
    _check_problem(problem)
    if problem == "adding":
        if min_delay is not None:
            raise ValueError(f"min_delay applies to the copy problem only. Received: "
                             f"problem='adding', min_delay={min_delay!r}")
        return adding_problem(size, length, seed=seed)
    return copy_task(size, length, num_symbols=NUM_SYMBOLS, alphabet=ALPHABET,
                     distractors=distractors, seed=seed, min_delay=min_delay)


def build_model(cell_name: str, problem: str, units: int, distractors: int = 0) -> keras.Model:
    """One recurrent layer of `cell_name` and a linear readout: the sum (adding) or the logits of
    the recalled symbols at the last `NUM_SYMBOLS` steps (copy)."""
    _check_problem(problem)
    features = 2 if problem == "adding" else ALPHABET + 2 + distractors
    inputs = keras.Input((None, features))
    if problem == "adding":
        outputs = keras.layers.Dense(1)(keras.layers.RNN(make_cell(cell_name, units))(inputs))
    else:
        sequence = keras.layers.RNN(make_cell(cell_name, units), return_sequences=True)(inputs)
        outputs = keras.layers.Dense(ALPHABET)(sequence[:, -NUM_SYMBOLS:])
    return keras.Model(inputs, outputs, name=f"{cell_name}_{problem}")


def train_long_lag(cell_name: str, problem: str, length: int, *, steps: int, units: int = 32,
                   batch_size: int = 64, learning_rate: float = 3e-3, seed: int = 0,
                   distractors: int = 0, min_delay: int | None = None) -> keras.Model:
    """Builds and trains a `build_model` model for `steps` steps; returns it.

    Training batches use seeds `seed * 1_000_003 + step`; `error_ratio` evaluates on a seed far
    from all of them. `min_delay` (copy only) trains on delays drawn from `min_delay..length`.
    """
    keras.utils.set_random_seed(seed)
    model = build_model(cell_name, problem, units, distractors)
    optimizer = keras.optimizers.Adam(learning_rate, clipnorm=1.0)
    loss_fn = (keras.losses.MeanSquaredError() if problem == "adding"
               else keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    @tf.function
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = loss_fn(targets, model(inputs, training=True))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    for i in range(steps):
        step(*problem_batch(problem, length, batch_size, seed * 1_000_003 + i, distractors,
                            min_delay))
    return model


def error_ratio(model, problem: str, length: int, *, seed: int = 0, distractors: int = 0,
                size: int = 1000) -> float:
    """Held-out error divided by the error of a predictor ignoring the inputs.

    Adding: mean squared error / (1/6), the error of always answering 1.0. Copy: symbol error
    rate / (1 - 1/alphabet), the error of guessing. 1 means nothing was learned, 0 solved.
    Copy sequences all have the delay `length`, the longest lag, however the model was trained.
    """
    inputs, targets = problem_batch(problem, length, size, 2**31 - 1 - seed, distractors)
    predictions = model.predict(inputs, batch_size=250, verbose=0)
    if problem == "adding":
        return float(np.mean((predictions - targets) ** 2) / ADDING_BASELINE_MSE)
    return float(np.mean(predictions.argmax(axis=-1) != targets) / (1.0 - 1.0 / ALPHABET))
