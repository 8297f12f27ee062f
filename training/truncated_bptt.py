"""Truncated backpropagation through time: long sequences trained in chunks of U steps."""

from __future__ import annotations

import keras
import tensorflow as tf


def chunk_bounds(length: int, truncation: int | None) -> list[tuple[int, int]]:
    """The `(start, stop)` step ranges of the chunks of `truncation` steps (the last one may be
    shorter) of a sequence of `length` steps; one chunk when `truncation` is None."""
    size = length if truncation is None else truncation
    return [(start, min(start + size, length)) for start in range(0, length, size)]


def chunk_forward(model, inputs, states, training):
    """Runs `model` on one chunk from the `states` the previous chunk ended in (zeros when
    None), with the gradient cut there; returns `(outputs, final_states)`."""
    if states is not None:
        states = [tf.stop_gradient(state) for state in states]
    return model(inputs, initial_state=states, training=training, return_state=True)


def truncated_forward(model, inputs, truncation, states=None, training=False):
    """Runs `model` over whole sequences `[batch, time, ...]` chunk by chunk from `states`,
    cutting the gradient at every chunk boundary; returns `(outputs, final_states)`.

    The outputs are the chunks' outputs joined along time, or the last chunk's for a model that
    outputs its last step only (`return_sequences=False`). Under a `tf.GradientTape` the outputs
    of a chunk depend only on that chunk's inputs and the weights.
    """
    outputs = []
    for start, stop in chunk_bounds(int(inputs.shape[1]), truncation):
        chunk_outputs, states = chunk_forward(model, inputs[:, start:stop], states, training)
        outputs.append(chunk_outputs)
    if not getattr(model, "return_sequences", True):
        return outputs[-1], states
    return tf.concat(outputs, axis=1), states


class TruncatedBPTT:
    """Trains a recurrent model on long sequences chunk by chunk, carrying the state forward.

    The sequence is cut into chunks of `truncation` steps (the last one may be shorter). Each
    chunk starts from the state the previous chunk ended in, computes its loss, backpropagates
    through its own steps only and updates the weights; the carried state is a constant of the
    chunk's loss (`tf.stop_gradient`), so no gradient flows across a chunk boundary. With
    `truncation=None` the whole sequence is one chunk: full backpropagation through time, the
    reference TBPTT is compared with.

    The model must accept `model(inputs, initial_state=states, training=..., return_state=True)`
    and return `(outputs, states)` with `outputs` aligned with the input steps
    (`[batch, time, ...]`), as `ElmanNetwork` does.

    Args:
        model: the recurrent model (see above).
        loss: a `keras.losses.Loss` instance, called as `loss(targets, outputs, sample_weight)`
            on each chunk.
        optimizer: a Keras optimizer (object or name).
        truncation: chunk length U (positive int), or `None` for full backpropagation.

    Example:

    ```python
    net = ElmanNetwork(units=16, output_units=1)
    tbptt = TruncatedBPTT(net, keras.losses.MeanSquaredError(), keras.optimizers.Adam(1e-2),
                          truncation=10)
    states = None
    for x, y in long_sequence_batches:          # x: [batch, 1000, features]
        losses, states = tbptt.train_step(x, y, states)   # 100 updates, state carried
    ```
    """

    def __init__(self, model, loss, optimizer, truncation=None):
        if truncation is not None and (
            not isinstance(truncation, int) or isinstance(truncation, bool) or truncation < 1
        ):
            raise ValueError(
                "TruncatedBPTT expects `truncation` to be a positive integer (steps per chunk) or "
                f"None (full backpropagation through time). Received: truncation={truncation!r}"
            )
        self.model = model
        if not isinstance(loss, keras.losses.Loss):
            raise ValueError(
                "TruncatedBPTT expects `loss` to be a keras.losses.Loss instance (e.g. "
                f"keras.losses.MeanSquaredError()). Received: loss={loss!r}"
            )
        self.loss = loss
        self.optimizer = keras.optimizers.get(optimizer)
        self.truncation = truncation
        self._chunk_step = tf.function(self._loss_and_gradients, reduce_retracing=True)
        self._train_chunk = tf.function(self._update, reduce_retracing=True)

    def chunks(self, length: int) -> list[tuple[int, int]]:
        """The `(start, stop)` step ranges of the chunks of a sequence of `length` steps."""
        return chunk_bounds(length, self.truncation)

    def forward(self, inputs, states=None, training=False):
        """Runs the whole sequence chunk by chunk, cutting the gradient at every chunk boundary.

        Returns `(outputs, final_states)`. Under a `tf.GradientTape` the outputs of a chunk
        depend only on that chunk's inputs and the weights, as in training.
        """
        return truncated_forward(self.model, inputs, self.truncation, states, training)

    def chunk_gradients(self, inputs, targets, states=None, sample_weight=None):
        """Loss and gradients of one chunk from the carried `states`, without updating.

        Returns `(loss, gradients, next_states)`; `gradients` follow
        `model.trainable_variables`, and `next_states` is the state to carry to the next chunk.
        """
        self._ensure_built(inputs)
        return self._chunk_step(inputs, targets, states, sample_weight)

    def train_step(self, inputs, targets, states=None, sample_weight=None):
        """Trains on one batch of long sequences: one weight update per chunk.

        Args:
            inputs: `[batch, time, features]`.
            targets: per-step targets `[batch, time, ...]`, sliced with the inputs.
            states: states to start from (e.g. the end of the previous batch when consecutive
                batches continue the same sequences); zeros when `None`.
            sample_weight: optional per-step weights `[batch, time]` (0 where a step has no
                target).

        Returns:
            `(losses, final_states)`: the loss of every chunk (a list of floats, in order) and
            the state the last chunk ended in.
        """
        self._ensure_built(inputs)
        losses = []
        for start, stop in self.chunks(int(inputs.shape[1])):
            weight = None if sample_weight is None else sample_weight[:, start:stop]
            loss, states = self._train_chunk(
                inputs[:, start:stop], targets[:, start:stop], states, weight
            )
            losses.append(float(loss))
        return losses, states

    def _ensure_built(self, inputs):
        # Variables must exist before the first trace of the tf.function.
        if not self.model.built:
            self.model(inputs[:, :1])
        if not self.optimizer.built:
            self.optimizer.build(self.model.trainable_variables)

    def _loss_and_gradients(self, inputs, targets, states, sample_weight):
        with tf.GradientTape() as tape:
            outputs, next_states = chunk_forward(self.model, inputs, states, training=True)
            loss = self.loss(targets, outputs, sample_weight=sample_weight)
        gradients = tape.gradient(loss, self.model.trainable_variables)
        return loss, gradients, [tf.stop_gradient(state) for state in next_states]

    def _update(self, inputs, targets, states, sample_weight):
        loss, gradients, next_states = self._loss_and_gradients(
            inputs, targets, states, sample_weight
        )
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        return loss, next_states
