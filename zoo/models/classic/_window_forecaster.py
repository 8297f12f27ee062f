"""Shared machinery of the memoryless forecasters: window checks and recursive forecasting."""

from __future__ import annotations

import keras
import tensorflow as tf

from seqzoo.zoo._checks import check_positive_int


def check_order_and_series(order, num_series):
    """Validates the two constructor arguments every window forecaster shares."""
    check_positive_int("order", order)
    check_positive_int("num_series", num_series)


class WindowForecaster(keras.Model):
    """A model mapping the last `order` values of a series to the next one.

    Subclasses implement `call(history)` for `history` of shape [B, T, num_series] with
    T >= order, reading only the last `order` steps, and returning [B, num_series]. The
    recursive multi-step forecast is shared: each prediction is appended to the window and fed
    back, which is how a one-step model is used to look further ahead.
    """

    def _last_window(self, history):
        history = tf.convert_to_tensor(history, dtype=self.compute_dtype)
        if history.shape.rank != 3 or (
            history.shape[-1] is not None and history.shape[-1] != self.num_series
        ):
            raise ValueError(
                f"Expected a history of shape [batch, time, {self.num_series}]. "
                f"Received: shape={history.shape}"
            )
        if history.shape[1] is not None and history.shape[1] < self.order:
            raise ValueError(
                f"The history needs at least order={self.order} steps. "
                f"Received: {history.shape[1]} steps"
            )
        return history[:, -self.order:, :]

    def forecast(self, history, horizon):
        """Forecasts `horizon` steps ahead by feeding each prediction back into the window.

        Args:
            history: float array [B, T, num_series], T >= order, oldest step first.
            horizon: positive int, number of future steps.

        Returns:
            A tensor [B, horizon, num_series]; step 0 is the one-step-ahead forecast.
        """
        check_positive_int("horizon", horizon)
        window = self._last_window(history)
        predictions = []
        for _ in range(horizon):
            step = self(window)
            predictions.append(step)
            window = tf.concat([window[:, 1:, :], step[:, None, :]], axis=1)
        return tf.stack(predictions, axis=1)
