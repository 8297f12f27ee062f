"""LinearDynamicalSystem against a NumPy Kalman filter/RTS smoother, a dense Gaussian, finite
differences, and EM on data generated with known parameters."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_contract import run_layer_contract

from seqzoo.zoo.models.classic import LinearDynamicalSystem

PARAMS = {
    "transition_matrices": np.array([[0.9, 0.2], [-0.1, 0.8]]),
    "observation_matrices": np.array([[1.0, 0.5], [0.0, 1.0], [0.3, -0.4]]),
    "transition_covariance": np.array([[0.3, 0.05], [0.05, 0.2]]),
    "observation_covariance": np.diag([0.5, 0.4, 0.6]),
    "initial_state_mean": np.array([1.0, -1.0]),
    "initial_state_covariance": np.array([[1.0, 0.2], [0.2, 0.5]]),
}


def numpy_kalman(y, observed, p):
    """Textbook Kalman filter + RTS smoother for one sequence, written independently."""
    A, C = p["transition_matrices"], p["observation_matrices"]
    Q, R = p["transition_covariance"], p["observation_covariance"]
    mean, cov = p["initial_state_mean"], p["initial_state_covariance"]
    pred_m, pred_c, filt_m, filt_c, log_lik = [], [], [], [], 0.0
    for t in range(len(y)):
        if t > 0:
            mean, cov = A @ mean, A @ cov @ A.T + Q
        pred_m.append(mean), pred_c.append(cov)
        if observed[t]:
            S = C @ cov @ C.T + R
            K = cov @ C.T @ np.linalg.inv(S)
            r = y[t] - C @ mean
            log_lik += -0.5 * (len(r) * np.log(2 * np.pi) + np.log(np.linalg.det(S))
                               + r @ np.linalg.solve(S, r))
            mean, cov = mean + K @ r, (np.eye(len(mean)) - K @ C) @ cov
        filt_m.append(mean), filt_c.append(cov)
    smooth_m, smooth_c = [filt_m[-1]], [filt_c[-1]]
    for t in range(len(y) - 2, -1, -1):
        J = filt_c[t] @ A.T @ np.linalg.inv(pred_c[t + 1])
        smooth_m.insert(0, filt_m[t] + J @ (smooth_m[0] - pred_m[t + 1]))
        smooth_c.insert(0, filt_c[t] + J @ (smooth_c[0] - pred_c[t + 1]) @ J.T)
    return (np.array(filt_m), np.array(filt_c), np.array(smooth_m), np.array(smooth_c), log_lik)


def sample(p, batch, steps, seed):
    rng = np.random.default_rng(seed)
    n, m = len(p["initial_state_mean"]), len(p["observation_covariance"])
    x = rng.multivariate_normal(p["initial_state_mean"], p["initial_state_covariance"], size=batch)
    ys = []
    for t in range(steps):
        if t > 0:
            x = x @ p["transition_matrices"].T + rng.multivariate_normal(
                np.zeros(n), p["transition_covariance"], size=batch)
        ys.append(x @ p["observation_matrices"].T + rng.multivariate_normal(
            np.zeros(m), p["observation_covariance"], size=batch))
    return np.stack(ys, axis=1)


def make_lds(params=PARAMS, dtype="float64"):
    return LinearDynamicalSystem(2, 3, dtype=dtype, **params)


def test_filter_smoother_and_log_likelihood_match_numpy_with_missing_steps():
    y = sample(PARAMS, batch=3, steps=12, seed=0)
    mask = np.ones((3, 12), bool)
    mask[0, [2, 3, 7]] = False
    mask[2, 9:] = False  # a shorter sequence: trailing steps missing
    y[0, 3] = np.nan  # NaN values at masked steps must not leak anywhere
    lds = make_lds()
    result = lds.filter_and_smooth(y, mask)
    for b in range(3):
        f_m, f_c, s_m, s_c, ll = numpy_kalman(y[b], mask[b], PARAMS)
        np.testing.assert_allclose(result["filtered_state_means"][b], f_m, atol=1e-8)
        np.testing.assert_allclose(result["filtered_state_covariances"][b], f_c, atol=1e-8)
        np.testing.assert_allclose(result["smoothed_state_means"][b], s_m, atol=1e-8)
        np.testing.assert_allclose(result["smoothed_state_covariances"][b], s_c, atol=1e-8)
        np.testing.assert_allclose(result["log_likelihood"][b], ll, rtol=1e-10)
    # pykalman-style single-sequence methods agree with the batch.
    means, covs = lds.smooth(y[1])
    np.testing.assert_allclose(means, result["smoothed_state_means"][1], atol=1e-10)
    np.testing.assert_allclose(lds.loglikelihood(y[1]), result["log_likelihood"][1], rtol=1e-12)


def test_missing_observation_skips_the_update():
    y = sample(PARAMS, batch=1, steps=6, seed=1)[0]
    masked = np.ma.masked_array(y, mask=np.zeros_like(y, bool))
    masked[3] = np.ma.masked
    lds = make_lds()
    means, covs = lds.filter(masked)
    A, Q = PARAMS["transition_matrices"], PARAMS["transition_covariance"]
    # With y_3 missing, the filtered moments at t=3 are the prediction from t=2.
    np.testing.assert_allclose(means[3], A @ means[2], atol=1e-10)
    np.testing.assert_allclose(covs[3], A @ covs[2] @ A.T + Q, atol=1e-10)
    # The missing step contributes nothing: equal to the likelihood of the other steps.
    full_ll = lds.loglikelihood(np.delete(y, 3, axis=0)[:3])
    np.testing.assert_allclose(lds.loglikelihood(masked[:3]), full_ll, rtol=1e-12)
    assert lds.loglikelihood(masked) != pytest.approx(lds.loglikelihood(y))
    # NaN and inf anywhere in y_t mark the whole step missing, as the docstring says.
    for missing in (np.nan, np.inf):
        with_gap = y.copy()
        with_gap[3, 0] = missing
        np.testing.assert_allclose(lds.filter(with_gap)[0], means, atol=1e-12)


def test_log_likelihood_equals_dense_gaussian_of_the_whole_sequence():
    steps = 4
    y = sample(PARAMS, batch=1, steps=steps, seed=2)[0]
    A, C = PARAMS["transition_matrices"], PARAMS["observation_matrices"]
    Q, R = PARAMS["transition_covariance"], PARAMS["observation_covariance"]
    # x_t = A^t x_0 + sum_{s<=t} A^{t-s} w_s: mean and covariance of all states, then of y.
    means = [np.linalg.matrix_power(A, t) @ PARAMS["initial_state_mean"] for t in range(steps)]
    state_cov = np.zeros((steps, steps, 2, 2))
    for t in range(steps):
        for u in range(steps):
            total = np.linalg.matrix_power(A, t) @ PARAMS["initial_state_covariance"] @ \
                np.linalg.matrix_power(A, u).T
            for s in range(1, min(t, u) + 1):
                total += np.linalg.matrix_power(A, t - s) @ Q @ np.linalg.matrix_power(A, u - s).T
            state_cov[t, u] = total
    mean_y = np.concatenate([C @ mu for mu in means])
    cov_y = np.block([[C @ state_cov[t, u] @ C.T + (R if t == u else 0 * R)
                       for u in range(steps)] for t in range(steps)])
    r = y.reshape(-1) - mean_y
    dense = -0.5 * (len(r) * np.log(2 * np.pi) + np.linalg.slogdet(cov_y)[1]
                    + r @ np.linalg.solve(cov_y, r))
    np.testing.assert_allclose(make_lds().loglikelihood(y), dense, rtol=1e-10)


def test_gradients_match_finite_differences():
    y = tf.constant(sample(PARAMS, batch=2, steps=5, seed=3))
    lds = make_lds()
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(lds(y))
    grads = tape.gradient(total, lds.trainable_variables)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for variable, grad in zip(lds.trainable_variables, grads):
        base = variable.numpy()
        for _ in range(2):
            index = tuple(rng.integers(0, d) for d in base.shape)
            if "factor" in variable.name and index[-1] > index[0]:
                index = index[::-1]  # only the lower triangle is a parameter
            values = []
            for sign in (1, -1):
                shifted = base.copy()
                shifted[index] += sign * eps
                variable.assign(shifted)
                values.append(float(tf.reduce_sum(lds(y))))
            variable.assign(base)
            numeric = (values[0] - values[1]) / (2 * eps)
            np.testing.assert_allclose(grad.numpy()[index], numeric, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{variable.name}{index}")


def test_gradient_ascent_increases_the_likelihood():
    y = sample(PARAMS, batch=4, steps=30, seed=4).astype("float32")
    lds = LinearDynamicalSystem(2, 3)
    optimizer = keras.optimizers.Adam(0.05)
    before = float(tf.reduce_mean(lds(y)))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(lds(y))
        optimizer.apply_gradients(zip(tape.gradient(loss, lds.trainable_variables),
                                      lds.trainable_variables))

    for _ in range(100):
        step()
    assert float(tf.reduce_mean(lds(y))) > before + 20.0


def test_em_is_monotone_and_recovers_known_parameters():
    truth = {
        "transition_matrices": np.array([[0.8, 0.2], [-0.2, 0.7]]),
        "observation_matrices": np.eye(2),
        "transition_covariance": np.diag([0.5, 0.3]),
        "observation_covariance": np.diag([0.2, 0.3]),
        "initial_state_mean": np.zeros(2),
        "initial_state_covariance": np.eye(2),
    }
    y = sample(truth, batch=20, steps=100, seed=5)
    lds = LinearDynamicalSystem(
        2, 2, dtype="float64", observation_matrices=np.eye(2),
        transition_matrices=0.5 * np.eye(2), transition_covariance=np.eye(2),
        observation_covariance=np.eye(2),
    )
    # C is held at the identity, which pins down the state's coordinates (otherwise the
    # parameters are identifiable only up to a change of basis).
    em_vars = ["transition_matrices", "transition_covariance", "observation_covariance",
               "initial_state_mean", "initial_state_covariance"]
    lds.em(y, n_iter=60, em_vars=em_vars)
    history = np.array(lds.em_log_likelihoods_)
    assert np.all(np.diff(history) >= -1e-6), history
    assert history[-1] > history[0] + 100
    # 2000 observations: tolerances are a few standard errors.
    np.testing.assert_allclose(lds.transition_matrices, truth["transition_matrices"], atol=0.05)
    np.testing.assert_allclose(lds.transition_covariance, truth["transition_covariance"],
                               atol=0.1)
    np.testing.assert_allclose(lds.observation_covariance, truth["observation_covariance"],
                               atol=0.1)
    np.testing.assert_allclose(lds.observation_matrices, np.eye(2), atol=0)


def test_full_em_never_decreases_the_likelihood_with_missing_values():
    y = sample(PARAMS, batch=3, steps=20, seed=6)
    y[1, 5:8] = np.nan
    lds = LinearDynamicalSystem(2, 3, dtype="float64").em(y, n_iter=15)
    assert np.all(np.diff(lds.em_log_likelihoods_) >= -1e-6), lds.em_log_likelihoods_


def test_layer_contract(tmp_path):
    y = sample(PARAMS, batch=2, steps=6, seed=7).astype("float32")
    mask = np.ones((2, 6), bool)
    mask[1, 4:] = False
    run_layer_contract(lambda: make_lds(dtype="float32"), y, mask=mask,
                       expected_output_shapes=(2,), expected_num_trainable_weights=6,
                       tmp_path=tmp_path, atol=1e-4)


def test_bad_values_are_reported():
    with pytest.raises(ValueError, match="n_dim_state=0"):
        LinearDynamicalSystem(0, 1)
    lds = LinearDynamicalSystem(2, 1)
    with pytest.raises(ValueError, match="positive definite"):
        lds.transition_covariance = [[1.0, 2.0], [2.0, 1.0]]
    with pytest.raises(ValueError, match=r"shape \(1, 2\)"):
        lds.observation_matrices = np.eye(2)
    with pytest.raises(ValueError, match="Unknown em_vars"):
        lds.em(np.zeros((5, 1)), em_vars=["offsets"])
    for empty in (np.zeros((0, 1)), np.zeros((2, 0, 1))):
        for method in (lds.filter, lds.smooth, lds.loglikelihood, lds.em):
            with pytest.raises(ValueError, match="at least one sequence of at least one step. "
                                                 r"Received: shape=\((1, )?\d, 0, 1\)"):
                method(empty)



@pytest.mark.parametrize("steps", [1, 2])
def test_short_sequences_in_a_traced_function_match_numpy(steps):
    # As the exported signatures run them: batch and time unknown when traced. A scan over the
    # steps before the last then has nothing to stack for a one-step sequence.
    y = sample(PARAMS, batch=2, steps=steps, seed=4)
    lds = make_lds()
    traced = tf.function(lambda y: lds.filter_and_smooth(y),
                         input_signature=[tf.TensorSpec([None, None, 3], tf.float64)])
    result = traced(tf.constant(y))
    assert result["smoother_gains"].shape == (2, steps - 1, 2, 2)
    for b in range(2):
        f_m, f_c, s_m, s_c, ll = numpy_kalman(y[b], np.ones(steps, bool), PARAMS)
        np.testing.assert_allclose(result["filtered_state_means"][b], f_m, atol=1e-10)
        np.testing.assert_allclose(result["smoothed_state_means"][b], s_m, atol=1e-10)
        np.testing.assert_allclose(result["smoothed_state_covariances"][b], s_c, atol=1e-10)
        np.testing.assert_allclose(result["log_likelihood"][b], ll, rtol=1e-10)
