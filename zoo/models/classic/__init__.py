"""The classic sequence models: memoryless forecasters and dynamical systems with hidden state."""

from zoo.models.classic.autoregressive_model import AutoregressiveModel
from zoo.models.classic.categorical_hmm import CategoricalHMM
from zoo.models.classic.delay_tap_network import DelayTapNetwork
from zoo.models.classic.forecaster_serving_module import ForecasterServingModule
from zoo.models.classic.gaussian_hmm import GaussianHMM
from zoo.models.classic.hmm_serving_module import HMMServingModule
from zoo.models.classic.linear_dynamical_system import LinearDynamicalSystem
from zoo.models.classic.linear_dynamical_system_serving_module import (
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
