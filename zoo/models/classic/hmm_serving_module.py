"""The serving signatures of hidden Markov models."""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.models.classic.categorical_hmm import CategoricalHMM


class HMMServingModule(tf.Module):
    """Wraps a `CategoricalHMM` or `GaussianHMM`: observations in, Viterbi path and more out.

    Args:
        model: a `CategoricalHMM` or `GaussianHMM`.
        name: optional module name.

    Signatures:
        `serving_default` (also `.serve`): input `observations`, int32 [batch, time] symbols
            (categorical) or float32 [batch, time, n_features] (Gaussian); every sequence
            `time` steps long.
        `with_lengths` (also `.serve_with_lengths`): inputs `observations` and `lengths`, int32
            [batch], the valid length of each right-padded sequence.
        Both output `state_path`, int32 [batch, time], the Viterbi path (-1 at padded steps);
        `path_log_prob`, float32 [batch], log p(observations, path); `log_likelihood`,
        float32 [batch], log p(observations); `posteriors`, float32 [batch, time,
        n_components], p(state_t | observations) (0 at padded steps).

    Example:
    >>> module = HMMServingModule(hmm)
    >>> module.serve(tf.constant([[0, 1, 2]]))["state_path"].shape
    TensorShape([1, 3])
    """

    def __init__(self, model, name=None):
        super().__init__(name=name)
        self.model = model
        if isinstance(model, CategoricalHMM):
            observations = tf.TensorSpec([None, None], tf.int32, name="observations")
        else:
            observations = tf.TensorSpec(
                [None, None, model.n_features], tf.float32, name="observations"
            )
        self.serve = tf.function(self._serve, input_signature=[observations])
        self.serve_with_lengths = tf.function(
            self._serve_with_lengths,
            input_signature=[observations, tf.TensorSpec([None], tf.int32, name="lengths")],
        )

    @property
    def signatures(self):
        """The signatures by name; a property, since SavedModel reserves the attribute."""
        return {"serving_default": self.serve, "with_lengths": self.serve_with_lengths}

    def _outputs(self, observations, mask):
        if observations.dtype.is_floating:
            observations = tf.cast(observations, self.model.compute_dtype)
        else:
            valid = tf.boolean_mask(observations, mask)
            tf.debugging.assert_non_negative(valid, message="symbols must be >= 0")
            tf.debugging.assert_less(
                valid, self.model.n_features,
                message=f"symbols must be < n_features={self.model.n_features}",
            )
        path_log_prob, path = self.model.viterbi(observations, mask)
        return {
            "state_path": path,
            "path_log_prob": tf.cast(path_log_prob, tf.float32),
            "log_likelihood": tf.cast(self.model(observations, mask), tf.float32),
            "posteriors": tf.cast(self.model.posteriors(observations, mask), tf.float32),
        }

    def _serve_with_lengths(self, observations, lengths):
        mask = tf.sequence_mask(lengths, tf.shape(observations)[1])
        return self._outputs(observations, mask)

    def _serve(self, observations):
        return self._outputs(observations, tf.ones(tf.shape(observations)[:2], tf.bool))
