"""The Elman cell of the lecture: hidden units and separate context units."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="seqzoo")
class ElmanCell(keras.layers.Layer):
    """One step of an Elman network with separate hidden and context units.

    The lecture writes the network with two groups of recurrent units that both read the
    previous *context*:

        h_t = g(W x_t + V c_{t-1} + b)          hidden units
        c_t = g_c(W_c x_t + V_c c_{t-1} + b_c)  context units

    and an output unit that reads both groups, `y_t = g_out(w2 . h_t + v2 . c_t)`. The cell
    therefore outputs the concatenation `[h_t, c_t]`: a `Dense` layer on top of it is exactly the
    lecture's output unit, with `w2` the rows of its kernel facing `h_t` and `v2` those facing
    `c_t` (see `seqzoo.zoo.models.recurrent.ElmanNetwork`). Only `c_t` is carried to the next step, so the
    recurrent state is the context vector alone.

    Args:
        units: number of hidden units `h` (positive int).
        context_units: number of context units `c` (positive int); defaults to `units`.
        activation: activation `g` of the hidden units. Default: `"tanh"`.
        context_activation: activation `g_c` of the context units. Default: `"tanh"`.
        use_bias: whether both groups add a bias. Default: `True`.
        kernel_initializer: initializer of `W` and `W_c`. Default: `"glorot_uniform"`.
        recurrent_initializer: initializer of `V` and `V_c`. Default: `"orthogonal"`.
        bias_initializer: initializer of both biases. Default: `"zeros"`.
        **kwargs: passed on to `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, features]`, the input `x_t` of one step.
        states: a list holding the previous context `c_{t-1}`, `[batch, context_units]`.
        training: unused; accepted for the `keras.layers.RNN` cell protocol.

    Returns:
        `(output, [c_t])` where `output` is `[batch, units + context_units]`, the concatenation
        `[h_t, c_t]`.

    Example:

    ```python
    x = np.random.rand(4, 10, 3).astype("float32")
    rnn = keras.layers.RNN(ElmanCell(8, context_units=5), return_sequences=True,
                           return_state=True)
    outputs, context = rnn(x)   # outputs: (4, 10, 13); context: (4, 5)
    bi = keras.layers.Bidirectional(keras.layers.RNN(ElmanCell(8)))
    bi(x).shape                 # (4, 32)
    ```
    """

    def __init__(
        self,
        units,
        context_units=None,
        activation="tanh",
        context_activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        context_units = units if context_units is None else context_units
        for name, value in (("units", units), ("context_units", context_units)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"ElmanCell expects `{name}` to be a positive integer. "
                    f"Received: {name}={value!r}"
                )
        super().__init__(**kwargs)
        self.units = units
        self.context_units = context_units
        self.activation = keras.activations.get(activation)
        self.context_activation = keras.activations.get(context_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = context_units
        self.output_size = units + context_units

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(features, self.units), name="kernel", initializer=self.kernel_initializer
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.context_units, self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
        )
        self.context_kernel = self.add_weight(
            shape=(features, self.context_units),
            name="context_kernel",
            initializer=self.kernel_initializer,
        )
        self.context_recurrent_kernel = self.add_weight(
            shape=(self.context_units, self.context_units),
            name="context_recurrent_kernel",
            initializer=self.recurrent_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,), name="bias", initializer=self.bias_initializer
            )
            self.context_bias = self.add_weight(
                shape=(self.context_units,), name="context_bias", initializer=self.bias_initializer
            )
        else:
            self.bias = None
            self.context_bias = None

    def call(self, inputs, states, training=False):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        hidden = ops.matmul(inputs, self.kernel) + ops.matmul(previous, self.recurrent_kernel)
        context = ops.matmul(inputs, self.context_kernel) + ops.matmul(
            previous, self.context_recurrent_kernel
        )
        if self.use_bias:
            hidden = hidden + self.bias
            context = context + self.context_bias
        hidden = self.activation(hidden)
        context = self.context_activation(context)
        output = ops.concatenate([hidden, context], axis=-1)
        return output, [context] if isinstance(states, (list, tuple)) else context

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.context_units), dtype=self.compute_dtype)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "context_units": self.context_units,
                "activation": keras.activations.serialize(self.activation),
                "context_activation": keras.activations.serialize(self.context_activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
