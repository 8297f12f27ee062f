"""A tiny SavedModel with three signatures, built without the zoo.

Signatures of version v (scale = v + 1):
- serving_default(text: string [None]) -> label ("long" if more than 3 bytes else "short"),
  length (int32 byte count)
- affine(x: float32 [None, 3], k: int32 [None]) -> y = x * scale + k  (one output)
- echo(data: string [None]) -> data_bytes (the input bytes), upper (upper-cased text)
"""

import numpy as np
import tensorflow as tf


class ToyModule(tf.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = tf.Variable(scale, dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def classify(self, text):
        length = tf.strings.length(text)
        return {"label": tf.where(length > 3, "long", "short"), "length": length}

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x"),
                                  tf.TensorSpec([None], tf.int32, name="k")])
    def affine(self, x, k):
        return {"y": x * self.scale + tf.cast(k, tf.float32)[:, None]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data")])
    def echo(self, data):
        return {"data_bytes": data, "upper": tf.strings.upper(data)}

    @property
    def signatures(self):
        return {"serving_default": self.classify, "affine": self.affine, "echo": self.echo}


def save_toy(path, version: int):
    module = ToyModule(float(version + 1))
    tf.saved_model.save(module, str(path), signatures=module.signatures)


def reference_affine(x, k, version):
    """NumPy re-implementation of the affine signature."""
    return np.asarray(x, np.float32) * (version + 1) + np.asarray(k, np.float32)[:, None]
