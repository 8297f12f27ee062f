"""What every hidden Markov model shares: the chain, log-space inference, Baum–Welch, hmmlearn API.

Subclasses (CategoricalHMM, GaussianHMM) only add their emission distribution: its weights, the
per-state log-density of observations, the M-step of Baum–Welch and the observation checks.
"""

from __future__ import annotations

import abc

import keras
import numpy as np
import tensorflow as tf

from seqzoo.zoo._checks import check_positive_int
from seqzoo.zoo.models.classic._time_major import shifted

# Probabilities are stored as log-probabilities (unnormalised logits, renormalised by a softmax
# on read); exact zeros become this floor so that a zero transition stays representable.
_LOG_FLOOR = -1e4


def _log_probabilities(probabilities, axis_size, name, shape):
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape}. Received: shape={probabilities.shape}")
    if np.any(probabilities < 0) or not np.allclose(probabilities.sum(axis=-1), 1.0, atol=1e-6):
        raise ValueError(
            f"`{name}` must hold probabilities (non-negative, each distribution summing to 1 over "
            f"its last axis of size {axis_size})."
        )
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(probabilities), _LOG_FLOOR)


class HiddenMarkovModel(keras.Model, abc.ABC):
    """A hidden Markov model: a discrete hidden state with stochastic transitions.

    Log-space forward–backward (likelihood and posteriors), Viterbi decoding and Baum–Welch, all
    batched over right-padded sequences of different lengths (`mask` [B, T], True on the valid
    prefix). Parameters are Keras weights (log-probability logits), so `call`, which returns the
    per-sequence log-likelihood, can also be maximised by gradient.
    """

    def __init__(self, n_components, n_iter=10, tol=1e-2, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("n_components", n_components)
        check_positive_int("n_iter", n_iter)
        if tol < 0:
            raise ValueError(f"`tol` must be non-negative. Received: tol={tol}")
        self.supports_masking = True
        self.n_components = n_components
        self.n_iter = n_iter
        self.tol = float(tol)

    def build(self, input_shape=None):
        k = self.n_components
        self.start_logits = self.add_weight(name="start_logits", shape=(k,), initializer="zeros")
        self.transition_logits = self.add_weight(
            name="transition_logits",
            shape=(k, k),
            initializer=keras.initializers.RandomNormal(stddev=0.1),
        )
        self._build_emissions()

    # Emission hooks ----------------------------------------------------------------------------

    @abc.abstractmethod
    def _build_emissions(self):
        """Creates the emission weights."""

    @abc.abstractmethod
    def _observations(self, observations):
        """Converts a batch [B, T(, D)] to a tensor, raising ValueError on bad shapes."""

    @abc.abstractmethod
    def _emission_log_prob(self, observations, mask):
        """log p(y_t | state k), [B, T, K]; padded steps may hold anything finite."""

    @abc.abstractmethod
    def _emission_m_step(self, observations, posteriors):
        """Sets the emission weights that maximise the expected log-likelihood (Baum–Welch)."""

    @abc.abstractmethod
    def _numpy_sequence(self, X):
        """Checks hmmlearn-style concatenated observations [N(, D)] and returns them as NumPy."""

    # Chain parameters under hmmlearn's names ---------------------------------------------------

    def _log_start(self):
        return tf.nn.log_softmax(tf.cast(self.start_logits, self.compute_dtype))

    def _log_transition(self):
        return tf.nn.log_softmax(tf.cast(self.transition_logits, self.compute_dtype), axis=-1)

    @property
    def startprob_(self):
        """Initial state distribution, [n_components] (NumPy; assignment sets the weight)."""
        return np.exp(self._log_start().numpy())

    @startprob_.setter
    def startprob_(self, value):
        k = self.n_components
        self.start_logits.assign(_log_probabilities(value, k, "startprob_", (k,)))

    @property
    def transmat_(self):
        """Transition matrix, row i = p(next state | state i), [n_components, n_components]."""
        return np.exp(self._log_transition().numpy())

    @transmat_.setter
    def transmat_(self, value):
        k = self.n_components
        self.transition_logits.assign(_log_probabilities(value, k, "transmat_", (k, k)))

    # Batched inference -------------------------------------------------------------------------

    def _prepare(self, observations, mask):
        observations = self._observations(observations)
        if mask is None:
            mask = tf.ones(tf.shape(observations)[:2], tf.bool)
        mask = tf.cast(mask, tf.bool)
        return observations, mask, self._emission_log_prob(observations, mask)

    def _forward(self, log_emissions, mask):
        """Log forward variables log p(y_1..t, s_t) [B, T, K] and log-likelihoods [B]."""
        log_start, log_trans = self._log_start(), self._log_transition()
        emissions_tm = tf.transpose(log_emissions, [1, 0, 2])
        mask_tm = tf.transpose(mask)
        first = tf.where(mask_tm[0][:, None], log_start + emissions_tm[0], log_start)

        def step(alpha, elems):
            emission, valid = elems
            new = tf.reduce_logsumexp(alpha[:, :, None] + log_trans, axis=1) + emission
            # Padded steps carry the last valid alpha forward, so the final alpha is every
            # sequence's own last step.
            return tf.where(valid[:, None], new, alpha)

        # Scans run over all T steps, never over none: TensorFlow cannot stack the outputs of
        # an empty scan whose batch size is unknown (a one-step sequence). Step 0, marked
        # padded here, leaves `first` as it is.
        alphas = tf.scan(step, (emissions_tm, _after_first(mask_tm)), initializer=first)
        alphas = tf.transpose(alphas, [1, 0, 2])
        return alphas, tf.reduce_logsumexp(alphas[:, -1], axis=-1)

    def _backward(self, log_emissions, mask):
        """Log backward variables log p(y_t+1..T | s_t) [B, T, K] (0 on and after the end)."""
        log_trans = self._log_transition()
        emissions_tm = tf.transpose(log_emissions, [1, 0, 2])
        mask_tm = tf.transpose(mask)
        last = tf.zeros_like(emissions_tm[0])

        def step(beta_next, elems):
            emission_next, valid_next = elems
            new = tf.reduce_logsumexp(log_trans + (emission_next + beta_next)[:, None, :], axis=2)
            return tf.where(valid_next[:, None], new, tf.zeros_like(new))

        # Each step sees the next step's emission; the last sees a padded one, giving `last`.
        betas = tf.scan(step, (shifted(emissions_tm, tf.zeros_like(last)),
                               shifted(mask_tm, tf.zeros_like(mask_tm[0]))),
                        initializer=last, reverse=True)
        return tf.transpose(betas, [1, 0, 2])

    def call(self, observations, mask=None):
        _, mask, log_emissions = self._prepare(observations, mask)
        return self._forward(log_emissions, mask)[1]

    def compute_mask(self, inputs, mask=None):
        # The mask is consumed: the output is one log-likelihood per sequence.
        return None

    def posteriors(self, observations, mask=None):
        """p(s_t = k | y_1..T), [B, T, K]; zeros at padded steps."""
        _, mask, log_emissions = self._prepare(observations, mask)
        alphas, log_lik = self._forward(log_emissions, mask)
        betas = self._backward(log_emissions, mask)
        gamma = tf.exp(alphas + betas - log_lik[:, None, None])
        return tf.where(mask[..., None], gamma, tf.zeros_like(gamma))

    def viterbi(self, observations, mask=None):
        """Most probable state path and its joint log-probability log p(y, path).

        Returns:
            (log_prob [B], path [B, T] int32 with -1 at padded steps).
        """
        _, mask, log_emissions = self._prepare(observations, mask)
        log_start, log_trans = self._log_start(), self._log_transition()
        emissions_tm = tf.transpose(log_emissions, [1, 0, 2])
        mask_tm = tf.transpose(mask)
        k = self.n_components
        first = log_start + emissions_tm[0]
        identity = tf.range(k, dtype=tf.int32)

        def step(carry, elems):
            delta = carry[0]
            emission, valid = elems
            scores = delta[:, :, None] + log_trans
            pointers = tf.argmax(scores, axis=1, output_type=tf.int32)
            new = tf.reduce_max(scores, axis=1) + emission
            pointers = tf.where(valid[:, None], pointers, identity[None, :])
            return tf.where(valid[:, None], new, delta), pointers

        keep = tf.zeros_like(first, dtype=tf.int32) + identity
        # All T steps, step 0 marked padded (see `_forward`): pointers[t] maps a state at t to
        # the best one at t - 1, pointers[0] is the identity.
        deltas, pointers = tf.scan(step, (emissions_tm, _after_first(mask_tm)),
                                   initializer=(first, keep))
        final = deltas[-1]
        best_last = tf.argmax(final, axis=-1, output_type=tf.int32)

        def back(state, pointer):
            return tf.gather(pointer, state, batch_dims=1)

        # Step t follows the pointers of step t + 1 back; the last step keeps `best_last`.
        path = tf.transpose(tf.scan(back, shifted(pointers, keep), initializer=best_last,
                                    reverse=True))
        path = tf.where(mask, path, -tf.ones_like(path))
        return tf.reduce_max(final, axis=-1), path

    def _e_step(self, observations, mask):
        """Posteriors [B, T, K], expected transition counts [K, K] and log-likelihoods [B]."""
        observations, mask, log_emissions = self._prepare(observations, mask)
        alphas, log_lik = self._forward(log_emissions, mask)
        betas = self._backward(log_emissions, mask)
        gamma = tf.exp(alphas + betas - log_lik[:, None, None])
        gamma = tf.where(mask[..., None], gamma, tf.zeros_like(gamma))
        log_xi = (
            alphas[:, :-1, :, None]
            + self._log_transition()
            + (log_emissions[:, 1:] + betas[:, 1:])[:, :, None, :]
            - log_lik[:, None, None, None]
        )
        xi = tf.where(mask[:, 1:, None, None], tf.exp(log_xi), tf.zeros_like(log_xi))
        return gamma, tf.reduce_sum(xi, axis=[0, 1]), log_lik

    def _baum_welch_step(self, observations, mask):
        """One Baum–Welch iteration; returns the log-likelihoods [B] before the update."""
        gamma, transitions, log_lik = self._e_step(observations, mask)
        start = tf.reduce_mean(gamma[:, 0], axis=0)
        transmat = transitions / tf.maximum(
            tf.reduce_sum(transitions, axis=-1, keepdims=True),
            tf.constant(1e-30, transitions.dtype),
        )
        floor = tf.constant(_LOG_FLOOR, start.dtype)
        self.start_logits.assign(
            tf.cast(tf.maximum(tf.math.log(start), floor), self.start_logits.dtype)
        )
        self.transition_logits.assign(
            tf.cast(tf.maximum(tf.math.log(transmat), floor), self.transition_logits.dtype)
        )
        self._emission_m_step(self._observations(observations), gamma)
        return log_lik

    # hmmlearn-style NumPy methods over concatenated sequences with `lengths` -------------------

    def _pad(self, X, lengths):
        X = self._numpy_sequence(X)
        lengths = [len(X)] if lengths is None else [int(n) for n in lengths]
        if any(n < 1 for n in lengths) or sum(lengths) != len(X):
            raise ValueError(
                f"`lengths` must be positive and sum to the number of samples ({len(X)}). "
                f"Received: lengths={lengths}"
            )
        padded = np.zeros((len(lengths), max(lengths)) + X.shape[1:], X.dtype)
        mask = np.zeros((len(lengths), max(lengths)), bool)
        for i, (start, n) in enumerate(zip(np.cumsum([0] + lengths[:-1]), lengths)):
            padded[i, :n] = X[start : start + n]
            mask[i, :n] = True
        return padded, mask

    def score(self, X, lengths=None):
        """Total log-likelihood of the sequences (hmmlearn's `score`)."""
        padded, mask = self._pad(X, lengths)
        return float(tf.reduce_sum(self(padded, mask)))

    def score_samples(self, X, lengths=None):
        """(total log-likelihood, posteriors [n_samples, K]) (hmmlearn's `score_samples`)."""
        return self.score(X, lengths), self.predict_proba(X, lengths)

    def predict_proba(self, X, lengths=None):
        """Posterior state probabilities of each sample, [n_samples, n_components]."""
        padded, mask = self._pad(X, lengths)
        return self.posteriors(padded, mask).numpy()[mask]

    def decode(self, X, lengths=None):
        """(log p(X, best paths), best state sequence [n_samples]) by Viterbi (hmmlearn's)."""
        padded, mask = self._pad(X, lengths)
        log_prob, path = self.viterbi(padded, mask)
        return float(tf.reduce_sum(log_prob)), path.numpy()[mask]

    def predict(self, X, lengths=None):
        """Most probable state sequence [n_samples] (Viterbi)."""
        return self.decode(X, lengths)[1]

    def fit(self, X, lengths=None):
        """Baum–Welch (EM) from the current parameters, for up to `n_iter` iterations.

        Stops early when the log-likelihood improves by less than `tol`. The log-likelihood
        before each iteration is kept in `self.log_likelihoods_` (EM never decreases it).

        Returns:
            self.
        """
        padded, mask = self._pad(X, lengths)
        observations, mask = self._observations(padded), tf.constant(mask)
        step = tf.function(self._baum_welch_step)
        self.log_likelihoods_ = []
        for _ in range(self.n_iter):
            self.log_likelihoods_.append(float(tf.reduce_sum(step(observations, mask))))
            if len(self.log_likelihoods_) > 1 and (
                self.log_likelihoods_[-1] - self.log_likelihoods_[-2] < self.tol
            ):
                break
        return self

    def get_config(self):
        config = super().get_config()
        config.update({"n_components": self.n_components, "n_iter": self.n_iter, "tol": self.tol})
        return config


def _after_first(mask_tm):
    """A time-major mask `[T, B]` with step 0 marked padded."""
    return tf.concat([tf.zeros_like(mask_tm[:1]), mask_tm[1:]], axis=0)
