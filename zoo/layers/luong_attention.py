"""Multiplicative (Luong) attention, "general" or "dot", of one query over a memory sequence."""

from __future__ import annotations

import keras
from keras import ops

from seqzoo.zoo._checks import check_one_of
from seqzoo.zoo.layers.attention_scores import AttentionBase, weighted_context

SCORES = ("general", "dot")


@keras.saving.register_keras_serializable(package="seqzoo")
class LuongAttention(AttentionBase):
    """Multiplicative attention: `score(q, m_t) = q . W m_t` ("general") or `q . m_t` ("dot").

    The projection `W m` does not depend on the query, so a decoder computes it once per source
    sentence with `project_memory` and reuses it at every step with `attend`; calling the layer
    does both.

    Args:
        score: `"general"` (default, a learned `memory_dim x query_dim` matrix) or `"dot"` (no
            weights; the query and memory sizes must be equal).
        scale: bool, divide scores by `sqrt(query_dim)`. Defaults to False (Luong et al.).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[query, memory]`: query `[batch, query_dim]`, memory `[batch, time, memory_dim]`.
        mask: optional boolean memory mask `[batch, time]` (or a list ending with it), `True` at
            valid steps; masked steps get zero weight.

    Returns:
        `(context, weights)`: context `[batch, memory_dim]`, weights `[batch, time]` summing to 1
        over valid steps.

    Example:
        >>> attention = LuongAttention("dot")
        >>> context, weights = attention([np.ones((2, 6), "float32"),
        ...                               np.ones((2, 7, 6), "float32")])
        >>> tuple(context.shape), tuple(weights.shape)
        ((2, 6), (2, 7))
    """

    def __init__(self, score="general", scale=False, **kwargs):
        super().__init__(**kwargs)
        check_one_of("score", score, SCORES)
        self.score = score
        self.scale = bool(scale)
        self.memory_dense = None

    def build(self, input_shape):
        query_shape, memory_shape = input_shape
        query_dim, memory_dim = query_shape[-1], memory_shape[-1]
        if self.score == "dot" and query_dim != memory_dim:
            raise ValueError(
                "LuongAttention(score='dot') needs equal query and memory sizes; use "
                f"score='general' otherwise. Received: query_dim={query_dim}, "
                f"memory_dim={memory_dim}"
            )
        if self.score == "general":
            self.memory_dense = keras.layers.Dense(query_dim, use_bias=False,
                                                   dtype=self.dtype_policy, name="memory")
            self.memory_dense.build(tuple(memory_shape))
        self._query_dim = query_dim

    def project_memory(self, memory):
        """The memory mapped into the query space, `[batch, time, query_dim]`."""
        return memory if self.memory_dense is None else self.memory_dense(memory)

    def attend(self, query, memory, keys, mask=None):
        """Context and weights of `query` given `keys = project_memory(memory)`."""
        scores = ops.einsum("bd,btd->bt", query, keys)
        if self.scale:
            scores = scores / ops.sqrt(ops.cast(self._query_dim, scores.dtype))
        return weighted_context(scores, memory, mask)

    def get_config(self):
        config = super().get_config()
        config.update({"score": self.score, "scale": self.scale})
        return config
