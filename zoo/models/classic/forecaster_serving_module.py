"""The serving signature of the memoryless forecasters (AR(p), delay-tap network)."""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo._checks import check_positive_int


class ForecasterServingModule(tf.Module):
    """Wraps an `AutoregressiveModel` or `DelayTapNetwork` in its `serving_default` signature.

    Args:
        model: a window forecaster (has `order`, `num_series` and `forecast(history, horizon)`).
        horizon: number of future steps returned (positive int).
        name: optional module name.

    Signature `serving_default` (also `.serve`):
        inputs: `observations`, float32 [batch, time, num_series], the recent history, oldest
            first, time >= model.order.
        outputs: `forecasts`, float32 [batch, horizon, num_series], the recursive forecast
            (step 0 is one step ahead).

    Example:
    >>> module = ForecasterServingModule(model, horizon=5)
    >>> module.serve(tf.zeros([1, 8, model.num_series]))["forecasts"].shape
    TensorShape([1, 5, 1])
    """

    def __init__(self, model, horizon, name=None):
        super().__init__(name=name)
        check_positive_int("horizon", horizon)
        self.model = model
        self.horizon = horizon
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None, None, model.num_series], tf.float32, name="observations")
            ],
        )

    @property
    def signatures(self):
        """`{"serving_default": self.serve}`; a property, since SavedModel reserves the attribute."""
        return {"serving_default": self.serve}

    def _serve(self, observations):
        history = tf.cast(observations, self.model.compute_dtype)
        tf.debugging.assert_greater_equal(
            tf.shape(history)[1], self.model.order,
            message=f"observations need at least order={self.model.order} time steps",
        )
        forecasts = self.model.forecast(history, self.horizon)
        return {"forecasts": tf.cast(forecasts, tf.float32)}
