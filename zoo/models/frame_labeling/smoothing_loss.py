"""MS-TCN's smoothing loss: a truncated mean squared error between neighbouring frames'
log-probabilities, which discourages labels that flicker between frames."""

from __future__ import annotations

import tensorflow as tf


def truncated_mse_smoothing(logits, mask=None, tau=4.0):
    """The smoothing loss of each video, as MS-TCN (Farha and Gall, CVPR 2019) defines it.

    For every pair of neighbouring valid frames (t - 1, t) and every class c, the squared
    difference of log-probabilities `(log p_t[c] - log p_{t-1}[c])^2` is truncated at `tau^2`,
    then averaged over classes and pairs. As in MS-TCN, frame t - 1 is a fixed target (no
    gradient flows into it), and the truncation keeps sharp, real action changes from being
    penalised more than `tau^2`. MS-TCN weights this loss by 0.15 with `tau = 4`.

    Args:
        logits: float tensor `[batch, time, classes]`.
        mask: optional boolean tensor `[batch, time]`, True at valid frames (right padded).
        tau: positive float, the truncation of the absolute log-probability difference.

    Returns:
        float32 tensor `[batch]`; 0 for a video with fewer than two valid frames.

    Example:

    >>> logits = tf.constant([[[0.0, 0.0], [2.0, 0.0], [2.0, 0.0]]])
    >>> truncated_mse_smoothing(logits).numpy()  # one change (t=1), one pair unchanged
    array([0.5...], dtype=float32)
    """
    if tau <= 0:
        raise ValueError(f"`tau` must be positive. Received: tau={tau}")
    log_probabilities = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    difference = log_probabilities[:, 1:] - tf.stop_gradient(log_probabilities[:, :-1])
    per_pair = tf.reduce_mean(tf.minimum(tf.square(difference), float(tau) ** 2), axis=-1)
    if mask is None:
        pairs = tf.ones_like(per_pair)
    else:
        mask = tf.cast(mask, tf.bool)
        pairs = tf.cast(tf.logical_and(mask[:, 1:], mask[:, :-1]), tf.float32)
    return tf.reduce_sum(per_pair * pairs, axis=1) / tf.maximum(tf.reduce_sum(pairs, axis=1), 1.0)
