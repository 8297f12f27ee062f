"""Helpers for the classic models' scans over time-major tensors `[time, batch, ...]`."""

from __future__ import annotations

import tensorflow as tf


def shifted(values_tm, fill):
    """Time-major `values_tm` one step earlier: step t holds step t + 1's values, the last step
    `fill` (one step's worth). A reverse scan over all T steps then sees each step's successor,
    where a scan over the T - 1 steps before the last would be empty for a one-step sequence
    (TensorFlow cannot stack an empty scan's outputs when the batch size is unknown)."""
    return tf.concat([values_tm[1:], fill[None]], axis=0)
