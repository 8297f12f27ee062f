"""The classic sequence models: memoryless forecasters and dynamical systems with hidden state."""

from zoo.models.classic.autoregressive_model import AutoregressiveModel
from zoo.models.classic.categorical_hmm import CategoricalHMM
from zoo.models.classic.delay_tap_network import DelayTapNetwork
from zoo.models.classic.gaussian_hmm import GaussianHMM
from zoo.models.classic.linear_dynamical_system import LinearDynamicalSystem

__all__ = [
    "AutoregressiveModel",
    "CategoricalHMM",
    "DelayTapNetwork",
    "GaussianHMM",
    "LinearDynamicalSystem",
]
