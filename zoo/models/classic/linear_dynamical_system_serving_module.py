"""The serving signatures of linear dynamical systems."""

from __future__ import annotations

import tensorflow as tf


class LinearDynamicalSystemServingModule(tf.Module):
    """Wraps a `LinearDynamicalSystem`: observations in, filtered and smoothed states out.

    Args:
        model: a `LinearDynamicalSystem`.
        name: optional module name.

    Signatures:
        `serving_default` (also `.serve`): input `observations`, float32 [batch, time, n_dim_obs];
            NaN entries mark a missing observation (JSON clients use the `masked` signature).
        `masked` (also `.serve_masked`): inputs `observations` as above and `mask`, bool
            [batch, time], True where observed (masked steps skip the Kalman update).
        `with_lengths` (also `.serve_with_lengths`): inputs `observations` as above and
            `lengths`, int32 [batch], the valid length of each right-padded sequence: steps
            past it are neither observed nor answered (their outputs are 0), so a request
            padded to a longer one's length (TF Serving's `pad_variable_length_inputs`)
            answers as it would alone.
        All output float32 `filtered_state_means` [batch, time, n_dim_state],
        `filtered_state_covariances` [batch, time, n, n], `smoothed_state_means`,
        `smoothed_state_covariances` (Rauch–Tung–Striebel) and `log_likelihood` [batch].

    Example:
    >>> module = LinearDynamicalSystemServingModule(lds)
    >>> module.serve(tf.zeros([1, 10, lds.n_dim_obs]))["log_likelihood"].shape
    TensorShape([1])
    """

    OUTPUTS = ("filtered_state_means", "filtered_state_covariances", "smoothed_state_means",
               "smoothed_state_covariances", "log_likelihood")

    def __init__(self, model, name=None):
        super().__init__(name=name)
        self.model = model
        observations = tf.TensorSpec([None, None, model.n_dim_obs], tf.float32, name="observations")
        self.serve = tf.function(self._serve, input_signature=[observations])
        self.serve_masked = tf.function(
            self._serve_masked,
            input_signature=[observations, tf.TensorSpec([None, None], tf.bool, name="mask")],
        )
        self.serve_with_lengths = tf.function(
            self._serve_with_lengths,
            input_signature=[observations, tf.TensorSpec([None], tf.int32, name="lengths")],
        )

    @property
    def signatures(self):
        """The signatures by name; a property, since SavedModel reserves the attribute."""
        return {"serving_default": self.serve, "masked": self.serve_masked,
                "with_lengths": self.serve_with_lengths}

    def _serve_masked(self, observations, mask):
        result = self.model.filter_and_smooth(tf.cast(observations, self.model.compute_dtype), mask)
        return {key: tf.cast(result[key], tf.float32) for key in self.OUTPUTS}

    def _serve_with_lengths(self, observations, lengths):
        valid = tf.sequence_mask(lengths, tf.shape(observations)[1])
        result = self._serve_masked(observations, valid)
        for key in self.OUTPUTS:
            value = result[key]
            if value.shape.rank > 1:  # per step: [batch, time, ...]
                steps = valid[(...,) + (tf.newaxis,) * (value.shape.rank - 2)]
                result[key] = tf.where(steps, value, tf.zeros_like(value))
        return result

    def _serve(self, observations):
        return self._serve_masked(observations, tf.ones(tf.shape(observations)[:2], tf.bool))
