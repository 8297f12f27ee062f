"""The recurrent cells the zoo's encoder, decoder and state bridge are built from."""

from __future__ import annotations

from seqzoo.zoo.layers.gru import GRU
from seqzoo.zoo.layers.lstm import LSTM

CELLS = ("lstm", "gru")

# The recurrent layer of each cell: Keras's, with the zoo's CPU kernel (cuDNN on a GPU).
LAYER_CLASSES = {"lstm": LSTM, "gru": GRU}

# State tensors each cell carries from step to step: LSTM (h, c), GRU h.
_STATES = {"lstm": 2, "gru": 1}


def states_per_cell(cell: str) -> int:
    """Number of state tensors a `cell` ("lstm" or "gru") carries: 2 for LSTM, 1 for GRU."""
    return _STATES[cell]
