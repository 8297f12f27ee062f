"""Turns an encoder's final states into a recurrent decoder's initial states."""

from __future__ import annotations

import keras
from keras import ops

from seqzoo.zoo._checks import check_one_of, check_positive_int
from seqzoo.zoo.layers.recurrent_cells import CELLS, states_per_cell

MODES = ("dense", "learned", "zeros")


@keras.saving.register_keras_serializable(package="seqzoo")
class StateBridge(keras.layers.Layer):
    """Maps encoder final states to the initial states of a (unidirectional) decoder stack.

    The encoder and the decoder may differ in everything: direction (a bidirectional encoder
    has forward and backward states), number of layers, cell type and size. In `"dense"` mode
    each decoder state tensor is `tanh(W s + b)` of the concatenation `s` of every encoder
    state, so any encoder layout maps to any decoder layout. `"learned"` ignores the encoder and
    starts every sentence from trainable vectors (a learned initial state); `"zeros"` starts from
    zeros, as a plain Keras RNN does.

    Args:
        units: positive int, size of each decoder state.
        cell: decoder cell, `"lstm"` (states `h, c` per layer) or `"gru"` (`h`).
        num_layers: positive int, number of decoder layers.
        mode: `"dense"` (default), `"learned"` or `"zeros"`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: list of encoder state tensors `[batch, size_i]` (e.g. the `states` returned by
            `BidirectionalEncoder`); sizes may differ.

    Returns:
        A list of `num_layers * states_per_layer` tensors `[batch, units]`, layer by layer, each
        layer's states in Keras order, ready to be the decoder's initial state.

    Example:
        >>> bridge = StateBridge(6, cell="gru", num_layers=3)
        >>> encoder_states = [np.ones((2, 4), "float32")] * 8  # 2-layer bidirectional LSTM
        >>> [tuple(s.shape) for s in bridge(encoder_states)]
        [(2, 6), (2, 6), (2, 6)]
    """

    def __init__(self, units, cell="lstm", num_layers=1, mode="dense", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("units", units)
        check_one_of("cell", cell, CELLS)
        check_positive_int("num_layers", num_layers)
        check_one_of("mode", mode, MODES)
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.mode = mode
        self.num_states = num_layers * states_per_cell(cell)
        # One projection to every state at once, split afterwards.
        self.projection = None
        if mode == "dense":
            self.projection = keras.layers.Dense(units * self.num_states, activation="tanh",
                                                 dtype=self.dtype_policy, name="projection")

    def build(self, input_shape):
        total = sum(int(shape[-1]) for shape in input_shape)
        if self.projection is not None:
            self.projection.build((None, total))
        if self.mode == "learned":
            self.initial_states = self.add_weight(
                shape=(self.num_states, self.units), initializer="zeros", name="initial_states"
            )

    def call(self, inputs):
        inputs = list(inputs)
        if self.mode == "dense":
            joined = ops.concatenate(inputs, axis=-1) if len(inputs) > 1 else inputs[0]
            return ops.split(self.projection(joined), self.num_states, axis=-1)
        batch = ops.shape(inputs[0])[0]
        if self.mode == "learned":
            vectors = ops.cast(self.initial_states, self.compute_dtype)
            return [ops.broadcast_to(vectors[index][None, :], (batch, self.units))
                    for index in range(self.num_states)]
        return [ops.zeros((batch, self.units), self.compute_dtype)] * self.num_states

    def compute_output_shape(self, input_shape):
        return [(input_shape[0][0], self.units)] * self.num_states

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "cell": self.cell, "num_layers": self.num_layers,
                       "mode": self.mode})
        return config
