"""The lecture's Elman network: an Elman cell unrolled over time and an output unit reading it."""

from __future__ import annotations

import keras

from seqzoo.zoo.layers.elman_cell import ElmanCell


@keras.saving.register_keras_serializable(package="seqzoo")
class ElmanNetwork(keras.Model):
    """An Elman recurrent network with hidden units, context units and an output layer.

    At every step the `ElmanCell` computes the hidden units `h_t = g(W x_t + V c_{t-1})` and the
    context units `c_t = g(W_c x_t + V_c c_{t-1})`; the output layer reads both,
    `y_t = g_out(w2 . h_t + v2 . c_t + b2)`, which is a `Dense` layer on `[h_t, c_t]`. The context
    is the state carried from step to step; `call` accepts it and can return it, which is what
    truncated backpropagation through time needs (`seqzoo.training.truncated_bptt`).

    Args:
        units: number of hidden units (positive int).
        output_units: number of output units (positive int).
        context_units: number of context units; defaults to `units`.
        output_activation: activation `g_out` of the output layer (e.g. `None` for regression,
            `"softmax"` for classes). Default: `None`.
        return_sequences: whether to output `y_t` at every step (`[batch, time, output_units]`)
            or only at the last one (`[batch, output_units]`). Default: `True`.
        **kwargs: passed on to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: `[batch, time, features]`.
        initial_state: optional context `c_0`, `[batch, context_units]` (or a one-element list);
            zeros when omitted.
        mask: optional `[batch, time]` boolean mask of valid steps (the state is carried through
            masked steps unchanged).
        training: passed on to the layers.
        return_state: when true, also return the final context as a one-element list.

    Returns:
        The outputs, or `(outputs, [c_T])` when `return_state=True`.

    Example:

    ```python
    net = ElmanNetwork(units=16, output_units=1)
    x = np.random.rand(8, 30, 2).astype("float32")
    y = net(x)                                        # (8, 30, 1)
    y, [c] = net(x, return_state=True)                # c: (8, 16)
    y2, _ = net(x2, initial_state=c, return_state=True)   # continues where x ended
    ```
    """

    def __init__(self, units, output_units, context_units=None, output_activation=None,
                 return_sequences=True, **kwargs):
        if not isinstance(output_units, int) or isinstance(output_units, bool) or output_units < 1:
            raise ValueError(
                "ElmanNetwork expects `output_units` to be a positive integer. "
                f"Received: output_units={output_units!r}"
            )
        super().__init__(**kwargs)
        # Layers.
        self.cell = ElmanCell(units, context_units=context_units, name="elman_cell")
        self.recurrent = keras.layers.RNN(
            self.cell, return_sequences=return_sequences, return_state=True, name="recurrent"
        )
        self.readout = keras.layers.Dense(output_units, activation=output_activation,
                                          name="readout")
        # Config.
        self.units = units
        self.output_units = output_units
        self.context_units = self.cell.context_units
        self.output_activation = keras.activations.get(output_activation)
        self.return_sequences = bool(return_sequences)

    def call(self, inputs, initial_state=None, mask=None, training=None, return_state=False):
        if initial_state is not None and not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        features, context = self.recurrent(
            inputs, initial_state=initial_state, mask=mask, training=training
        )
        outputs = self.readout(features)
        return (outputs, [context]) if return_state else outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "output_units": self.output_units,
                "context_units": self.context_units,
                "output_activation": keras.activations.serialize(self.output_activation),
                "return_sequences": self.return_sequences,
            }
        )
        return config
