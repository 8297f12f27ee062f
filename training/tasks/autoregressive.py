"""The `ar` task: an AR(p) model of a (multivariate) series, by least squares or by gradient."""

from __future__ import annotations

import dataclasses

import numpy as np

from seqzoo.training.checked_config import CheckedConfig, at_least, fraction, one_of
from seqzoo.training.data import classic_builtin
from seqzoo.training.tasks._window_forecast_task import WindowForecastTask
from seqzoo.zoo.models.classic.autoregressive_model import AutoregressiveModel
from seqzoo.zoo.models.classic.forecaster_serving_module import ForecasterServingModule

FITS = ("least_squares", "gradient")


@dataclasses.dataclass
class AutoregressiveConfig(CheckedConfig):
    """Model and data settings of the `ar` task.

    Args:
        order: p, the number of past values each prediction reads.
        fit: "least_squares" starts training from the closed-form least-squares solution on the
            training split (the loop's gradient steps then only refine it on minibatches; with
            a small learning rate it stays at the closed form); "gradient" starts from zeros
            and learns by gradient alone.
        horizon: steps ahead of the exported forecast and of the `forecast_mse_h*` metric.
        num_steps: length of the generated series for `--data builtin`.
        validation_fraction: final fraction of the series held out for evaluation.
    """

    order: int = at_least(1, 2)
    fit: str = one_of(FITS, "least_squares")
    horizon: int = at_least(1, 10)
    num_steps: int = at_least(1, 5000)
    validation_fraction: float = fraction(0.2)


class AutoregressiveTask(WindowForecastTask):
    """AR(p) forecasting. Data: builtin:var2 (a VAR(2) in two variables, default), builtin:ar3
    (univariate AR(3)), or file:PATH (numeric CSV, columns are the series). On builtin data,
    `coefficient_error` is the largest difference from the generating coefficients."""

    name = "ar"
    Config = AutoregressiveConfig
    tiny_run = ("train.steps=2", "train.batch_size=8", "model.num_steps=300")

    def builtin_series(self, name):
        return classic_builtin.var_series(name, self.config.num_steps, self.seed)

    def build_model(self):
        model = AutoregressiveModel(self.config.order, num_series=self.train_series.shape[1])
        if self.config.fit == "least_squares":
            model.fit_least_squares(self.train_series)
        return model

    def extra_metrics(self, model):
        if self.true_parameters is None:
            return {}
        true = self.true_parameters["coefficients"]
        learned = np.asarray(model.coefficients)
        order = max(len(true), len(learned))
        padded = np.zeros((2, order) + true.shape[1:])
        padded[0, :len(true)], padded[1, :len(learned)] = true, learned
        return {"coefficient_error": float(np.max(np.abs(padded[0] - padded[1])))}

    def export_module(self, model):
        return ForecasterServingModule(model, self.config.horizon)
