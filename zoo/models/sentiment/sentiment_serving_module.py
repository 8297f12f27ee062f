"""The serving signature of sentiment classifiers."""

from __future__ import annotations

import tensorflow as tf


class SentimentServingModule(tf.Module):
    """Wraps a `SentimentClassifier` in the `serving_default` signature it is exported with.

    The encoder traces without cuDNN while a SavedModel is written (see
    `seqzoo.zoo.layers.portable_rnn`), so an export made on a GPU machine also serves on CPU.

    Args:
        model: a `SentimentClassifier` (any Keras model mapping a `[batch]` string tensor to
            `[batch, num_classes]` probabilities, with a `class_names` list, works).
        name: optional module name.

    Signature `serving_default` (also `.serve`):
        inputs: `text`, string tensor `[batch]` of raw texts.
        outputs: `label`, string tensor `[batch]`, the most probable class name;
            `probabilities`, float32 tensor `[batch, num_classes]`.

    Example:

    >>> module = SentimentServingModule(model)
    >>> tf.saved_model.save(module, "export/1", signatures=module.signatures)
    >>> module.serve(tf.constant(["not bad at all"]))["label"].numpy()
    array([b'positive'], dtype=object)
    """

    def __init__(self, model, name=None):
        super().__init__(name=name)
        self.model = model
        self.class_names = tf.constant(list(model.class_names), dtype=tf.string)
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec([None], tf.string, name="text")]
        )

    @property
    def signatures(self):
        """`{"serving_default": self.serve}`; a property, since SavedModel reserves the attribute."""
        return {"serving_default": self.serve}

    def _serve(self, text):
        probabilities = tf.cast(self.model(text, training=False), tf.float32)
        label = tf.gather(self.class_names, tf.argmax(probabilities, axis=-1))
        return {"label": label, "probabilities": probabilities}
