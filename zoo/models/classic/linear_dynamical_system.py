"""Linear dynamical system (linear-Gaussian state space model) with Kalman filtering."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from seqzoo.zoo._checks import check_positive_int
from seqzoo.zoo.models.classic._time_major import shifted

# Covariances are parameterised as L L^T + _JITTER * I with L lower triangular, so gradient steps
# can never leave the positive definite cone.
_JITTER = 1e-6

_MATRICES = ("transition_matrices", "observation_matrices")
_COVARIANCES = ("transition_covariance", "observation_covariance", "initial_state_covariance")
EM_VARS = _MATRICES + _COVARIANCES + ("initial_state_mean",)


def _batch_matmul_t(vectors, matrix):
    """Rows of `vectors` [..., k] times matrix^T: the column-vector product matrix @ v, batched."""
    return tf.einsum("...k,jk->...j", vectors, matrix)


def _symmetrize(matrix):
    return 0.5 * (matrix + tf.linalg.matrix_transpose(matrix))


def _pykalman_property(key, doc):
    return property(
        lambda self: self._tensor(key).numpy(),
        lambda self, value: self._set_param(key, value),
        doc=doc + " NumPy on read; assignment sets the weight.",
    )


@keras.saving.register_keras_serializable(package="seqzoo")
class LinearDynamicalSystem(keras.Model):
    """A linear dynamical system, with a batched Kalman filter, RTS smoother and EM.

    The generative model, with pykalman's parameter names:
        x_0 ~ N(initial_state_mean, initial_state_covariance)
        x_t = transition_matrices @ x_{t-1} + N(0, transition_covariance)
        y_t = observation_matrices @ x_t + N(0, observation_covariance)
    The hidden state x_t is real-valued and never observed; the Kalman filter infers it from the
    observations so far, the Rauch–Tung–Striebel smoother from the whole sequence. Missing
    observations skip the measurement update: the state is only predicted through them and they
    add nothing to the log-likelihood. A step is missing where `mask` is False, where a masked
    array masks any of its values, or where y_t holds any NaN or ±inf (so a NaN is read as
    "not observed", never propagated; a partly observed y_t counts as missing as a whole).

    The parameters are Keras weights, so they can be learned by maximising the log-likelihood
    (`call` returns it, differentiably) with any optimizer, or by expectation–maximisation
    (`em`). Covariances are stored as lower-triangular factors and read back through the
    properties named after pykalman's attributes (plain assignment sets them).

    Args:
        n_dim_state: size of the hidden state x_t (positive int).
        n_dim_obs: size of an observation y_t (positive int).
        transition_matrices: initial [n_dim_state, n_dim_state]; defaults to identity.
        observation_matrices: initial [n_dim_obs, n_dim_state]; defaults to an identity block.
        transition_covariance: initial [n_dim_state, n_dim_state]; defaults to identity.
        observation_covariance: initial [n_dim_obs, n_dim_obs]; defaults to identity.
        initial_state_mean: initial [n_dim_state]; defaults to zeros.
        initial_state_covariance: initial [n_dim_state, n_dim_state]; defaults to identity.
        **kwargs: passed on to `keras.Model` (`dtype="float64"` for tight numerics).

    Call arguments:
        observations: float [B, T, n_dim_obs].
        mask: optional bool [B, T], True where y_t is observed. Defaults to "no NaN in y_t".

    Returns:
        The log-likelihood log p(y_1..T) of each sequence, [B].

    Methods (pykalman's): `filter(X)`, `smooth(X)`, `loglikelihood(X)`, `em(X, n_iter)` take
    NumPy arrays [T, n_dim_obs] (one sequence, as pykalman) or [B, T, n_dim_obs], optionally a
    masked array or `mask=`, and return NumPy arrays. `filter_and_smooth(observations, mask)` is
    the graph-friendly version returning every quantity as tensors.

    Where it differs from pykalman's `KalmanFilter`: it computes in the Keras dtype, float32 by
    default (pykalman: float64; pass `dtype="float64"` for its precision); `em` updates all six
    parameters unless `em_vars` says otherwise (pykalman's default leaves the transition and
    observation matrices fixed); NaN and inf count as missing (pykalman reads only masked
    arrays as missing).

    Example:
    >>> lds = LinearDynamicalSystem(2, 1, transition_matrices=[[1.0, 1.0], [0.0, 1.0]],
    ...                             observation_matrices=[[1.0, 0.0]])
    >>> means, covariances = lds.filter(np.arange(10.0)[:, None])
    >>> means.shape, covariances.shape
    ((10, 2), (10, 2, 2))
    """

    def __init__(
        self,
        n_dim_state,
        n_dim_obs,
        transition_matrices=None,
        observation_matrices=None,
        transition_covariance=None,
        observation_covariance=None,
        initial_state_mean=None,
        initial_state_covariance=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("n_dim_state", n_dim_state), ("n_dim_obs", n_dim_obs)):
            check_positive_int(name, value)
        self.n_dim_state = n_dim_state
        self.n_dim_obs = n_dim_obs
        given = {
            "transition_matrices": transition_matrices,
            "observation_matrices": observation_matrices,
            "transition_covariance": transition_covariance,
            "observation_covariance": observation_covariance,
            "initial_state_mean": initial_state_mean,
            "initial_state_covariance": initial_state_covariance,
        }
        n, m = n_dim_state, n_dim_obs
        defaults = {
            "transition_matrices": np.eye(n),
            "observation_matrices": np.eye(m, n),
            "transition_covariance": np.eye(n),
            "observation_covariance": np.eye(m),
            "initial_state_mean": np.zeros(n),
            "initial_state_covariance": np.eye(n),
        }
        self.supports_masking = True
        self._initial_values = {
            key: None if value is None else np.asarray(value, dtype=np.float64).tolist()
            for key, value in given.items()
        }
        self.build()
        for key, value in given.items():
            setattr(self, key, defaults[key] if value is None else value)

    def _shapes(self):
        """Shape of each parameter, by pykalman name."""
        n, m = self.n_dim_state, self.n_dim_obs
        return {
            "transition_matrices": (n, n),
            "observation_matrices": (m, n),
            "initial_state_mean": (n,),
            "transition_covariance": (n, n),
            "observation_covariance": (m, m),
            "initial_state_covariance": (n, n),
        }

    def build(self, input_shape=None):
        self._params = {}
        for key, shape in self._shapes().items():
            name = key + "_factor" if key in _COVARIANCES else key
            self._params[name] = self.add_weight(name=name, shape=shape, initializer="zeros")

    # Parameters under pykalman's names --------------------------------------------------------

    def _set_param(self, key, value):
        value = np.asarray(value, dtype=np.float64)
        expected = self._shapes()[key]
        if value.shape != expected:
            raise ValueError(f"`{key}` must have shape {expected}. Received: shape={value.shape}")
        if key in _COVARIANCES:
            try:
                factor = np.linalg.cholesky(_symmetrize_np(value) - _JITTER * np.eye(len(value)))
            except np.linalg.LinAlgError:
                raise ValueError(
                    f"`{key}` must be symmetric positive definite (eigenvalues above {_JITTER})."
                ) from None
            self._params[key + "_factor"].assign(factor)
        else:
            self._params[key].assign(value)

    def _tensor(self, key):
        """A parameter under its pykalman name, as a tensor of the compute dtype."""
        if key in _COVARIANCES:
            factor = tf.linalg.band_part(
                tf.cast(self._params[key + "_factor"], self.compute_dtype), -1, 0
            )
            eye = tf.eye(tf.shape(factor)[0], dtype=factor.dtype)
            return tf.matmul(factor, factor, transpose_b=True) + _JITTER * eye
        return tf.cast(self._params[key], self.compute_dtype)

    transition_matrices = _pykalman_property(
        "transition_matrices", "A, [n_dim_state, n_dim_state]: x_t = A x_{t-1} + noise."
    )
    observation_matrices = _pykalman_property(
        "observation_matrices", "C, [n_dim_obs, n_dim_state]: y_t = C x_t + noise."
    )
    initial_state_mean = _pykalman_property("initial_state_mean", "Mean of x_0, [n_dim_state].")
    transition_covariance = _pykalman_property(
        "transition_covariance", "Q, state noise covariance, [n_dim_state, n_dim_state]."
    )
    observation_covariance = _pykalman_property(
        "observation_covariance", "R, observation noise covariance, [n_dim_obs, n_dim_obs]."
    )
    initial_state_covariance = _pykalman_property(
        "initial_state_covariance", "Covariance of x_0, [n_dim_state, n_dim_state]."
    )

    # Batched filter and smoother ---------------------------------------------------------------

    def _inputs(self, observations, mask):
        observations = tf.convert_to_tensor(observations, dtype=self.compute_dtype)
        if observations.shape.rank != 3 or observations.shape[-1] != self.n_dim_obs:
            raise ValueError(
                f"Expected observations of shape [batch, time, {self.n_dim_obs}]. "
                f"Received: shape={observations.shape}"
            )
        finite = tf.reduce_all(tf.math.is_finite(observations), axis=-1)
        mask = finite if mask is None else tf.logical_and(tf.cast(mask, tf.bool), finite)
        # Missing values are zeroed so that the discarded branch of tf.where stays finite
        # (a NaN there would still poison the gradients).
        observations = tf.where(mask[..., None], observations, tf.zeros_like(observations))
        return observations, mask

    def _filter(self, observations, mask):
        """Kalman filter over time-major tensors; returns predicted and filtered moments."""
        A, C = self._tensor("transition_matrices"), self._tensor("observation_matrices")
        Q, R = self._tensor("transition_covariance"), self._tensor("observation_covariance")
        batch = tf.shape(observations)[1]
        mean0 = tf.tile(self._tensor("initial_state_mean")[None], [batch, 1])
        cov0 = tf.tile(self._tensor("initial_state_covariance")[None], [batch, 1, 1])
        log_2pi = tf.constant(self.n_dim_obs * math.log(2.0 * math.pi), self.compute_dtype)

        def step(carry, elems):
            mean_pred, cov_pred = carry[0], carry[1]
            y, observed = elems
            cov_obs = tf.einsum("ij,bjk->bik", C, cov_pred)  # C P, [B, m, n]
            innovation_cov = _symmetrize(tf.einsum("bik,lk->bil", cov_obs, C) + R)
            chol = tf.linalg.cholesky(innovation_cov)
            residual = y - _batch_matmul_t(mean_pred, C)
            gain_t = tf.linalg.cholesky_solve(chol, cov_obs)  # K^T = S^-1 C P
            mean_filt = mean_pred + tf.einsum("bm,bmn->bn", residual, gain_t)
            cov_filt = _symmetrize(cov_pred - tf.einsum("bmi,bmj->bij", cov_obs, gain_t))
            whitened = tf.linalg.triangular_solve(chol, residual[..., None], lower=True)[..., 0]
            log_det = 2.0 * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(chol)), axis=-1)
            log_lik = -0.5 * (log_2pi + log_det + tf.reduce_sum(whitened**2, axis=-1))
            mean_filt = tf.where(observed[:, None], mean_filt, mean_pred)
            cov_filt = tf.where(observed[:, None, None], cov_filt, cov_pred)
            log_lik = tf.where(observed, log_lik, tf.zeros_like(log_lik))
            mean_next = _batch_matmul_t(mean_filt, A)
            cov_next = tf.einsum("ij,bjk,lk->bil", A, cov_filt, A) + Q
            return mean_next, cov_next, mean_pred, cov_pred, mean_filt, cov_filt, log_lik

        zero_mean, zero_cov = tf.zeros_like(mean0), tf.zeros_like(cov0)
        zero_log_lik = tf.zeros([batch], mean0.dtype)
        init = (mean0, cov0, zero_mean, zero_cov, zero_mean, zero_cov, zero_log_lik)
        outputs = tf.scan(step, (observations, mask), initializer=init)
        return outputs[2:]

    def _smooth(self, pred_means, pred_covs, filt_means, filt_covs):
        """RTS smoother over time-major filter outputs; also returns the smoother gains J_t."""
        A = self._tensor("transition_matrices")

        def step(carry, elems):
            mean_next, cov_next = carry[0], carry[1]
            mean_filt, cov_filt, mean_pred_next, cov_pred_next, last = elems
            # J_t^T = P_{t+1|t}^-1 A P_{t|t}
            gain_t = tf.linalg.cholesky_solve(
                tf.linalg.cholesky(cov_pred_next), tf.einsum("ij,bjk->bik", A, cov_filt)
            )
            gain = tf.linalg.matrix_transpose(gain_t)
            mean = mean_filt + tf.einsum("bn,bnk->bk", mean_next - mean_pred_next, gain_t)
            cov = _symmetrize(cov_filt + gain @ (cov_next - cov_pred_next) @ gain_t)
            # The last step is smoothed as filtered (its gain, never read, is dropped below).
            return tf.where(last, mean_filt, mean), tf.where(last, cov_filt, cov), gain

        # The scan runs over all T steps, the last one a step of its own (see `shifted`); the
        # last step's "next" prediction is a copy of its own, unused.
        steps = tf.shape(filt_means)[0]
        last = tf.range(steps) == steps - 1
        init = (filt_means[-1], filt_covs[-1], tf.zeros_like(filt_covs[-1]))
        means, covs, gains = tf.scan(
            step, (filt_means, filt_covs, shifted(pred_means, pred_means[-1]),
                   shifted(pred_covs, pred_covs[-1]), last),
            initializer=init, reverse=True,
        )
        return means, covs, gains[:-1]

    def filter_and_smooth(self, observations, mask=None, smooth=True):
        """Runs the filter (and smoother) on a batch; graph-friendly, everything batch-major.

        Args:
            observations: float [B, T, n_dim_obs].
            mask: optional bool [B, T], True where observed (NaN rows count as missing).
            smooth: whether to run the RTS smoother too.

        Returns:
            A dict of tensors: "filtered_state_means" [B, T, n], "filtered_state_covariances"
            [B, T, n, n], "predicted_state_means", "predicted_state_covariances" (the moments of
            x_t given y_1..t-1), "log_likelihood" [B]; with `smooth`, "smoothed_state_means",
            "smoothed_state_covariances" and "smoother_gains" [B, T-1, n, n].
        """
        observations, mask = self._inputs(observations, mask)
        time_major_obs = tf.transpose(observations, [1, 0, 2])
        time_major_mask = tf.transpose(mask, [1, 0])
        pred_m, pred_c, filt_m, filt_c, log_lik = self._filter(time_major_obs, time_major_mask)
        to_batch = lambda x: tf.transpose(x, [1, 0] + list(range(2, x.shape.rank)))  # noqa: E731
        result = {
            "predicted_state_means": to_batch(pred_m),
            "predicted_state_covariances": to_batch(pred_c),
            "filtered_state_means": to_batch(filt_m),
            "filtered_state_covariances": to_batch(filt_c),
            "log_likelihood": tf.reduce_sum(log_lik, axis=0),
        }
        if smooth:
            smooth_m, smooth_c, gains = self._smooth(pred_m, pred_c, filt_m, filt_c)
            result.update(
                smoothed_state_means=to_batch(smooth_m),
                smoothed_state_covariances=to_batch(smooth_c),
                smoother_gains=to_batch(gains),
            )
        return result

    def call(self, observations, mask=None):
        return self.filter_and_smooth(observations, mask, smooth=False)["log_likelihood"]

    def compute_mask(self, inputs, mask=None):
        # The mask is consumed: the output is one log-likelihood per sequence.
        return None

    # pykalman-style NumPy methods --------------------------------------------------------------

    def _numpy_inputs(self, X, mask):
        if isinstance(X, np.ma.MaskedArray):
            missing = np.ma.getmaskarray(X)
            X = np.where(missing, np.nan, np.ma.getdata(X))
        X = np.asarray(X, dtype=np.float64)
        single = X.ndim == 2
        if single:
            X = X[None]
            mask = None if mask is None else np.asarray(mask)[None]
        if X.ndim != 3 or X.shape[-1] != self.n_dim_obs or 0 in X.shape[:2]:
            raise ValueError(
                f"Expected observations of shape [time, {self.n_dim_obs}] or "
                f"[batch, time, {self.n_dim_obs}] with at least one sequence of at least one "
                f"step. Received: shape={X.shape}"
            )
        mask = np.ones(X.shape[:2], bool) if mask is None else np.asarray(mask, bool)
        if mask.shape != X.shape[:2]:
            raise ValueError(
                f"`mask` must have shape {X.shape[:2]} (batch, time). Received: shape={mask.shape}"
            )
        return X, mask, single

    def _run(self, X, mask, smooth):
        X, mask, single = self._numpy_inputs(X, mask)
        result = self.filter_and_smooth(X, mask, smooth=smooth)
        return {k: (v.numpy()[0] if single else v.numpy()) for k, v in result.items()}

    def filter(self, X, mask=None):
        """Filtered state means [.., T, n] and covariances [.., T, n, n] (NumPy)."""
        result = self._run(X, mask, smooth=False)
        return result["filtered_state_means"], result["filtered_state_covariances"]

    def smooth(self, X, mask=None):
        """RTS-smoothed state means [.., T, n] and covariances [.., T, n, n] (NumPy)."""
        result = self._run(X, mask, smooth=True)
        return result["smoothed_state_means"], result["smoothed_state_covariances"]

    def loglikelihood(self, X, mask=None):
        """log p(observations): a float for one sequence [T, m], an array [B] for a batch."""
        value = self._run(X, mask, smooth=False)["log_likelihood"]
        return float(value) if np.ndim(value) == 0 else value

    def _em_step(self, observations, mask, em_vars):
        """One EM iteration on tensors; returns the log-likelihood under the old parameters."""
        stats = self.filter_and_smooth(observations, mask)
        observations, mask = self._inputs(observations, mask)
        dtype = self.compute_dtype
        weights = tf.cast(mask, dtype)
        means, covs = stats["smoothed_state_means"], stats["smoothed_state_covariances"]
        second = covs + tf.einsum("bti,btj->btij", means, means)  # E[x_t x_t^T]
        # E[x_t x_{t-1}^T] = P_{t|T} J_{t-1}^T + m_t m_{t-1}^T
        cross = tf.einsum("btij,btkj->btik", covs[:, 1:], stats["smoother_gains"]) + tf.einsum(
            "bti,btj->btij", means[:, 1:], means[:, :-1]
        )
        new = {}
        C = self._tensor("observation_matrices")
        if "observation_matrices" in em_vars:
            y_x = tf.einsum("bt,bti,btj->ij", weights, observations, means)
            x_x = tf.einsum("bt,btij->ij", weights, second)
            C = tf.linalg.matrix_transpose(tf.linalg.solve(x_x, tf.linalg.matrix_transpose(y_x)))
            new["observation_matrices"] = C
        if "observation_covariance" in em_vars:
            residual = observations - _batch_matmul_t(means, C)
            spread = tf.einsum("btij,kj->btik", tf.einsum("ij,btjk->btik", C, covs), C)
            outer = tf.einsum("bti,btj->btij", residual, residual)
            total = tf.einsum("bt,btij->ij", weights, outer + spread)
            new["observation_covariance"] = total / tf.reduce_sum(weights)
        A = self._tensor("transition_matrices")
        if "transition_matrices" in em_vars:
            A = tf.linalg.matrix_transpose(
                tf.linalg.solve(
                    tf.reduce_sum(second[:, :-1], axis=[0, 1]),
                    tf.linalg.matrix_transpose(tf.reduce_sum(cross, axis=[0, 1])),
                )
            )
            new["transition_matrices"] = A
        if "transition_covariance" in em_vars:
            cross_sum = tf.reduce_sum(cross, axis=[0, 1])
            total = (
                tf.reduce_sum(second[:, 1:], axis=[0, 1])
                - A @ tf.linalg.matrix_transpose(cross_sum)
                - cross_sum @ tf.linalg.matrix_transpose(A)
                + A @ tf.reduce_sum(second[:, :-1], axis=[0, 1]) @ tf.linalg.matrix_transpose(A)
            )
            count = tf.cast(tf.shape(cross)[0] * tf.shape(cross)[1], dtype)
            new["transition_covariance"] = _symmetrize(total / count)
        mean0 = tf.reduce_mean(means[:, 0], axis=0)
        if "initial_state_mean" in em_vars:
            new["initial_state_mean"] = mean0
        else:
            mean0 = self._tensor("initial_state_mean")
        if "initial_state_covariance" in em_vars:
            offset = means[:, 0] - mean0
            new["initial_state_covariance"] = _symmetrize(
                tf.reduce_mean(covs[:, 0] + tf.einsum("bi,bj->bij", offset, offset), axis=0)
            )
        return stats["log_likelihood"], new

    def em(self, X, mask=None, n_iter=10, em_vars=None):
        """Fits the parameters by expectation–maximisation (as pykalman's `em`).

        Args:
            X: observations [T, n_dim_obs] or [B, T, n_dim_obs] (sequences share the
                parameters), a masked array or NaN rows for missing values.
            mask: optional bool [T] / [B, T], True where observed.
            n_iter: number of EM iterations (positive int).
            em_vars: names of the parameters to update (a subset of EM_VARS); None or "all"
                updates all of them (pykalman's default leaves the two matrices out; pass
                that list to reproduce it).

        Returns:
            self. `self.em_log_likelihoods_` holds the total log-likelihood before each
            iteration, which EM never decreases.
        """
        check_positive_int("n_iter", n_iter)
        em_vars = EM_VARS if em_vars in (None, "all") else tuple(em_vars)
        unknown = sorted(set(em_vars) - set(EM_VARS))
        if unknown:
            raise ValueError(f"Unknown em_vars {unknown}; accepted: {', '.join(EM_VARS)}.")
        X, mask, _ = self._numpy_inputs(X, mask)
        if X.shape[1] < 2:
            raise ValueError(f"EM needs sequences of at least 2 steps. Received: {X.shape[1]}")
        step = tf.function(lambda x, m: self._em_step(x, m, em_vars))
        x_t, m_t = tf.constant(X, self.compute_dtype), tf.constant(mask)
        self.em_log_likelihoods_ = []
        for _ in range(n_iter):
            log_lik, new = step(x_t, m_t)
            self.em_log_likelihoods_.append(float(tf.reduce_sum(log_lik)))
            for key, value in new.items():
                setattr(self, key, value.numpy())
        return self

    def get_config(self):
        config = super().get_config()
        config.update({"n_dim_state": self.n_dim_state, "n_dim_obs": self.n_dim_obs})
        config.update(self._initial_values)
        return config


def _symmetrize_np(matrix):
    return 0.5 * (matrix + matrix.T)
