"""The classic sequence models: memoryless forecasters and dynamical systems with hidden state."""

from seqzoo.zoo.models.classic.autoregressive_model import AutoregressiveModel
from seqzoo.zoo.models.classic.categorical_hmm import CategoricalHMM
from seqzoo.zoo.models.classic.delay_tap_network import DelayTapNetwork
from seqzoo.zoo.models.classic.forecaster_serving_module import ForecasterServingModule
from seqzoo.zoo.models.classic.gaussian_hmm import GaussianHMM
from seqzoo.zoo.models.classic.hmm_serving_module import HMMServingModule
from seqzoo.zoo.models.classic.linear_dynamical_system import LinearDynamicalSystem
from seqzoo.zoo.models.classic.linear_dynamical_system_serving_module import (
    LinearDynamicalSystemServingModule,
)

__all__ = [
    "AutoregressiveModel",
    "CategoricalHMM",
    "DelayTapNetwork",
    "ForecasterServingModule",
    "GaussianHMM",
    "HMMServingModule",
    "LinearDynamicalSystem",
    "LinearDynamicalSystemServingModule",
]
