"""The part every attention mechanism shares: masked softmax over memory steps, the context,
and the layer plumbing around `project_memory` and `attend`."""

from __future__ import annotations

import keras
from keras import ops

# Large but finite, so a row whose steps are all masked gives uniform weights instead of NaN.
MASKED_SCORE = -1e9


def split_memory_mask(mask):
    """The memory mask from a layer's `mask` argument: an array, or a list ending with it."""
    if isinstance(mask, (list, tuple)):
        return mask[-1]
    return mask


def weighted_context(scores, memory, mask=None):
    """Softmax of `scores` [B, T] over valid memory steps and the weighted sum of `memory`.

    Returns `(context [B, D], weights [B, T])`; masked steps get weight 0.
    """
    if mask is not None:
        scores = ops.where(ops.cast(mask, "bool"), scores, ops.cast(MASKED_SCORE, scores.dtype))
    weights = ops.softmax(scores, axis=-1)
    context = ops.einsum("bt,btd->bd", weights, memory)
    return context, weights


class AttentionBase(keras.layers.Layer):
    """What Bahdanau and Luong attention share: called on `[query, memory]`, they project the
    memory once (`project_memory`) and score the query against it (`attend`), returning
    `(context [B, D], weights [B, T])`. Subclasses implement those two methods."""

    def project_memory(self, memory):
        raise NotImplementedError

    def attend(self, query, memory, keys, mask=None):
        raise NotImplementedError

    def call(self, inputs, mask=None):
        query, memory = inputs
        return self.attend(query, memory, self.project_memory(memory), split_memory_mask(mask))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        query_shape, memory_shape = input_shape
        return (query_shape[0], memory_shape[-1]), (query_shape[0], memory_shape[1])
