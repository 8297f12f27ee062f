"""Autoregressive model AR(p) for univariate and multivariate series."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from seqzoo.zoo.models.classic._window_forecaster import WindowForecaster, check_order_and_series


def _as_series_list(series, num_series):
    """An array [T], [T, D] or [N, T, D], or a list of arrays [T_i(, D)] -> list of [T_i, D]."""
    if isinstance(series, (list, tuple)):
        items = [np.asarray(item, dtype=np.float64) for item in series]
    else:
        array = np.asarray(series, dtype=np.float64)
        items = list(array) if array.ndim == 3 else [array]
    out = []
    for index, item in enumerate(items):
        if item.ndim == 1:
            item = item[:, None]
        if item.ndim != 2 or item.shape[1] != num_series:
            raise ValueError(
                f"Expected series of shape [time, {num_series}] (or [batch, time, {num_series}]). "
                f"Received: shape={item.shape}"
            )
        bad = np.flatnonzero(~np.all(np.isfinite(item), axis=1))
        if bad.size:
            raise ValueError(
                f"Series must be finite; series {index} holds NaN or inf at {bad.size} step(s), "
                f"the first at step {bad[0]}. Least squares has no missing values: fill or "
                "interpolate them, or split the series there (a list of arrays is accepted)."
            )
        out.append(item)
    return out


@keras.saving.register_keras_serializable(package="seqzoo")
class AutoregressiveModel(WindowForecaster):
    """AR(p): the next value is a linear function of the last p values ("delay taps").

    y_t = intercept + sum_{i=1..p} coefficients[i-1] @ y_{t-i} + noise, with y_t a vector of
    `num_series` values (one for a univariate series). The weights can be fitted in closed form
    by least squares (`fit_least_squares`) or trained by gradient like any Keras model (the call
    is differentiable); both minimise the same one-step squared error.

    Args:
        order: p, the number of past values the prediction reads (positive int).
        num_series: number of variables of the series (1 for univariate).
        use_intercept: whether to learn a constant term. Defaults to True.
        **kwargs: passed on to `keras.Model` (e.g. `name`, `dtype`).

    Call arguments:
        history: float tensor [B, T, num_series] with T >= order, oldest step first; only the
            last `order` steps are read.

    Returns:
        The one-step-ahead prediction, [B, num_series]. `forecast(history, horizon)` returns
        [B, horizon, num_series] by feeding predictions back.

    Example:
    >>> model = AutoregressiveModel(order=2, num_series=1)
    >>> series = np.sin(np.arange(200) * 0.3)
    >>> model = model.fit_least_squares(series)
    >>> model.forecast(series[None, :, None], horizon=5).shape
    TensorShape([1, 5, 1])
    """

    def __init__(self, order, num_series=1, use_intercept=True, **kwargs):
        super().__init__(**kwargs)
        check_order_and_series(order, num_series)
        self.order = order
        self.num_series = num_series
        self.use_intercept = bool(use_intercept)
        self.build()

    def build(self, input_shape=None):
        # coefficients[i] multiplies the value i+1 steps back, column-vector convention.
        self.coefficients = self.add_weight(
            name="coefficients",
            shape=(self.order, self.num_series, self.num_series),
            initializer="zeros",
        )
        self.intercept = (
            self.add_weight(name="intercept", shape=(self.num_series,), initializer="zeros")
            if self.use_intercept
            else None
        )

    def call(self, history):
        window = self._last_window(history)
        # Step order reversed so lag 1 (the newest value) meets coefficients[0].
        lagged = tf.reverse(window, axis=[1])
        prediction = tf.einsum("bld,lkd->bk", lagged, tf.cast(self.coefficients, lagged.dtype))
        if self.intercept is not None:
            prediction = prediction + tf.cast(self.intercept, lagged.dtype)
        return prediction

    def fit_least_squares(self, series):
        """Sets the weights to the least-squares solution of the one-step prediction problem.

        Args:
            series: observed values: an array [T] (univariate), [T, num_series] or
                [N, T, num_series], or a list of arrays [T_i] / [T_i, num_series] (several
                independent series, possibly of different lengths, pooled into one fit). All
                values must be finite (a ValueError names the first NaN or inf, as statsmodels'
                `MissingDataError` does).

        Returns:
            self, with `coefficients` and `intercept` assigned.
        """
        rows, targets = [], []
        for item in _as_series_list(series, self.num_series):
            if len(item) <= self.order:
                raise ValueError(
                    f"Each series needs more than order={self.order} steps. "
                    f"Received: {len(item)} steps"
                )
            lags = [item[self.order - i - 1 : len(item) - i - 1] for i in range(self.order)]
            design = np.concatenate(lags, axis=1)
            if self.use_intercept:
                design = np.concatenate([np.ones((len(design), 1)), design], axis=1)
            rows.append(design)
            targets.append(item[self.order :])
        solution, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(targets), rcond=None)
        if self.use_intercept:
            self.intercept.assign(solution[0].astype(self.intercept.dtype))
            solution = solution[1:]
        # solution rows are (lag, input variable), columns the predicted variable.
        coefficients = solution.reshape(self.order, self.num_series, self.num_series)
        self.coefficients.assign(
            np.transpose(coefficients, (0, 2, 1)).astype(self.coefficients.dtype)
        )
        return self

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "order": self.order,
                "num_series": self.num_series,
                "use_intercept": self.use_intercept,
            }
        )
        return config
