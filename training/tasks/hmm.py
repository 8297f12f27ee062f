"""The `hmm` task: a hidden Markov model learned by Baum–Welch and/or by gradient."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import tensorflow as tf

from seqzoo.training.checked_config import CheckedConfig, at_least, fraction, one_of
from seqzoo.training.data import classic_builtin
from seqzoo.training.data.sources import parse_source
from seqzoo.training.tasks.base import Task
from seqzoo.zoo.models.classic.categorical_hmm import CategoricalHMM
from seqzoo.zoo.models.classic.gaussian_hmm import GaussianHMM
from seqzoo.zoo.models.classic.hmm_serving_module import HMMServingModule

EMISSIONS = ("categorical", "gaussian")
FITS = ("baum_welch", "gradient")
INITIAL_WEIGHTS_FILE = "hmm_initial_weights.npz"
_BUILTIN_EMISSION = {"casino": "categorical", "regimes": "gaussian"}
_MAX_PERMUTED_STATES = 7  # Viterbi accuracy tries every state relabelling up to this many


@dataclasses.dataclass
class HMMConfig(CheckedConfig):
    """Model and data settings of the `hmm` task.

    Args:
        emission: "categorical" (integer symbols) or "gaussian" (real vectors, diagonal
            covariances).
        n_components: number of hidden states.
        fit: "baum_welch" runs `baum_welch_iterations` of Baum–Welch on the training split in
            `prepare` (cached in the run's assets, so resume and export reuse it) and starts
            gradient training from there; "gradient" starts from the data-based initialisation
            and maximises the log-likelihood by gradient alone.
        baum_welch_iterations: maximum Baum–Welch iterations when fit="baum_welch".
        sequence_length: steps per sequence (file data is cut into sequences of this length).
        num_sequences: number of generated sequences for `--data builtin`.
        validation_fraction: fraction of the sequences held out for evaluation.
    """

    emission: str = one_of(EMISSIONS, "categorical")
    n_components: int = at_least(1, 2)
    fit: str = one_of(FITS, "baum_welch")
    baum_welch_iterations: int = at_least(1, 50)
    sequence_length: int = at_least(1, 100)
    num_sequences: int = at_least(1, 200)
    validation_fraction: float = fraction(0.2)


def best_permutation_accuracy(predicted: np.ndarray, true: np.ndarray, n_components: int):
    """Fraction of equal labels under the relabelling of predicted states that agrees best."""
    k = max(n_components, int(true.max()) + 1)
    return max(
        float(np.mean(np.asarray(perm)[predicted] == true))
        for perm in itertools.permutations(range(k))
    )


class HMMTask(Task):
    """Learns an HMM from sequences. Data: builtin:casino (the dishonest casino: a fair and a
    loaded die, categorical; default for emission=categorical), builtin:regimes (three Gaussian
    regimes in 1-D; default for emission=gaussian), or file:PATH (numeric CSV: one column of
    integer symbols for categorical, the observed variables for gaussian), cut into sequences.
    The loss is the negative log-likelihood per step. On builtin data evaluation also reports
    the log-likelihood per step under the generating parameters and the Viterbi path's
    accuracy against the true hidden states (best relabelling of the states)."""

    name = "hmm"
    Config = HMMConfig
    tiny_run = ("train.steps=2", "train.batch_size=8", "model.num_sequences=10",
                "model.sequence_length=20", "model.baum_welch_iterations=2")

    true_log_likelihood_per_step = None  # known on builtin data only

    def _load(self):
        c = self.config
        source = parse_source(self.data)
        if source.kind == "builtin":
            name = source.arg or ("casino" if c.emission == "categorical" else "regimes")
            name = classic_builtin.check_builtin_name(self.name, name)
            if _BUILTIN_EMISSION[name] != c.emission:
                raise ValueError(
                    f"builtin:{name} has {_BUILTIN_EMISSION[name]} emissions; set "
                    f"model.emission={_BUILTIN_EMISSION[name]} or pick the other dataset."
                )
            return classic_builtin.hmm_sequences(name, c.num_sequences, c.sequence_length,
                                                 self.seed)
        if source.kind == "file":
            series = classic_builtin.read_series_file(source.arg)
            if np.isnan(series).any():
                raise ValueError(f"{source.arg}: the hmm task needs every cell filled.")
            if c.emission == "categorical":
                if series.shape[1] != 1 or np.any(series != np.round(series)) or series.min() < 0:
                    raise ValueError(
                        f"{source.arg}: categorical emissions need one column of non-negative "
                        "integer symbols."
                    )
                series = series.astype(np.int32)
            return classic_builtin.chunk_series(series, c.sequence_length), None, None
        raise ValueError(
            "The hmm task reads builtin[:casino|:regimes] or file:PATH (a numeric CSV) data. "
            f"Received: {self.data!r}"
        )

    def _new_model(self, **kwargs):
        c = self.config
        if c.emission == "categorical":
            return CategoricalHMM(c.n_components, self.n_features, **kwargs)
        return GaussianHMM(c.n_components, self.n_features, **kwargs)

    def prepare(self):
        c = self.config
        observations, states, true_parameters = self._load()
        if c.emission == "categorical":
            observations = observations.reshape(observations.shape[:2])
            self.n_features = int(observations.max()) + 1
        else:
            observations = observations.astype(np.float32)
            self.n_features = observations.shape[-1]
        arrays = [observations] + ([states] if states is not None else [])
        train, validation = classic_builtin.split_sequences(arrays, c.validation_fraction)
        self.train_observations, self.validation_observations = train[0], validation[0]
        self.validation_states = validation[1] if states is not None else None
        if true_parameters is not None and c.n_components == len(true_parameters["startprob"]):
            reference = self._new_model()
            reference.startprob_ = true_parameters["startprob"]
            reference.transmat_ = true_parameters["transmat"]
            if c.emission == "categorical":
                reference.emissionprob_ = true_parameters["emissionprob"]
            else:
                reference.means_ = true_parameters["means"]
                reference.covars_ = true_parameters["variances"]
            self.true_log_likelihood_per_step = self._log_likelihood_per_step(reference)
        self.initial_weights = self.cached_weights(INITIAL_WEIGHTS_FILE, self._initial_weights)

    def _initial_weights(self):
        """Data-based starting parameters, refined by Baum–Welch when fit="baum_welch"."""
        c, k = self.config, self.config.n_components
        rng = np.random.default_rng(self.seed)
        model = self._new_model(n_iter=c.baum_welch_iterations, tol=1e-4)
        model.startprob_ = np.full(k, 1.0 / k)
        model.transmat_ = (np.full((k, k), 0.2 / (k - 1)) + (0.8 - 0.2 / (k - 1)) * np.eye(k)
                           if k > 1 else np.ones((1, 1)))
        data = self.train_observations.reshape(-1, *self.train_observations.shape[2:])
        if c.emission == "categorical":
            frequencies = np.bincount(data, minlength=self.n_features) / len(data)
            # Random perturbations of the symbol frequencies break the symmetry between states.
            noise = rng.dirichlet(np.ones(self.n_features), size=k)
            model.emissionprob_ = 0.5 * frequencies + 0.5 * noise
        else:
            quantiles = (np.arange(k) + 0.5) / k
            model.means_ = np.quantile(data, quantiles, axis=0)
            model.covars_ = np.tile(np.var(data, axis=0), (k, 1))
        if c.fit == "baum_welch":
            model.fit(data, [self.train_observations.shape[1]] * len(self.train_observations))
        return model.get_weights()

    def _log_likelihood_per_step(self, model):
        observations = self.validation_observations
        return float(np.sum(model(observations)) / observations.shape[0] / observations.shape[1])

    def train_dataset(self, global_batch_size, input_context=None):
        dataset = tf.data.Dataset.from_tensor_slices(self.train_observations)
        return self.shuffled_batches(dataset, len(self.train_observations), global_batch_size,
                                     input_context)

    def build_model(self):
        model = self._new_model()
        model.set_weights(self.initial_weights)
        return model

    def compute_loss(self, model, batch, training):
        steps = tf.cast(tf.shape(batch)[1], tf.float32)
        nll = -tf.cast(model(batch), tf.float32) / steps
        return nll, {"nll_per_step": nll}

    def evaluate(self, model):
        metrics = {"log_likelihood_per_step": self._log_likelihood_per_step(model)}
        if self.true_log_likelihood_per_step is not None:
            metrics["true_log_likelihood_per_step"] = self.true_log_likelihood_per_step
        if self.validation_states is not None and self.config.n_components <= _MAX_PERMUTED_STATES:
            _, path = model.viterbi(self.validation_observations)
            metrics["viterbi_accuracy"] = best_permutation_accuracy(
                np.asarray(path).ravel(), self.validation_states.ravel(), self.config.n_components)
        return metrics

    def export_module(self, model):
        return HMMServingModule(model)

    def warmup_inputs(self):
        observations = self.validation_observations[0]
        # `lengths` feeds the with_lengths signature; serving_default takes observations only.
        return {"observations": [observations.tolist()], "lengths": [len(observations)]}
