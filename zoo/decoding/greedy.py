"""Greedy decoding: at every step take the most likely token."""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.decoding.common import check_decode_args, run_decoder


def greedy_decode(step_fn, initial_state, start_tokens, end_token, max_length, pad_token=0):
    """Decodes by taking the arg-max token at every step, in pure TF ops.

    Args:
        step_fn: `step_fn(tokens [B] int32, state) -> (logits [B, V], new_state)`; `state` is any
            nested structure of tensors whose leading dimension is the batch.
        initial_state: the state before the first step (nested structure, batch-major).
        start_tokens: int32 [B], the first input of every sequence.
        end_token: int, the token that ends a sequence.
        max_length: int, the most tokens generated per sequence (the end token counts).
        pad_token: int written after the end token.

    Returns:
        `(tokens [B, L] int32, lengths [B] int32, scores [B] float32)`: `L <= max_length` is the
        number of steps run (decoding stops once every sequence has ended); `tokens` holds the
        end token where it was generated and `pad_token` after it; `lengths` counts the tokens
        up to and including the end token; `scores` is the sum of the log-probabilities of the
        chosen tokens.

    Example:
        >>> logits = tf.math.log([[0.1, 0.2, 0.7]])
        >>> step_fn = lambda tokens, state: (tf.tile(logits, [tf.shape(tokens)[0], 1]), state)
        >>> tokens, lengths, scores = greedy_decode(step_fn, (), tf.zeros([1], tf.int32),
        ...                                         end_token=2, max_length=5)
        >>> tokens.numpy().tolist(), lengths.numpy().tolist()
        ([[2]], [1])
    """
    check_decode_args(end_token=end_token, max_length=max_length)

    def choose(logits, step):
        del step
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        tokens = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        return tokens, tf.gather(log_probs, tokens, axis=1, batch_dims=1)

    return run_decoder(step_fn, initial_state, start_tokens, end_token, max_length, pad_token,
                       choose)
