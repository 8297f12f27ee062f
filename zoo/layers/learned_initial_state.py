"""A wrapper that starts a recurrent layer from trainable initial states instead of zeros."""

from __future__ import annotations

import keras
from keras import ops


def _state_sizes(cell) -> list[int]:
    sizes = keras.tree.flatten(cell.state_size)
    return [int(size) for size in sizes]


@keras.saving.register_keras_serializable(package="seqzoo")
class LearnedInitialState(keras.layers.Wrapper):
    """Gives a recurrent layer trainable initial states, shared by every sequence of a batch.

    Keras recurrent layers start from zero states. As the lecture suggests, the initial state can
    instead be a parameter: one vector per state tensor of the cell (LSTM: `h_0` and `c_0`; GRU,
    SimpleRNN: `h_0`; `ElmanCell`: the context `c_0`), broadcast over the batch and trained by
    backpropagating the error through time all the way to it.

    Args:
        layer: the wrapped layer, a `keras.layers.RNN` (including `SimpleRNN`, `LSTM`, `GRU` and
            `RNN(ElmanCell(...))`) or a `keras.layers.Bidirectional` around one; it must not be
            `stateful`.
        initializer: initializer of the initial-state vectors. Default: `"zeros"`, so training
            starts from the wrapped layer's usual behaviour.
        **kwargs: passed on to `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, time, features]`.
        mask: optional `[batch, time]` boolean mask, passed on to the wrapped layer.
        training: passed on to the wrapped layer.

    Returns:
        Whatever the wrapped layer returns (its output, plus the final states if it was built with
        `return_state=True`); the mask propagates as the wrapped layer's does.

    Example:

    ```python
    x = np.random.rand(4, 10, 3).astype("float32")
    layer = LearnedInitialState(keras.layers.LSTM(8, return_sequences=True))
    layer(x).shape                        # (4, 10, 8)
    [w.shape for w in layer.initial_states]   # [(8,), (8,)]: h_0 and c_0
    ```
    """

    def __init__(self, layer, initializer="zeros", **kwargs):
        if isinstance(layer, keras.layers.Bidirectional):
            directions = [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.RNN):
            directions = [layer]
        else:
            raise ValueError(
                "LearnedInitialState wraps a keras.layers.RNN (SimpleRNN, LSTM, GRU, RNN(cell)) or "
                f"a Bidirectional around one. Received: layer={layer!r}"
            )
        if any(direction.stateful for direction in directions):
            raise ValueError(
                "LearnedInitialState cannot wrap a stateful layer: its initial state is the state "
                f"carried from the previous batch. Received: layer={layer.name} with stateful=True"
            )
        super().__init__(layer, **kwargs)
        self.initializer = keras.initializers.get(initializer)
        self._sizes = [size for direction in directions for size in _state_sizes(direction.cell)]
        self.supports_masking = True

    def build(self, input_shape=None):
        self.initial_states = [
            self.add_weight(shape=(size,), name=f"initial_state_{i}", initializer=self.initializer)
            for i, size in enumerate(self._sizes)
        ]
        super().build(input_shape)

    def call(self, inputs, mask=None, training=None):
        batch = ops.shape(inputs)[0]
        states = [
            ops.broadcast_to(ops.cast(state, inputs.dtype)[None, :], (batch, size))
            for state, size in zip(self.initial_states, self._sizes)
        ]
        return self.layer(inputs, initial_state=states, mask=mask, training=training)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_mask(self, inputs, mask=None):
        return self.layer.compute_mask(inputs, mask)

    def get_config(self):
        config = super().get_config()
        config["initializer"] = keras.initializers.serialize(self.initializer)
        return config
