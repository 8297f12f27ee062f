"""The Elman task: an `ElmanNetwork` trained on a long-time-lag problem (adding, copy or echo),
by full or truncated backpropagation through time."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from seqzoo.training.checked_config import CheckedConfig, at_least
from seqzoo.training.data.long_lag_builtin import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_task,
    delayed_echo,
)
from seqzoo.training.data.sources import parse_source
from seqzoo.training.tasks.base import Task
from seqzoo.training.truncated_bptt import chunk_bounds, chunk_forward, truncated_forward
from seqzoo.zoo.models.recurrent.elman_network import ElmanNetwork
from seqzoo.zoo.models.recurrent.elman_serving_module import PROBLEMS, ElmanServingModule

NUM_SYMBOLS = 3
ALPHABET = 4
# Validation data is drawn from a seed far from the training seed, so the two never coincide.
VALIDATION_SEED_OFFSET = 1_000_003
_FEATURES = {"adding": 2, "copy": ALPHABET + 2, "echo": 1}


@dataclasses.dataclass
class ElmanConfig(CheckedConfig):
    """Model, data and training settings of the elman task.

    Args:
        units: hidden units of the Elman cell.
        context_units: context units of the Elman cell.
        length: steps per sequence of the adding and echo problems, or the delay (blank steps
            between reading and recalling) of the copy problem.
        delay: steps between an input and its echo (echo problem only; less than `length`).
        truncation: 0 trains by full backpropagation through time. U > 0 trains by truncated
            backpropagation through time in chunks of U steps, each starting from the state the
            previous chunk ended in with the gradient cut there: one update per chunk on the
            echo problem (targets at every step), one per sequence reaching back U steps on
            adding and copy (targets at the end).
        num_examples: training sequences generated.
        num_validation: validation sequences generated.
    """

    units: int = at_least(1, 32)
    context_units: int = at_least(1, 32)
    length: int = at_least(2, 20)
    delay: int = at_least(1, 8)
    truncation: int = at_least(0, 0)
    num_examples: int = at_least(10, 20000)
    num_validation: int = at_least(1, 1000)


class ElmanTask(Task):
    """Trains an `ElmanNetwork` on a long-time-lag problem (built-in data only).

    `--data builtin` or `builtin:adding`: sequences of (value, marker) pairs, the target is the
    sum of the two marked values; the loss is the squared error. `--data builtin:copy`: three
    symbols to recall after `length` blank steps; the loss is the cross-entropy of the recalled
    symbols. `--data builtin:echo`: ±1 inputs to repeat `delay` steps later at every step; the
    loss is the squared error. `evaluate()` returns `error_ratio` (validation error divided by
    the error of a predictor that ignores the inputs: 1 means nothing learned) and `mse`
    (adding, echo) or `symbol_accuracy` (copy). With `model.truncation` a training step makes
    one update per chunk (echo), so the loop's steps count batches, not updates.

    Example:

    >>> task = ElmanTask(ElmanConfig(length=32, delay=8, truncation=10), data="builtin:echo")
    >>> task.prepare()
    >>> model = task.build_model()
    """

    name = "elman"
    Config = ElmanConfig
    tiny_run = ("train.steps=2", "train.batch_size=8", "model.units=4", "model.context_units=4",
                "model.length=5", "model.num_examples=64", "model.num_validation=16")

    def __init__(self, config=None, data="builtin", run_dir=None, seed=0):
        super().__init__(config, data=data, run_dir=run_dir, seed=seed)
        source = parse_source(data)
        if source.kind != "builtin" or source.arg not in ("",) + PROBLEMS:
            raise ValueError(
                f"The elman task trains on built-in sequence problems only; received data "
                f"{data!r}; accepted: builtin, builtin:adding, builtin:copy, builtin:echo."
            )
        self.problem = source.arg or "adding"
        if self.problem == "echo" and self.config.delay >= self.config.length:
            raise ValueError(
                f"builtin:echo needs model.delay < model.length; received delay "
                f"{self.config.delay}, length {self.config.length}."
            )
        self.features = _FEATURES[self.problem]

    def _generate(self, num_examples, seed):
        c = self.config
        if self.problem == "adding":
            return adding_problem(num_examples, c.length, seed=seed)
        if self.problem == "echo":
            return delayed_echo(num_examples, c.length, c.delay, seed=seed)
        return copy_task(num_examples, c.length, num_symbols=NUM_SYMBOLS, alphabet=ALPHABET,
                         seed=seed)

    def prepare(self):
        c = self.config
        self.splits = {
            "train": self._generate(c.num_examples, self.seed),
            "validation": self._generate(c.num_validation, self.seed + VALIDATION_SEED_OFFSET),
        }

    def train_dataset(self, global_batch_size, input_context=None):
        arrays = self.splits["train"]
        dataset = tf.data.Dataset.from_tensor_slices(arrays)
        return self.shuffled_batches(dataset, len(arrays[0]), global_batch_size, input_context)

    def build_model(self):
        c = self.config
        copy = self.problem == "copy"
        model = ElmanNetwork(
            c.units, output_units=ALPHABET if copy else 1, context_units=c.context_units,
            output_activation="softmax" if copy else None,
            return_sequences=self.problem != "adding", name=f"elman_{self.problem}",
        )
        model(np.zeros((1, 1, self.features), np.float32))
        return model

    def _per_example(self, outputs, targets, weights=None):
        """Per-example loss and metrics, shared by training and evaluation."""
        if self.problem == "adding":
            squared_error = tf.square(outputs[:, 0] - tf.cast(targets[:, 0], outputs.dtype))
            return squared_error, {"error_ratio": squared_error / ADDING_BASELINE_MSE}
        if self.problem == "echo":
            # Steps before the first echo have weight 0: there is nothing to repeat yet.
            outputs, targets = outputs[..., 0], tf.cast(targets[..., 0], outputs.dtype)
            weights = tf.cast(weights, outputs.dtype)
            wrong = tf.cast(tf.not_equal(tf.sign(outputs), targets), outputs.dtype) * weights
            # A guess of the sign is wrong half the time.
            error_rate = tf.reduce_sum(wrong, -1) / tf.maximum(tf.reduce_sum(weights, -1), 1.0)
            return tf.reduce_mean(weights * tf.square(outputs - targets), axis=-1), {
                "error_ratio": error_rate / 0.5}
        probabilities = outputs[:, -NUM_SYMBOLS:]
        cross_entropy = keras.losses.sparse_categorical_crossentropy(targets, probabilities)
        correct = tf.cast(tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32),
                                   tf.cast(targets, tf.int32)), tf.float32)
        return tf.reduce_mean(cross_entropy, axis=-1), {
            "symbol_accuracy": tf.reduce_mean(correct, axis=-1)}

    def compute_loss(self, model, batch, training):
        inputs, *targets = batch
        return self._per_example(model(inputs, training=training), *targets)

    def update_losses(self, model, batch, training):
        truncation = self.config.truncation
        if not truncation:
            yield from super().update_losses(model, batch, training)
            return
        inputs, *targets = batch
        if self.problem != "echo":
            # Targets at the end only: one update, whose gradient reaches back one chunk.
            yield lambda: self._per_example(
                truncated_forward(model, inputs, truncation, training=training)[0], *targets)
            return
        states = None
        for start, stop in chunk_bounds(int(inputs.shape[1]), truncation):
            def chunk_loss(start=start, stop=stop):
                nonlocal states
                outputs, states = chunk_forward(model, inputs[:, start:stop], states, training)
                return self._per_example(outputs, *(t[:, start:stop] for t in targets))
            yield chunk_loss

    def evaluate(self, model):
        inputs, *targets = self.splits["validation"]
        loss, metrics = self._per_example(model(inputs, training=False), *targets)
        results = {name: float(tf.reduce_mean(value)) for name, value in metrics.items()}
        if self.problem == "copy":
            results["error_ratio"] = (1.0 - results["symbol_accuracy"]) / (1.0 - 1.0 / ALPHABET)
        elif self.problem == "echo":
            # Over the steps that have an echo to give, not over all steps as the loss is.
            weights = targets[1]
            results["mse"] = float(tf.reduce_sum(loss) * weights.shape[1] / np.sum(weights))
        else:
            results["mse"] = float(tf.reduce_mean(loss))
        return results

    def export_module(self, model):
        return ElmanServingModule(model, self.problem, self.features, num_symbols=NUM_SYMBOLS)

    def warmup_inputs(self):
        return {"sequences": self._generate(2, seed=0)[0].tolist()}
