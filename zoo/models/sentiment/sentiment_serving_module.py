"""The serving signature of sentiment classifiers."""

from __future__ import annotations

import tensorflow as tf


class SentimentServingModule(tf.Module):
    """Wraps a `SentimentClassifier` in the signatures it is exported with.

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

    Signature `classification` (also `.classify`), the shape of TF Serving's Classify API:
        inputs: `inputs`, string tensor `[batch]` of serialized `tf.Example`s, each with a
            bytes feature `text`.
        outputs: `classes`, string tensor `[batch, num_classes]`, the class names;
            `scores`, float32 tensor `[batch, num_classes]`, their probabilities.

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
        self.classify = tf.function(
            self._classify, input_signature=[tf.TensorSpec([None], tf.string, name="inputs")]
        )

    @property
    def signatures(self):
        """The signatures by name; a property, since SavedModel reserves the attribute."""
        return {"serving_default": self.serve, "classification": self.classify}

    def _serve(self, text):
        probabilities = tf.cast(self.model(text, training=False), tf.float32)
        label = tf.gather(self.class_names, tf.argmax(probabilities, axis=-1))
        return {"label": label, "probabilities": probabilities}

    def _classify(self, inputs):
        text = tf.io.parse_example(inputs, {"text": tf.io.FixedLenFeature([], tf.string)})["text"]
        scores = tf.cast(self.model(text, training=False), tf.float32)
        classes = tf.tile(self.class_names[None, :], [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}
