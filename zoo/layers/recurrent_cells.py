"""The recurrent cells the zoo's encoder, decoder and state bridge are built from."""

from __future__ import annotations

import keras

CELLS = ("lstm", "gru")

# The Keras recurrent layer of each cell (cuDNN-backed on a GPU).
LAYER_CLASSES = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}

# State tensors each cell carries from step to step: LSTM (h, c), GRU h.
_STATES = {"lstm": 2, "gru": 1}


def states_per_cell(cell: str) -> int:
    """Number of state tensors a `cell` ("lstm" or "gru") carries: 2 for LSTM, 1 for GRU."""
    return _STATES[cell]
