"""AutoregressiveModel: closed-form recovery of known coefficients, gradient fit, forecasts."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_contract import run_layer_contract

from seqzoo.zoo.models.classic import AutoregressiveModel

# A stationary VAR(2) in two variables, y_t = c + A1 y_{t-1} + A2 y_{t-2} + e_t.
A1 = np.array([[0.5, 0.1], [-0.2, 0.3]])
A2 = np.array([[0.2, 0.0], [0.1, -0.1]])
INTERCEPT = np.array([0.1, -0.2])


def simulate_var(steps, seed, noise=0.5):
    rng = np.random.default_rng(seed)
    y = np.zeros((steps + 100, 2))
    for t in range(2, len(y)):
        y[t] = INTERCEPT + A1 @ y[t - 1] + A2 @ y[t - 2] + noise * rng.normal(size=2)
    return y[100:]


def test_least_squares_recovers_multivariate_coefficients():
    series = simulate_var(5000, seed=0)
    model = AutoregressiveModel(order=2, num_series=2).fit_least_squares(series)
    # Standard error of each coefficient is about noise/(std(y) sqrt(T)) ~ 0.015; 0.05 is >3 sigma.
    np.testing.assert_allclose(model.coefficients.numpy(), np.stack([A1, A2]), atol=0.05)
    np.testing.assert_allclose(model.intercept.numpy(), INTERCEPT, atol=0.05)


def test_least_squares_univariate_and_several_series():
    rng = np.random.default_rng(1)
    pieces = []
    for length in (800, 1200, 1500):
        y = np.zeros(length)
        for t in range(3, length):
            y[t] = 0.6 * y[t - 1] - 0.3 * y[t - 2] + 0.2 * y[t - 3] + rng.normal()
        pieces.append(y)
    model = AutoregressiveModel(order=3, use_intercept=False).fit_least_squares(pieces)
    np.testing.assert_allclose(model.coefficients.numpy()[:, 0, 0], [0.6, -0.3, 0.2], atol=0.06)


def test_gradient_fit_agrees_with_closed_form():
    series = simulate_var(1500, seed=2).astype("float32")
    closed = AutoregressiveModel(order=2, num_series=2).fit_least_squares(series)
    windows = np.stack([series[t - 2 : t] for t in range(2, len(series))])
    targets = series[2:]
    model = AutoregressiveModel(order=2, num_series=2)
    optimizer = keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(windows) - targets))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))

    for _ in range(400):
        step()
    np.testing.assert_allclose(model.coefficients.numpy(), closed.coefficients.numpy(), atol=0.01)
    np.testing.assert_allclose(model.intercept.numpy(), closed.intercept.numpy(), atol=0.01)


def test_forecast_matches_hand_recursion():
    model = AutoregressiveModel(order=2, num_series=2)
    model.coefficients.assign(np.stack([A1, A2]).astype("float32"))
    model.intercept.assign(INTERCEPT.astype("float32"))
    history = np.random.default_rng(3).normal(size=(3, 7, 2))
    expected = []
    for row in history:
        values = list(row)
        for _ in range(4):
            values.append(INTERCEPT + A1 @ values[-1] + A2 @ values[-2])
        expected.append(values[-4:])
    forecast = model.forecast(history.astype("float32"), horizon=4).numpy()
    np.testing.assert_allclose(forecast, np.array(expected), atol=1e-5)


def test_layer_contract(tmp_path):
    history = np.random.default_rng(4).normal(size=(3, 5, 2)).astype("float32")

    def factory():
        model = AutoregressiveModel(order=3, num_series=2)
        model.coefficients.assign(np.random.default_rng(5).normal(size=(3, 2, 2)) * 0.3)
        return model

    outputs = run_layer_contract(factory, history, expected_output_shapes=(3, 2),
                                 expected_num_trainable_weights=2, tmp_path=tmp_path)
    assert np.abs(outputs).sum() > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [({"order": 0}, "order=0"), ({"order": 2, "num_series": 0}, "num_series=0")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AutoregressiveModel(**kwargs)


def test_short_history_is_rejected():
    with pytest.raises(ValueError, match="at least order=3"):
        AutoregressiveModel(order=3)(np.zeros((1, 2, 1), "float32"))


def test_nan_in_a_series_is_a_clear_error_and_the_weights_stay():
    model = AutoregressiveModel(order=2)
    series = [np.sin(np.arange(30.0)), np.cos(np.arange(20.0))]
    series[1][5] = np.nan
    with pytest.raises(ValueError, match="series 1 holds NaN or inf at 1 step.s., the first at "
                                         "step 5. Least squares has no missing values"):
        model.fit_least_squares(series)
    np.testing.assert_array_equal(model.coefficients.numpy(), np.zeros((2, 1, 1)))

