"""The `lds` task: a linear dynamical system learned by EM and/or by gradient on the likelihood."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from seqzoo.training.checked_config import CheckedConfig, at_least, fraction, one_of
from seqzoo.training.data import classic_builtin
from seqzoo.training.data.sources import parse_source
from seqzoo.training.tasks.base import Task
from seqzoo.zoo.models.classic.linear_dynamical_system import LinearDynamicalSystem
from seqzoo.zoo.models.classic.linear_dynamical_system_serving_module import (
    LinearDynamicalSystemServingModule,
)

FITS = ("em", "gradient")
EM_WEIGHTS_FILE = "lds_em_weights.npz"


@dataclasses.dataclass
class LinearDynamicalSystemConfig(CheckedConfig):
    """Model and data settings of the `lds` task.

    Args:
        n_dim_state: size of the hidden state.
        fit: "em" runs `em_iterations` of EM on the training split in `prepare` (cached in the
            run's assets, so resume and export reuse it) and starts gradient training from
            there; "gradient" starts from pykalman's defaults (identity matrices, zero mean)
            and maximises the log-likelihood by gradient alone.
        em_iterations: EM iterations when fit="em".
        sequence_length: steps per sequence (file data is cut into sequences of this length).
        num_sequences: number of generated sequences for `--data builtin`.
        validation_fraction: fraction of the sequences held out for evaluation.
    """

    n_dim_state: int = at_least(1, 2)
    fit: str = one_of(FITS, "em")
    em_iterations: int = at_least(1, 20)
    sequence_length: int = at_least(2, 50)
    num_sequences: int = at_least(1, 200)
    validation_fraction: float = fraction(0.2)


def _observed(observations):
    """(observations with missing values zeroed, mask of observed steps)."""
    mask = np.all(np.isfinite(observations), axis=-1)
    return np.where(mask[..., None], observations, 0.0).astype(np.float32), mask


class LinearDynamicalSystemTask(Task):
    """Learns an LDS from sequences of observations; missing values are masked out.

    Data: builtin:oscillator (a damped 2-D rotation observed through a 2-D linear map with
    noise, 5% of the steps missing; default) or file:PATH (numeric CSV, columns are the
    observed variables, empty/nan cells missing), cut into sequences. The loss is the negative
    log-likelihood per observed step; on builtin data evaluation also reports it under the
    generating parameters (`true_nll_per_step`), the value a perfect fit approaches.
    """

    name = "lds"
    Config = LinearDynamicalSystemConfig
    tiny_run = ("train.steps=2", "train.batch_size=8", "model.num_sequences=10",
                "model.sequence_length=20", "model.em_iterations=2")

    initial_weights = None  # fitted by EM when model.fit="em"
    true_nll_per_step = None  # known on builtin data only

    def prepare(self):
        c = self.config
        source = parse_source(self.data)
        true_parameters = None
        if source.kind == "builtin":
            classic_builtin.check_builtin_name(self.name, source.arg)
            observations, _, true_parameters = classic_builtin.lds_sequences(
                c.num_sequences, c.sequence_length, self.seed)
        elif source.kind == "file":
            series = classic_builtin.read_series_file(source.arg)
            observations = classic_builtin.chunk_series(series, c.sequence_length)
        else:
            raise ValueError(
                f"The lds task reads builtin[:oscillator] or file:PATH (a numeric CSV) data. "
                f"Received: {self.data!r}"
            )
        (train,), (validation,) = classic_builtin.split_sequences(
            [observations], c.validation_fraction)
        self.train_observations, self.validation_observations = train, validation
        self.n_dim_obs = observations.shape[-1]
        if true_parameters is not None:
            reference = LinearDynamicalSystem(c.n_dim_state, self.n_dim_obs, dtype="float64")
            if c.n_dim_state == len(true_parameters["initial_state_mean"]):
                for key, value in true_parameters.items():
                    setattr(reference, key, value)
                self.true_nll_per_step = self._nll_per_step(reference, validation)
        if c.fit == "em":
            self.initial_weights = self.cached_weights(EM_WEIGHTS_FILE, self._em_weights)

    def _em_weights(self):
        model = LinearDynamicalSystem(self.config.n_dim_state, self.n_dim_obs, dtype="float64")
        model.em(self.train_observations, n_iter=self.config.em_iterations)
        return model.get_weights()

    @staticmethod
    def _nll_per_step(model, observations):
        values, mask = _observed(observations)
        log_lik = model.filter_and_smooth(values, mask, smooth=False)["log_likelihood"]
        return float(-np.sum(log_lik) / max(mask.sum(), 1))

    def train_dataset(self, global_batch_size, input_context=None):
        dataset = tf.data.Dataset.from_tensor_slices(_observed(self.train_observations))
        return self.shuffled_batches(dataset, len(self.train_observations), global_batch_size,
                                     input_context)

    def build_model(self):
        model = LinearDynamicalSystem(self.config.n_dim_state, self.n_dim_obs)
        if self.initial_weights is not None:
            model.set_weights(self.initial_weights)
        return model

    def compute_loss(self, model, batch, training):
        observations, mask = batch
        steps = tf.maximum(tf.reduce_sum(tf.cast(mask, tf.float32), axis=1), 1.0)
        nll = -tf.cast(model(observations, mask), tf.float32) / steps
        return nll, {"nll_per_step": nll}

    def evaluate(self, model):
        metrics = {"nll_per_step": self._nll_per_step(model, self.validation_observations)}
        if self.true_nll_per_step is not None:
            metrics["true_nll_per_step"] = self.true_nll_per_step
        return metrics

    def export_module(self, model):
        return LinearDynamicalSystemServingModule(model)

    def warmup_inputs(self):
        values, mask = _observed(self.validation_observations[:1])
        # `mask` feeds the masked signature, `lengths` with_lengths; serving_default takes
        # observations only.
        return {"observations": [values[0].tolist()], "mask": [mask[0].tolist()],
                "lengths": [len(mask[0])]}
