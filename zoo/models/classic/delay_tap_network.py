"""Delay-tap feedforward network: a nonlinear autoregressive forecaster."""

from __future__ import annotations

import keras
import tensorflow as tf

from seqzoo.zoo.models.classic._window_forecaster import WindowForecaster, check_order_and_series


@keras.saving.register_keras_serializable(package="seqzoo")
class DelayTapNetwork(WindowForecaster):
    """Predicts the next value from the last p values through nonlinear hidden layers.

    The memoryless model of the lecture that generalises AR(p): the window of `order` delayed
    values is flattened and passed through `hidden_units` dense layers with `activation`, then a
    linear output layer. A linear skip path from the window (an AR(p) term) is included, so the
    network can only improve on the linear model it contains.

    Args:
        order: p, number of delay taps (positive int).
        num_series: number of variables of the series (1 for univariate).
        hidden_units: sizes of the hidden layers, a non-empty list of positive ints.
        activation: activation of the hidden layers (any Keras activation name).
        **kwargs: passed on to `keras.Model`.

    Call arguments:
        history: float tensor [B, T, num_series], T >= order, oldest step first.

    Returns:
        [B, num_series], the one-step-ahead prediction. `forecast(history, horizon)` returns the
        recursive multi-step forecast [B, horizon, num_series].

    Example:
    >>> model = DelayTapNetwork(order=3, hidden_units=[16])
    >>> model(np.zeros((4, 10, 1), "float32")).shape
    TensorShape([4, 1])
    """

    def __init__(self, order, num_series=1, hidden_units=(32, 32), activation="tanh", **kwargs):
        super().__init__(**kwargs)
        check_order_and_series(order, num_series)
        hidden_units = list(hidden_units)
        if not hidden_units or any(
            not isinstance(u, int) or isinstance(u, bool) or u < 1 for u in hidden_units
        ):
            raise ValueError(
                "`hidden_units` must be a non-empty list of positive integers. "
                f"Received: hidden_units={hidden_units}"
            )
        self.order = order
        self.num_series = num_series
        self.hidden_units = hidden_units
        self.activation = activation
        # A Sequential (not a Python list) so tf.train.Checkpoint tracks the hidden weights.
        self.hidden = keras.Sequential(
            [
                keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")
                for i, units in enumerate(hidden_units)
            ],
            name="hidden",
        )
        self.output_layer = keras.layers.Dense(num_series, name="output")
        self.linear_taps = keras.layers.Dense(num_series, use_bias=False, name="linear_taps")
        self.build((None, order, num_series))

    def build(self, input_shape):
        flat = (None, self.order * self.num_series)
        self.hidden.build(flat)
        self.output_layer.build((None, self.hidden_units[-1]))
        self.linear_taps.build(flat)

    def call(self, history):
        window = self._last_window(history)
        flat = tf.reshape(window, [-1, self.order * self.num_series])
        return self.output_layer(self.hidden(flat)) + self.linear_taps(flat)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "order": self.order,
                "num_series": self.num_series,
                "hidden_units": list(self.hidden_units),
                "activation": keras.activations.serialize(keras.activations.get(self.activation))
                if not isinstance(self.activation, str)
                else self.activation,
            }
        )
        return config
