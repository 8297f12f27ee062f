"""The `delay_tap` task: a feedforward network on the last p values of a nonlinear series."""

from __future__ import annotations

import dataclasses

import numpy as np

from seqzoo.training.checked_config import CheckedConfig, at_least, fraction, positive_sizes
from seqzoo.training.data import classic_builtin
from seqzoo.training.tasks._window_forecast_task import WindowForecastTask, windows
from seqzoo.zoo.models.classic.autoregressive_model import AutoregressiveModel
from seqzoo.zoo.models.classic.delay_tap_network import DelayTapNetwork
from seqzoo.zoo.models.classic.forecaster_serving_module import ForecasterServingModule


@dataclasses.dataclass
class DelayTapConfig(CheckedConfig):
    """Model and data settings of the `delay_tap` task.

    Args:
        order: p, the number of delay taps.
        hidden_units: sizes of the hidden layers, e.g. `--set model.hidden_units=[32,32]`.
        activation: activation of the hidden layers.
        horizon: steps ahead of the exported forecast and of the `forecast_mse_h*` metric.
        num_steps: length of the generated series for `--data builtin`.
        validation_fraction: final fraction of the series held out for evaluation.
    """

    order: int = at_least(1, 2)
    hidden_units: list[int] = positive_sizes([32, 32])
    activation: str = "tanh"
    horizon: int = at_least(1, 10)
    num_steps: int = at_least(1, 3000)
    validation_fraction: float = fraction(0.2)


class DelayTapTask(WindowForecastTask):
    """Nonlinear one-step forecasting. Data: builtin:logistic (the chaotic logistic map with a
    little observation noise, default) or file:PATH (numeric CSV). Evaluation adds `ar_mse`,
    the validation MSE of AR(p) of the same order fitted by least squares, the linear model
    the network should beat."""

    name = "delay_tap"
    Config = DelayTapConfig
    tiny_run = ("train.steps=2", "train.batch_size=8", "model.hidden_units=[4]",
                "model.num_steps=300")

    def builtin_series(self, name):
        return classic_builtin.logistic_map(self.config.num_steps, self.seed), None

    def prepare(self):
        super().prepare()
        order = self.config.order
        baseline = AutoregressiveModel(order, num_series=self.train_series.shape[1])
        baseline.fit_least_squares(self.train_series)
        x, y = windows(self.validation_series, order)
        self._ar_mse = float(np.mean((np.asarray(baseline(x)) - y) ** 2))

    def build_model(self):
        c = self.config
        return DelayTapNetwork(c.order, num_series=self.train_series.shape[1],
                               hidden_units=list(c.hidden_units), activation=c.activation)

    def extra_metrics(self, model):
        return {"ar_mse": self._ar_mse}

    def export_module(self, model):
        return ForecasterServingModule(model, self.config.horizon)
