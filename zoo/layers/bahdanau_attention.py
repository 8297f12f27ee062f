"""Additive (Bahdanau) attention of one query vector over a memory sequence."""

from __future__ import annotations

import keras
from keras import ops

from seqzoo.zoo._checks import check_positive_int
from seqzoo.zoo.layers.attention_scores import AttentionBase, weighted_context


@keras.saving.register_keras_serializable(package="seqzoo")
class BahdanauAttention(AttentionBase):
    """Additive attention: `score(q, m_t) = v . tanh(W_q q + W_m m_t + b)`.

    The memory projection `W_m m + b` does not depend on the query, so a decoder computes it once
    per source sentence with `project_memory` and reuses it at every step with `attend`;
    calling the layer does both.

    Args:
        units: positive int, size of the hidden layer inside the score.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[query, memory]`: query `[batch, query_dim]`, memory `[batch, time, memory_dim]`.
        mask: optional boolean memory mask `[batch, time]` (or a list ending with it), `True` at
            valid steps; masked steps get zero weight.

    Returns:
        `(context, weights)`: context `[batch, memory_dim]`, weights `[batch, time]` summing to 1
        over valid steps.

    Example:
        >>> attention = BahdanauAttention(8)
        >>> context, weights = attention([np.ones((2, 5), "float32"),
        ...                               np.ones((2, 7, 6), "float32")])
        >>> tuple(context.shape), tuple(weights.shape)
        ((2, 6), (2, 7))
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("units", units)
        self.units = units
        self.query_dense = keras.layers.Dense(units, use_bias=False, dtype=self.dtype_policy,
                                              name="query")
        self.memory_dense = keras.layers.Dense(units, dtype=self.dtype_policy, name="memory")
        self.score_dense = keras.layers.Dense(1, use_bias=False, dtype=self.dtype_policy,
                                              name="score")

    def build(self, input_shape):
        query_shape, memory_shape = input_shape
        self.query_dense.build(tuple(query_shape))
        self.memory_dense.build(tuple(memory_shape))
        self.score_dense.build((None, None, self.units))

    def project_memory(self, memory):
        """The query-independent part of the scores, `[batch, time, units]`."""
        return self.memory_dense(memory)

    def attend(self, query, memory, keys, mask=None):
        """Context and weights of `query` given `keys = project_memory(memory)`."""
        hidden = ops.tanh(self.query_dense(query)[:, None, :] + keys)
        scores = ops.squeeze(self.score_dense(hidden), axis=-1)
        return weighted_context(scores, memory, mask)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config
