"""A tiny classification Task for the export tests: 3 numbers in, a class name and probabilities out.

The class is "pos" when x0 + x1 - x2 > 0, learned by one softmax layer; its serving signature
returns strings (like the zoo's families) and a second signature returns the logits.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from seqzoo.training.tasks.base import Task

CLASSES = ("neg", "pos")
WARMUP = [[1.0, 2.0, 0.5], [-1.0, 0.0, 2.0], [0.0, 0.0, 0.0]]


def make_data(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(count, 3)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] - x[:, 2] > 0).astype(np.int32)


class ServingToyTask(Task):
    name = "serving_toy"

    @dataclasses.dataclass
    class Config:
        examples: int = 256

    def prepare(self) -> None:
        self.x, self.y = make_data(self.seed, self.config.examples)

    def train_dataset(self, global_batch_size, input_context=None):
        batch_size = global_batch_size
        dataset = tf.data.Dataset.from_tensor_slices((self.x, self.y))
        if input_context is not None:
            batch_size = input_context.get_per_replica_batch_size(global_batch_size)
            dataset = dataset.shard(input_context.num_input_pipelines,
                                    input_context.input_pipeline_id)
        return dataset.repeat().batch(batch_size, drop_remainder=True)

    def build_model(self) -> keras.Model:
        inputs = keras.Input((3,))
        return keras.Model(inputs, keras.layers.Dense(len(CLASSES))(inputs))

    def compute_loss(self, model, batch, training):
        x, y = batch
        logits = model(x, training=training)
        loss = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32)
        return loss, {"accuracy": correct}

    def evaluate(self, model):
        x, y = make_data(self.seed + 1, 128)
        return {"accuracy": float(np.mean(np.argmax(model(x), -1) == y))}

    def export_module(self, model):
        module = tf.Module()
        module.model = model
        classes = tf.constant(CLASSES)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def classify(x):
            probabilities = tf.nn.softmax(model(x), axis=-1)
            return {"label": tf.gather(classes, tf.argmax(probabilities, -1)),
                    "probabilities": probabilities}

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def logits(x):
            return {"logits": model(x)}

        module.signatures = {"serving_default": classify, "logits": logits}
        return module

    def warmup_inputs(self):
        return {"x": WARMUP}
