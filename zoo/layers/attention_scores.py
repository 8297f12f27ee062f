"""The part every attention mechanism shares: masked softmax over memory steps and the context."""

from __future__ import annotations

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
