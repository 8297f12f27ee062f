"""The decoding loop shared by greedy and sampling decoders, and argument checks."""

from __future__ import annotations

import tensorflow as tf


def check_decode_args(end_token, max_length, **extra):
    """Raises ValueError for arguments users can get wrong; `extra`: name -> (value, minimum)."""
    if not isinstance(end_token, int) or end_token < 0:
        raise ValueError(f"end_token must be a non-negative int. Received: end_token={end_token}")
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be an int >= 1. Received: max_length={max_length}")
    for name, (value, minimum) in extra.items():
        if not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}. Received: {name}={value}")


def batch_invariant(tensor):
    """Shape invariant of a loop variable whose leading (batch) dimension may change."""
    return tf.TensorShape([None] + tensor.shape[1:].as_list())


def run_decoder(step_fn, initial_state, start_tokens, end_token, max_length, pad_token, choose):
    """Runs `step_fn` one token at a time until every sequence ended or `max_length` is reached.

    `choose(logits [B, V], step) -> (tokens [B] int32, log_probs [B] float32)` picks the next
    token of every sequence; it is what differs between greedy decoding and sampling.
    Returns `(tokens [B, L], lengths [B], scores [B])` as documented in `greedy_decode`.
    """
    start_tokens = tf.convert_to_tensor(start_tokens, tf.int32)
    initial_state = tf.nest.map_structure(tf.convert_to_tensor, initial_state)
    batch_size = tf.shape(start_tokens)[0]
    loop_vars = (
        tf.constant(0),
        start_tokens,
        initial_state,
        tf.zeros([batch_size, 0], tf.int32),
        tf.zeros([batch_size], tf.bool),
        tf.zeros([batch_size], tf.int32),
        tf.zeros([batch_size], tf.float32),
    )

    def cond(step, inputs, state, tokens, finished, lengths, scores):
        return tf.logical_not(tf.reduce_all(finished))

    def body(step, inputs, state, tokens, finished, lengths, scores):
        logits, new_state = step_fn(inputs, state)
        chosen, log_probs = choose(logits, step)
        running = tf.logical_not(finished)
        scores += tf.where(running, log_probs, 0.0)
        lengths += tf.cast(running, tf.int32)
        output = tf.where(running, chosen, pad_token)
        finished = tf.logical_or(finished, tf.equal(chosen, end_token))
        tokens = tf.concat([tokens, output[:, None]], axis=1)
        return step + 1, chosen, new_state, tokens, finished, lengths, scores

    invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None]),
        tf.nest.map_structure(batch_invariant, initial_state),
        tf.TensorShape([None, None]),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
    )
    _, _, _, tokens, _, lengths, scores = tf.while_loop(
        cond, body, loop_vars, shape_invariants=invariants, maximum_iterations=max_length
    )
    return tokens, lengths, scores
