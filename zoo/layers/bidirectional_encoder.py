"""A stack of bidirectional LSTM or GRU layers returning sequence outputs and final states."""

from __future__ import annotations

import contextlib

import keras
from keras import ops

from seqzoo.zoo._checks import check_one_of, check_positive_int, check_rate
from seqzoo.zoo.layers.portable_rnn import cudnn_disabled, exporting
from seqzoo.zoo.layers.recurrent_cells import CELLS, LAYER_CLASSES, states_per_cell

MERGE_MODES = ("concat", "sum", "ave", "mul")


@keras.saving.register_keras_serializable(package="seqzoo")
class BidirectionalEncoder(keras.layers.Layer):
    """Stacked bidirectional recurrent encoder (LSTM or GRU).

    Each of the `num_layers` layers runs one recurrent layer forward in time and one backward,
    merges their sequence outputs with `merge_mode`, and feeds the merged sequence (after
    dropout) to the next layer. The recurrent layers are the zoo's `LSTM`/`GRU` (Keras's, with a
    faster CPU kernel): they use cuDNN when a GPU is visible, except while `tf.saved_model.save`
    traces, so exported graphs never hold a `CudnnRNN` op and serve on CPU too.

    Args:
        units: positive int, size of each direction's hidden state.
        cell: `"lstm"` (default) or `"gru"`.
        num_layers: positive int, number of stacked bidirectional layers. Defaults to 1.
        merge_mode: how forward and backward outputs combine: `"concat"` (default, output size
            `2 * units`), `"sum"`, `"ave"` or `"mul"` (output size `units`).
        dropout: float in [0, 1), dropout rate applied to the merged outputs of every layer but
            the last, during training only. Defaults to 0.
        **kwargs: base `keras.layers.Layer` arguments (e.g. `name`, `dtype`).

    Call arguments:
        inputs: float tensor `[batch, time, features]`.
        mask: optional boolean tensor `[batch, time]`, `True` at valid steps. Padding must be on
            the right (valid steps first). Masked steps do not change the recurrent state, the
            final states are those at the last valid step of each direction, and outputs at
            masked steps are zeros. The mask is propagated to `outputs`.
        training: Python bool or None, whether dropout is active.

    Returns:
        A tuple `(outputs, states)`: `outputs` is `[batch, time, D]` with `D = 2 * units` for
        `"concat"` and `units` otherwise; `states` is a flat list, layer by layer, forward then
        backward, each direction's states in Keras order (LSTM: `h, c`; GRU: `h`), each
        `[batch, units]`. An LSTM with 2 layers gives 8 tensors:
        `l0_fwd_h, l0_fwd_c, l0_bwd_h, l0_bwd_c, l1_fwd_h, l1_fwd_c, l1_bwd_h, l1_bwd_c`.

    Example:

    >>> encoder = BidirectionalEncoder(16, cell="lstm", num_layers=2)
    >>> x = np.random.rand(4, 7, 8).astype("float32")
    >>> mask = np.arange(7)[None, :] < np.array([[7], [5], [3], [1]])
    >>> outputs, states = encoder(x, mask=mask)
    >>> outputs.shape, len(states), states[0].shape
    (TensorShape([4, 7, 32]), 8, TensorShape([4, 16]))
    """

    def __init__(self, units, cell="lstm", num_layers=1, merge_mode="concat", dropout=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        check_positive_int("units", units)
        check_one_of("cell", cell, CELLS)
        check_positive_int("num_layers", num_layers)
        check_one_of("merge_mode", merge_mode, MERGE_MODES)
        check_rate("dropout", dropout)
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.merge_mode = merge_mode
        self.dropout = dropout
        self.supports_masking = True

        # One attribute per sublayer: tf.train.Checkpoint does not track layers kept in a list.
        for index in range(num_layers):
            for go_backwards, direction in ((False, "fwd"), (True, "bwd")):
                setattr(self, f"l{index}_{direction}", LAYER_CLASSES[cell](
                    units,
                    return_sequences=True,
                    return_state=True,
                    go_backwards=go_backwards,
                    dtype=self.dtype_policy,
                    name=f"l{index}_{direction}",
                ))
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    @property
    def forward_layers(self):
        """The forward `LSTM`/`GRU` layer of each level, bottom first."""
        return [getattr(self, f"l{index}_fwd") for index in range(self.num_layers)]

    @property
    def backward_layers(self):
        """The backward (`go_backwards=True`) `LSTM`/`GRU` layer of each level, bottom first."""
        return [getattr(self, f"l{index}_bwd") for index in range(self.num_layers)]

    @property
    def states_per_direction(self):
        """Number of state tensors each direction returns: 2 for LSTM (h, c), 1 for GRU (h)."""
        return states_per_cell(self.cell)

    @property
    def output_dim(self):
        return 2 * self.units if self.merge_mode == "concat" else self.units

    def build(self, input_shape):
        shape = tuple(input_shape)
        for forward, backward in zip(self.forward_layers, self.backward_layers):
            forward.build(shape)
            backward.build(shape)
            shape = shape[:-1] + (self.output_dim,)

    def _merge(self, forward, backward):
        if self.merge_mode == "concat":
            return ops.concatenate([forward, backward], axis=-1)
        if self.merge_mode == "sum":
            return forward + backward
        if self.merge_mode == "ave":
            return (forward + backward) / 2.0
        return forward * backward

    def call(self, inputs, mask=None, training=None):
        portable = cudnn_disabled(self) if exporting() else contextlib.nullcontext()
        with portable:
            return self._encode(inputs, mask, training)

    def _encode(self, inputs, mask, training):
        sequence = inputs
        step_mask = None if mask is None else ops.cast(mask, self.compute_dtype)[:, :, None]
        states = []
        for index, (forward, backward) in enumerate(zip(self.forward_layers,
                                                        self.backward_layers)):
            if index > 0:
                sequence = self.dropout_layer(sequence, training=training)
            forward_out, *forward_states = forward(sequence, mask=mask, training=training)
            backward_out, *backward_states = backward(sequence, mask=mask, training=training)
            # go_backwards yields outputs in reversed time order; realign them with the inputs.
            backward_out = ops.flip(backward_out, axis=1)
            sequence = self._merge(forward_out, backward_out)
            if step_mask is not None:
                # Keras RNNs repeat the last valid output over padding; the contract is zeros.
                sequence = sequence * step_mask
            states.extend(forward_states)
            states.extend(backward_states)
        return sequence, states

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return mask, [None] * (2 * self.num_layers * self.states_per_direction)

    def compute_output_shape(self, input_shape):
        batch, time = input_shape[0], input_shape[1]
        state_shapes = [(batch, self.units)] * (2 * self.num_layers * self.states_per_direction)
        return (batch, time, self.output_dim), state_shapes

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "cell": self.cell,
            "num_layers": self.num_layers,
            "merge_mode": self.merge_mode,
            "dropout": self.dropout,
        })
        return config
