"""The loss and training metrics of models that write token sequences under teacher forcing."""

from __future__ import annotations

import keras
import tensorflow as tf

from seqzoo.zoo.models.translation.translation_tokenizer import PAD_ID


def token_loss(logits, targets):
    """Per-example mean cross-entropy over the valid (non-padding) target tokens.

    Args:
        logits: `[batch, time, vocab]`.
        targets: int ids `[batch, time]`, padding `PAD_ID` (ignored); every row has at least
            one valid token (the end token).

    Returns:
        `(per_example_loss [batch], metrics)`: `metrics` holds `token_accuracy` (the share of
        valid tokens predicted right) and `teacher_forced_exact` (1 where every one is), both
        `[batch]`, as `Task.compute_loss` returns them.
    """
    valid = tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)
    tokens = tf.reduce_sum(valid, axis=1)
    losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), targets),
                      tf.float32) * valid
    return tf.reduce_sum(losses * valid, axis=1) / tokens, {
        "token_accuracy": tf.reduce_sum(correct, axis=1) / tokens,
        "teacher_forced_exact": tf.cast(tf.equal(tf.reduce_sum(correct, axis=1), tokens),
                                        tf.float32),
    }
