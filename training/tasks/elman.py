"""The Elman task: an `ElmanNetwork` trained on a long-time-lag problem (adding or copy)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from seqzoo.training.checked_config import CheckedConfig, at_least
from seqzoo.training.data.sources import parse_source
from seqzoo.training.tasks.base import Task
from seqzoo.zoo.models.recurrent.elman_network import ElmanNetwork
from seqzoo.zoo.models.recurrent.elman_serving_module import PROBLEMS, ElmanServingModule
from seqzoo.zoo.models.recurrent.long_lag_tasks import ADDING_BASELINE_MSE, adding_problem, copy_task

NUM_SYMBOLS = 3
ALPHABET = 4
# Validation data is drawn from a seed far from the training seed, so the two never coincide.
VALIDATION_SEED_OFFSET = 1_000_003


@dataclasses.dataclass
class ElmanConfig(CheckedConfig):
    """Model and data settings of the elman task.

    Args:
        units: hidden units of the Elman cell.
        context_units: context units of the Elman cell.
        length: steps per sequence of the adding problem, or the delay (blank steps between
            reading and recalling) of the copy problem.
        num_examples: training sequences generated for `--data builtin[:adding|:copy]`.
        num_validation: validation sequences generated.
    """

    units: int = at_least(1, 32)
    context_units: int = at_least(1, 32)
    length: int = at_least(2, 20)
    num_examples: int = at_least(10, 20000)
    num_validation: int = at_least(1, 1000)


class ElmanTask(Task):
    """Trains an `ElmanNetwork` on the adding problem or the copy problem (built-in data only).

    `--data builtin` or `builtin:adding`: sequences of (value, marker) pairs, the target is the
    sum of the two marked values; the loss is the squared error. `--data builtin:copy`: three
    symbols to recall after `length` blank steps; the loss is the cross-entropy of the recalled
    symbols. `evaluate()` returns `error_ratio` (validation error divided by the error of a
    predictor that ignores the inputs: 1 means nothing learned) and `mse` (adding) or
    `symbol_accuracy` (copy).

    Example:

    >>> task = ElmanTask(ElmanConfig(length=10), data="builtin:copy")
    >>> task.prepare()
    >>> model = task.build_model()
    """

    name = "elman"
    Config = ElmanConfig

    def __init__(self, config=None, data="builtin", run_dir=None, seed=0):
        super().__init__(config, data=data, run_dir=run_dir, seed=seed)
        source = parse_source(data)
        if source.kind != "builtin" or source.arg not in ("",) + PROBLEMS:
            raise ValueError(
                f"The elman task trains on built-in sequence problems only; received data "
                f"{data!r}; accepted: builtin, builtin:adding, builtin:copy."
            )
        self.problem = source.arg or "adding"
        self.features = 2 if self.problem == "adding" else ALPHABET + 2

    def _generate(self, num_examples, seed):
        if self.problem == "adding":
            return adding_problem(num_examples, self.config.length, seed=seed)
        return copy_task(num_examples, self.config.length, num_symbols=NUM_SYMBOLS,
                         alphabet=ALPHABET, seed=seed)

    def prepare(self):
        c = self.config
        self.splits = {
            "train": self._generate(c.num_examples, self.seed),
            "validation": self._generate(c.num_validation, self.seed + VALIDATION_SEED_OFFSET),
        }

    def train_dataset(self, global_batch_size, input_context=None):
        inputs, targets = self.splits["train"]
        dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
        return self.shuffled_batches(dataset, len(inputs), global_batch_size, input_context)

    def build_model(self):
        c = self.config
        adding = self.problem == "adding"
        model = ElmanNetwork(
            c.units, output_units=1 if adding else ALPHABET, context_units=c.context_units,
            output_activation=None if adding else "softmax", return_sequences=not adding,
            name=f"elman_{self.problem}",
        )
        model(np.zeros((1, 1, self.features), np.float32))
        return model

    def _per_example(self, outputs, targets):
        """Per-example loss and metrics, shared by training and evaluation."""
        if self.problem == "adding":
            squared_error = tf.square(outputs[:, 0] - tf.cast(targets[:, 0], outputs.dtype))
            return squared_error, {"error_ratio": squared_error / ADDING_BASELINE_MSE}
        probabilities = outputs[:, -NUM_SYMBOLS:]
        cross_entropy = keras.losses.sparse_categorical_crossentropy(targets, probabilities)
        correct = tf.cast(tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32),
                                   tf.cast(targets, tf.int32)), tf.float32)
        return tf.reduce_mean(cross_entropy, axis=-1), {
            "symbol_accuracy": tf.reduce_mean(correct, axis=-1)}

    def compute_loss(self, model, batch, training):
        inputs, targets = batch
        return self._per_example(model(inputs, training=training), targets)

    def evaluate(self, model):
        inputs, targets = self.splits["validation"]
        loss, metrics = self._per_example(model(inputs, training=False), targets)
        results = {name: float(tf.reduce_mean(value)) for name, value in metrics.items()}
        if self.problem == "adding":
            results["mse"] = float(tf.reduce_mean(loss))
        else:
            results["error_ratio"] = (1.0 - results["symbol_accuracy"]) / (1.0 - 1.0 / ALPHABET)
        return results

    def export_module(self, model):
        return ElmanServingModule(model, self.problem, self.features, num_symbols=NUM_SYMBOLS)

    def warmup_inputs(self):
        return {"sequences": self._generate(2, seed=0)[0].tolist()}
