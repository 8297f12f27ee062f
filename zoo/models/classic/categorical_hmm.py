"""Hidden Markov model with categorical (discrete symbol) emissions."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from seqzoo.zoo._checks import check_positive_int
from seqzoo.zoo.models.classic._hidden_markov_model import HiddenMarkovModel, _log_probabilities


@keras.saving.register_keras_serializable(package="seqzoo")
class CategoricalHMM(HiddenMarkovModel):
    """A hidden Markov model whose states emit symbols 0..n_features-1.

    hmmlearn's names: `startprob_`, `transmat_`, `emissionprob_` (read as NumPy, set by
    assignment); `score`, `score_samples`, `decode` (log probability, state path), `predict`,
    `predict_proba` and `fit` (Baum–Welch) take concatenated observations [n_samples] or
    [n_samples, 1] with `lengths`. The batched TF methods take padded [B, T] int batches with a
    mask: `call` (log-likelihood [B], differentiable, for gradient training), `viterbi`,
    `posteriors`.

    Args:
        n_components: number of hidden states (positive int).
        n_features: number of distinct symbols (positive int).
        n_iter: maximum Baum–Welch iterations of `fit`.
        tol: `fit` stops when the log-likelihood gains less than this.
        **kwargs: passed on to `keras.Model` (e.g. `dtype="float64"`).

    Call arguments:
        observations: int [B, T], symbols in [0, n_features).
        mask: optional bool [B, T], True on each sequence's valid prefix (right padding).

    Returns:
        log p(observations) per sequence, [B].

    Example:
    >>> hmm = CategoricalHMM(n_components=2, n_features=3)
    >>> hmm.startprob_ = [0.6, 0.4]
    >>> hmm.transmat_ = [[0.7, 0.3], [0.4, 0.6]]
    >>> hmm.emissionprob_ = [[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]]
    >>> log_prob, states = hmm.decode(np.array([[0], [1], [2]]))
    >>> states.shape
    (3,)
    """

    def __init__(self, n_components, n_features, n_iter=10, tol=1e-2, **kwargs):
        super().__init__(n_components, n_iter=n_iter, tol=tol, **kwargs)
        check_positive_int("n_features", n_features)
        self.n_features = n_features
        self.build()

    def _build_emissions(self):
        self.emission_logits = self.add_weight(
            name="emission_logits",
            shape=(self.n_components, self.n_features),
            initializer=keras.initializers.RandomNormal(stddev=0.5),
        )

    def _log_emission(self):
        return tf.nn.log_softmax(tf.cast(self.emission_logits, self.compute_dtype), axis=-1)

    @property
    def emissionprob_(self):
        """p(symbol | state), [n_components, n_features] (NumPy; assignment sets the weight)."""
        return np.exp(self._log_emission().numpy())

    @emissionprob_.setter
    def emissionprob_(self, value):
        shape = (self.n_components, self.n_features)
        self.emission_logits.assign(
            _log_probabilities(value, self.n_features, "emissionprob_", shape)
        )

    def _observations(self, observations):
        observations = tf.convert_to_tensor(observations)
        if observations.shape.rank != 2:
            raise ValueError(
                f"Expected symbols of shape [batch, time]. Received: shape={observations.shape}"
            )
        if not observations.dtype.is_integer:
            raise ValueError(
                f"Expected integer symbols. Received: dtype={observations.dtype.name}"
            )
        return tf.cast(observations, tf.int32)

    def _emission_log_prob(self, observations, mask):
        symbols = tf.where(mask, observations, tf.zeros_like(observations))
        return tf.gather(tf.transpose(self._log_emission()), symbols)

    def _emission_m_step(self, observations, posteriors):
        one_hot = tf.one_hot(observations, self.n_features, dtype=posteriors.dtype)
        counts = tf.einsum("btk,bts->ks", posteriors, one_hot)
        probabilities = counts / tf.maximum(
            tf.reduce_sum(counts, axis=-1, keepdims=True), tf.constant(1e-30, counts.dtype)
        )
        self.emission_logits.assign(
            tf.cast(tf.maximum(tf.math.log(probabilities), -1e4), self.emission_logits.dtype)
        )

    def _numpy_sequence(self, X):
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1 or not np.issubdtype(X.dtype, np.integer):
            raise ValueError(
                f"Expected integer symbols of shape [n_samples] or [n_samples, 1]. "
                f"Received: shape={X.shape}, dtype={X.dtype}"
            )
        if X.size and (X.min() < 0 or X.max() >= self.n_features):
            raise ValueError(
                f"Symbols must lie in [0, {self.n_features}). "
                f"Received: min={X.min()}, max={X.max()}"
            )
        return X.astype(np.int32)

    def get_config(self):
        config = super().get_config()
        config["n_features"] = self.n_features
        return config
