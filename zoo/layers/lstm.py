"""Keras's LSTM layer with a faster CPU kernel (same weights, config and results)."""

from __future__ import annotations

import keras

from seqzoo.zoo.layers.hoisted_recurrence import hoisted_inner_loop


@keras.saving.register_keras_serializable(package="seqzoo")
class LSTM(keras.layers.LSTM):
    """Long Short-Term Memory layer: `keras.layers.LSTM` with a faster CPU kernel.

    A drop-in replacement: the same arguments, weights (`lstm_cell/kernel`,
    `lstm_cell/recurrent_kernel`, `lstm_cell/bias`, gate order i, f, c, o), config and outputs,
    so checkpoints and `.keras` files of either load into the other. Only the kernel differs:

    - on a GPU, with arguments cuDNN accepts, Keras's cuDNN kernel, as in `keras.layers.LSTM`
      (`seqzoo.zoo.layers.portable_rnn.cudnn_disabled` keeps it out of SavedModels);
    - otherwise, with the default activations, `use_bias=True`, no `recurrent_dropout` and no
      `unroll`, the hoisted kernel of `seqzoo.zoo.layers.hoisted_recurrence`: the input
      projection of all steps as one matrix product before the time loop, and a hand-written
      backward pass whose weight gradients are one matrix product each; in training
      (`training=True`) on inputs of static shape its loops run XLA-compiled, one chain per
      batch slice of at least 16 examples, as many as there are cores, while exports and
      inference keep standard TensorFlow ops;
    - in any other case, Keras's generic loop.

    The kernel chosen is logged once per process (logger
    `seqzoo.zoo.layers.hoisted_recurrence`, level INFO).

    Args:
        units: positive int, dimensionality of the output space.
        **kwargs: every other argument of `keras.layers.LSTM` (`activation`, `dropout`,
            `return_sequences`, `return_state`, `go_backwards`, `use_cudnn`, ...), same
            defaults.

    Call arguments:
        sequences: float tensor `[batch, time, features]`.
        initial_state: optional list `[h, c]` of `[batch, units]` tensors; zeros by default.
        mask: optional boolean tensor `[batch, time]`, `True` at valid steps, any pattern:
            masked steps leave the state unchanged and repeat the previous output (zeros with
            `zero_output_for_mask=True`), as in Keras.
        training: Python bool or None, whether `dropout` is active.

    Example:

    >>> lstm = LSTM(4, return_sequences=True, return_state=True)
    >>> outputs, h, c = lstm(np.random.rand(32, 10, 8).astype("float32"))
    >>> outputs.shape, h.shape, c.shape
    (TensorShape([32, 10, 4]), TensorShape([32, 4]), TensorShape([32, 4]))
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        return hoisted_inner_loop(self, super().inner_loop, sequences, initial_state, mask,
                                  training)
