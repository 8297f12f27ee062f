"""What the `ar` and `delay_tap` tasks share: one series, windows of `order` values -> the next.

The series is split in time (the last `validation_fraction` is validation). Training examples
are all windows of the training part; the loss is the one-step squared error. Evaluation
reports the one-step MSE, the MSE of the persistence forecast (repeat the last value) as a
yardstick, and the MSE of recursive forecasts `horizon` steps ahead.
"""

from __future__ import annotations

import abc

import numpy as np
import tensorflow as tf

from seqzoo.training.data import classic_builtin
from seqzoo.training.data.sources import parse_source
from seqzoo.training.tasks.base import Task

_FORECAST_ORIGINS = 200  # validation start points of the h-step forecast metric


def windows(series: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """All (window [order, D], next value [D]) pairs of a series [T, D], as float32."""
    index = np.arange(order)[None, :] + np.arange(len(series) - order)[:, None]
    return series[index].astype(np.float32), series[order:].astype(np.float32)


class WindowForecastTask(Task):
    """Base of the memoryless forecasting tasks; subclasses load the builtin series and build
    the model (and may add metrics with `extra_metrics`)."""

    true_parameters = None  # known on builtin data only

    @abc.abstractmethod
    def builtin_series(self, name: str) -> tuple[np.ndarray, dict | None]:
        """The builtin series [T, D] called `name` and its true parameters (or None)."""

    def extra_metrics(self, model) -> dict[str, float]:
        return {}

    def prepare(self):
        source = parse_source(self.data)
        if source.kind == "builtin":
            name = classic_builtin.check_builtin_name(self.name, source.arg)
            series, self.true_parameters = self.builtin_series(name)
        elif source.kind == "file":
            series = classic_builtin.read_series_file(source.arg)
            if np.isnan(series).any():
                raise ValueError(
                    f"The {self.name} task needs a complete series; {source.arg} has empty or "
                    "nan cells (the lds task handles missing values)."
                )
        else:
            raise ValueError(
                f"The {self.name} task reads builtin[:NAME] or file:PATH (a numeric CSV) data. "
                f"Received: {self.data!r}"
            )
        split = int(round(len(series) * (1.0 - self.config.validation_fraction)))
        needed = self.config.order + self.config.horizon + 1
        if split < needed or len(series) - split < needed:
            raise ValueError(
                f"The series ({len(series)} steps) is too short: both splits need at least "
                f"order + horizon + 1 = {needed} steps."
            )
        self.train_series, self.validation_series = series[:split], series[split:]

    def train_dataset(self, global_batch_size, input_context=None):
        x, y = windows(self.train_series, self.config.order)
        dataset = tf.data.Dataset.from_tensor_slices((x, y))
        return self.shuffled_batches(dataset, len(x), global_batch_size, input_context)

    def compute_loss(self, model, batch, training):
        history, target = batch
        error = model(history, training=training) - target
        squared = tf.reduce_mean(tf.square(error), axis=-1)
        return squared, {"abs_error": tf.reduce_mean(tf.abs(error), axis=-1)}

    def evaluate(self, model):
        order, horizon = self.config.order, self.config.horizon
        x, y = windows(self.validation_series, order)
        predictions = np.asarray(model(x))
        metrics = {
            "mse": float(np.mean((predictions - y) ** 2)),
            "persistence_mse": float(np.mean((x[:, -1] - y) ** 2)),
        }
        series = self.validation_series.astype(np.float32)
        last = len(series) - horizon
        origins = np.unique(np.linspace(order, last, _FORECAST_ORIGINS).astype(int))
        history = np.stack([series[t - order:t] for t in origins])
        truth = np.stack([series[t:t + horizon] for t in origins])
        forecasts = np.asarray(model.forecast(history, horizon))
        metrics[f"forecast_mse_h{horizon}"] = float(np.mean((forecasts - truth) ** 2))
        metrics.update(self.extra_metrics(model))
        return metrics

    def warmup_inputs(self):
        length = 2 * self.config.order
        return {"observations": [self.validation_series[:length].astype(np.float32).tolist()]}
