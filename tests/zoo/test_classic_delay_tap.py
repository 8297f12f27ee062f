"""DelayTapNetwork: beats AR(p) of the same p on a nonlinear series; recursive forecasts."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_contract import run_layer_contract

from seqzoo.zoo.models.classic import AutoregressiveModel, DelayTapNetwork


def logistic_map(steps, r=3.9, x0=0.3):
    x = np.empty(steps)
    x[0] = x0
    for t in range(1, steps):
        x[t] = r * x[t - 1] * (1.0 - x[t - 1])
    return x


def windows_of(series, order):
    windows = np.stack([series[t - order : t] for t in range(order, len(series))])
    return windows[..., None].astype("float32"), series[order:, None].astype("float32")


def test_learns_the_logistic_map_far_better_than_ar_of_same_order():
    series = logistic_map(1200)
    train, test = series[:1000], series[1000:]
    order = 2
    x_train, y_train = windows_of(train, order)
    x_test, y_test = windows_of(test, order)

    ar = AutoregressiveModel(order=order).fit_least_squares(train)
    ar_mse = float(np.mean((ar(x_test).numpy() - y_test) ** 2))

    net = DelayTapNetwork(order=order, hidden_units=[16, 16])
    optimizer = keras.optimizers.Adam(0.01)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(x_train) - y_train))
        optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_variables),
                                      net.trainable_variables))

    for _ in range(1500):
        step()
    net_mse = float(np.mean((net(x_test).numpy() - y_test) ** 2))
    # The best linear predictor of the chaotic logistic map leaves most of its variance
    # (MSE ~ 0.06 here); x_t = 3.9 x_{t-1}(1 - x_{t-1}) is a smooth function of the taps.
    assert ar_mse > 0.03
    assert net_mse < 0.01 * ar_mse, (net_mse, ar_mse)


def test_recursive_forecast_feeds_predictions_back():
    net = DelayTapNetwork(order=3, num_series=2, hidden_units=[8])
    history = np.random.default_rng(0).normal(size=(2, 6, 2)).astype("float32")
    forecast = net.forecast(history, horizon=3).numpy()
    window = history[:, -3:]
    for h in range(3):
        step = net(window).numpy()
        np.testing.assert_allclose(forecast[:, h], step, atol=1e-6)
        window = np.concatenate([window[:, 1:], step[:, None]], axis=1)


def test_layer_contract(tmp_path):
    history = np.random.default_rng(1).normal(size=(4, 6, 2)).astype("float32")
    run_layer_contract(
        lambda: DelayTapNetwork(order=3, num_series=2, hidden_units=[8, 4], activation="relu"),
        # Two hidden layers and the output (kernel and bias each), and the linear taps.
        history, expected_output_shapes=(4, 2), expected_num_trainable_weights=7,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"order": -1}, "order=-1"),
        ({"order": 2, "hidden_units": []}, r"hidden_units=\[\]"),
        ({"order": 2, "hidden_units": [4, 0]}, r"hidden_units=\[4, 0\]"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DelayTapNetwork(**kwargs)


def test_bad_horizon():
    with pytest.raises(ValueError, match="horizon=0"):
        DelayTapNetwork(order=2, hidden_units=[4]).forecast(np.zeros((1, 4, 1)), horizon=0)
