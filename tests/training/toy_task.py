"""A tiny linear-regression Task for the training loop's tests.

y = x . w_true + b_true + noise, learned by one Dense unit (optionally L2-regularised). Register it
with `register()` in-process, or in a subprocess by putting tests/training on PYTHONPATH and
calling `toy_task.register()` before the CLI (see `cli_command`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading

import keras
import numpy as np
import tensorflow as tf

from seqzoo.training.tasks.base import Task

TRUE_WEIGHTS = np.array([1.5, -2.0, 0.5], dtype=np.float32)
TRUE_BIAS = 0.25


def make_data(seed: int, count: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, TRUE_WEIGHTS.size)).astype(np.float32)
    y = x @ TRUE_WEIGHTS + TRUE_BIAS + noise * rng.normal(size=count).astype(np.float32)
    return x, y.astype(np.float32)


class ToyTask(Task):
    """Linear regression; per-example loss is the squared error, metric the absolute error."""

    name = "toy"

    @dataclasses.dataclass
    class Config:
        l2: float = 0.0
        noise: float = 0.1
        examples: int = 256
        nan_after_batches: int = -1  # per-replica batches with finite targets; -1: never NaN
        # evaluate() writes the weights here (multi-worker tests), "{task}" replaced by the
        # worker's index in TF_CONFIG, so that all workers of a run share the setting.
        weights_file: str = ""
        # evaluate() repeats its validation pass this many times: an evaluation long enough to
        # be interrupted; on worker `slow_evaluation_worker` (index in TF_CONFIG) it first
        # computes for `slow_evaluation_seconds` in one TensorFlow call.
        evaluation_passes: int = 1
        slow_evaluation_worker: int = -1
        slow_evaluation_seconds: float = 0.0
        # The worker (index in TF_CONFIG) whose input pipeline hangs after this many batches,
        # as one stuck reading its data does; -1: none. With `stall_after_evaluations` >= 0,
        # its evaluation hangs instead, after that many evaluations.
        stall_worker: int = -1
        stall_after_batches: int = 0
        stall_after_evaluations: int = -1

    def prepare(self) -> None:
        self.x, self.y = make_data(self.seed, self.config.examples, self.config.noise)
        self.x_val, self.y_val = make_data(self.seed + 1, 64, 0.0)
        self.evaluations = 0

    def train_dataset(self, global_batch_size, input_context=None):
        batch_size = global_batch_size
        dataset = tf.data.Dataset.from_tensor_slices((self.x, self.y))
        if input_context is not None:
            batch_size = input_context.get_per_replica_batch_size(global_batch_size)
            dataset = dataset.shard(input_context.num_input_pipelines,
                                    input_context.input_pipeline_id)
        dataset = dataset.repeat().batch(batch_size, drop_remainder=True)
        if self.config.nan_after_batches >= 0:
            limit = self.config.nan_after_batches
            dataset = dataset.enumerate().map(
                lambda i, xy: (xy[0], tf.where(i >= limit, np.float32("nan"), xy[1]))
            )
        if self.config.stall_worker == _task_index() and self.config.stall_after_evaluations < 0:
            limit = self.config.stall_after_batches

            def stall(index):
                if index >= limit:
                    threading.Event().wait()
                return index

            dataset = dataset.enumerate().map(
                lambda i, xy: tf.nest.map_structure(
                    lambda t: _after(tf.py_function(stall, [i], tf.int64), t), xy))
        return dataset

    def build_model(self) -> keras.Model:
        regularizer = keras.regularizers.L2(self.config.l2) if self.config.l2 else None
        inputs = keras.Input((TRUE_WEIGHTS.size,))
        outputs = keras.layers.Dense(1, kernel_regularizer=regularizer)(inputs)
        return keras.Model(inputs, outputs)

    def compute_loss(self, model, batch, training):
        x, y = batch
        error = model(x, training=training)[:, 0] - y
        return tf.square(error), {"mae": tf.abs(error)}

    def evaluate(self, model):
        if self.config.weights_file:
            np.savez(self.config.weights_file.replace("{task}", str(_task_index())),
                     *model.get_weights())
        if self.config.stall_worker == _task_index():
            self.evaluations += 1
            if self.evaluations > self.config.stall_after_evaluations >= 0:
                threading.Event().wait()
        if self.config.slow_evaluation_worker == _task_index():
            # One long TensorFlow call, as a compiled beam search may be: the main thread waits
            # in it using no CPU time while TensorFlow's threads compute.
            _compute_for(tf.constant(self.config.slow_evaluation_seconds, tf.float64))
        for _ in range(self.config.evaluation_passes):
            error = np.asarray(model(self.x_val))[:, 0] - self.y_val
        return {"mse": float(np.mean(error**2))}

    def export_module(self, model):
        module = tf.Module()
        module.model = model
        module.signatures = {
            "serving_default": tf.function(
                lambda x: {"y": model(x)[:, 0]},
                input_signature=[tf.TensorSpec([None, TRUE_WEIGHTS.size], tf.float32)],
            )
        }
        return module


@tf.function
def _compute_for(seconds):
    """Computes (matrix products) for `seconds`, in one call."""
    end = tf.timestamp() + seconds
    square = tf.ones([64, 64])
    return tf.while_loop(lambda total: tf.timestamp() < end,
                         lambda total: total + tf.reduce_sum(tf.matmul(square, square)), [0.0])


def _task_index() -> int:
    """This worker's index in TF_CONFIG (0 outside a cluster)."""
    return json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {}).get("index", 0)


def _after(dependency, tensor):
    with tf.control_dependencies([dependency]):
        return tf.identity(tensor)


def register() -> None:
    """Adds "toy" to the task registry of this process (tests use monkeypatch instead)."""
    from seqzoo.training import tasks

    tasks.TASKS["toy"] = "toy_task:ToyTask"


def cli_command(*args: str) -> list[str]:
    """argv running `seqzoo train toy ARGS...` in a subprocess with the toy task registered."""
    # Only the train command is loaded, so the test does not depend on the other commands.
    code = (
        "import sys, toy_task; toy_task.register(); from seqzoo.serving import cli; "
        "cli.COMMANDS = ('train',); sys.exit(cli.main(sys.argv[1:]))"
    )
    return [sys.executable, "-c", code, "train", "toy", *args]
