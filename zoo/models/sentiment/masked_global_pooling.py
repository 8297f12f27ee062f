"""Masked mean or max over the time axis."""

from __future__ import annotations

import keras
from keras import ops

MODES = ("mean", "max")


@keras.saving.register_keras_serializable(package="seqzoo")
class MaskedGlobalPooling1D(keras.layers.Layer):
    """Pools a sequence over time, using only the valid (unmasked) steps.

    Unlike `keras.layers.GlobalMaxPooling1D`, the max ignores padded steps even when every
    valid value is negative; a row with no valid step pools to zeros.

    Args:
        mode: `"mean"` (default) or `"max"`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[batch, time, features]`.
        mask: optional boolean tensor `[batch, time]`, `True` at valid steps; None means all
            steps are valid.

    Returns:
        Float tensor `[batch, features]`.

    Example:

    >>> x = np.array([[[1.0], [-3.0], [9.0]]], "float32")
    >>> mask = np.array([[True, True, False]])
    >>> MaskedGlobalPooling1D("max")(x, mask=mask).numpy()
    array([[1.]], dtype=float32)
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"`mode` must be 'mean' or 'max'. Received: mode={mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1) if self.mode == "mean" else ops.max(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
        if self.mode == "mean":
            weights = ops.cast(valid, inputs.dtype)
            count = ops.maximum(ops.sum(weights, axis=1), 1.0)
            return ops.sum(inputs * weights, axis=1) / count
        lowest = ops.full_like(inputs, float("-inf"))
        pooled = ops.max(ops.where(valid, inputs, lowest), axis=1)
        return ops.where(ops.any(valid, axis=1), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config
