"""Hidden Markov model with Gaussian (diagonal covariance) emissions."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from seqzoo.zoo._checks import check_positive_int
from seqzoo.zoo.models.classic._hidden_markov_model import HiddenMarkovModel


@keras.saving.register_keras_serializable(package="seqzoo")
class GaussianHMM(HiddenMarkovModel):
    """A hidden Markov model whose states emit real vectors from diagonal Gaussians.

    hmmlearn's names: `startprob_`, `transmat_`, `means_` [K, D] and `covars_` (read as
    [K, D, D] diagonal matrices as hmmlearn returns them; set from the [K, D] variances, the
    "diag" form); `score`, `score_samples`, `decode`, `predict`, `predict_proba`, `fit`
    (Baum–Welch) on concatenated observations [n_samples, D] with `lengths`. Batched TF methods:
    `call` (log-likelihood [B], differentiable), `viterbi`, `posteriors`, on padded [B, T, D]
    batches with a mask. Only diagonal covariances are implemented.

    Observations must be finite: there is no missing-data handling, so the NumPy methods raise
    a ValueError naming the first NaN or inf (as hmmlearn does) instead of returning nan scores
    or writing nan into the parameters. Drop such samples, or end a sequence there with
    `lengths`.

    Where it differs from hmmlearn's `GaussianHMM(covariance_type="diag")`: it computes in the
    Keras dtype, float32 by default (hmmlearn: float64; pass `dtype="float64"` for its
    precision); `fit` starts from the current parameters (hmmlearn initialises them from the
    data, k-means for the means); and `min_covar` floors the variances after every Baum–Welch
    step, where hmmlearn adds it to the covariances it initialises and regularises its updates
    with `covars_prior` instead. So fits on the same data can differ slightly.

    Args:
        n_components: number of hidden states (positive int).
        n_features: dimension D of an observation (positive int).
        min_covar: floor on the variances, applied after every Baum–Welch step (positive
            float).
        n_iter: maximum Baum–Welch iterations of `fit`.
        tol: `fit` stops when the log-likelihood gains less than this.
        **kwargs: passed on to `keras.Model`.

    Call arguments:
        observations: float [B, T, D].
        mask: optional bool [B, T], True on each sequence's valid prefix (right padding).

    Returns:
        log p(observations) per sequence, [B].

    Example:
    >>> hmm = GaussianHMM(n_components=2, n_features=1)
    >>> hmm.means_ = [[-1.0], [1.0]]
    >>> hmm.covars_ = [[0.5], [0.5]]
    >>> hmm.predict(np.array([[-1.2], [0.9], [1.1]])).shape
    (3,)
    """

    def __init__(self, n_components, n_features=1, min_covar=1e-3, n_iter=10, tol=1e-2, **kwargs):
        super().__init__(n_components, n_iter=n_iter, tol=tol, **kwargs)
        check_positive_int("n_features", n_features)
        if not min_covar > 0:
            raise ValueError(f"`min_covar` must be positive. Received: min_covar={min_covar}")
        self.n_features = n_features
        self.min_covar = float(min_covar)
        self.build()

    def _build_emissions(self):
        shape = (self.n_components, self.n_features)
        self.means = self.add_weight(
            name="means", shape=shape, initializer=keras.initializers.RandomNormal(stddev=1.0)
        )
        self.log_variances = self.add_weight(name="log_variances", shape=shape, initializer="zeros")

    @property
    def means_(self):
        """Mean of each state's emissions, [n_components, n_features]."""
        return self.means.numpy().astype(np.float64)

    @means_.setter
    def means_(self, value):
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (self.n_components, self.n_features):
            raise ValueError(
                f"`means_` must have shape {(self.n_components, self.n_features)}. "
                f"Received: shape={value.shape}"
            )
        self.means.assign(value)

    @property
    def covars_(self):
        """Covariance of each state, [n_components, n_features, n_features] (diagonal)."""
        variances = np.exp(self.log_variances.numpy().astype(np.float64))
        return variances[:, :, None] * np.eye(self.n_features)

    @covars_.setter
    def covars_(self, value):
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (self.n_components, self.n_features) or np.any(value <= 0):
            raise ValueError(
                f"`covars_` takes the positive variances, shape "
                f"{(self.n_components, self.n_features)} (diagonal covariances). "
                f"Received: shape={value.shape}"
            )
        self.log_variances.assign(np.log(value))

    def _observations(self, observations):
        observations = tf.convert_to_tensor(observations, dtype=self.compute_dtype)
        if observations.shape.rank != 3 or observations.shape[-1] != self.n_features:
            raise ValueError(
                f"Expected observations of shape [batch, time, {self.n_features}]. "
                f"Received: shape={observations.shape}"
            )
        return observations

    def _emission_log_prob(self, observations, mask):
        values = tf.where(mask[..., None], observations, tf.zeros_like(observations))
        means = tf.cast(self.means, self.compute_dtype)
        log_var = tf.cast(self.log_variances, self.compute_dtype)
        squared = (values[:, :, None, :] - means) ** 2 / tf.exp(log_var)
        return -0.5 * tf.reduce_sum(squared + log_var + math.log(2.0 * math.pi), axis=-1)

    def _emission_m_step(self, observations, posteriors):
        weight = tf.reduce_sum(posteriors, axis=[0, 1])[:, None]
        weight = tf.maximum(weight, tf.constant(1e-30, weight.dtype))
        means = tf.einsum("btk,btd->kd", posteriors, observations) / weight
        spread = tf.einsum(
            "btk,btkd->kd", posteriors, (observations[:, :, None, :] - means) ** 2
        ) / weight
        variances = tf.maximum(spread, tf.constant(self.min_covar, spread.dtype))
        self.means.assign(tf.cast(means, self.means.dtype))
        self.log_variances.assign(tf.cast(tf.math.log(variances), self.log_variances.dtype))

    def _numpy_sequence(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1 and self.n_features == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"Expected observations of shape [n_samples, {self.n_features}]. "
                f"Received: shape={X.shape}"
            )
        bad = np.flatnonzero(~np.all(np.isfinite(X), axis=1))
        if bad.size:
            raise ValueError(
                f"Observations must be finite; sample {bad[0]} holds {X[bad[0]].tolist()} "
                f"({bad.size} of {len(X)} samples hold NaN or inf). GaussianHMM has no missing "
                "values: drop those samples, or end a sequence there with `lengths`."
            )
        return X

    def get_config(self):
        config = super().get_config()
        config.update({"n_features": self.n_features, "min_covar": self.min_covar})
        return config
