"""Beam search with a length penalty, returning n-best lists with their scores."""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.decoding.common import batch_invariant, check_decode_args


def length_penalty_factor(lengths, alpha):
    """GNMT length normalisation ((5 + length) / 6) ** alpha; alpha = 0 leaves scores unchanged."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def tile_beams(structure, beam_width):
    """Repeats every batch row `beam_width` times: [B, ...] -> [B * beam_width, ...]."""
    return tf.nest.map_structure(
        lambda t: tf.repeat(tf.convert_to_tensor(t), beam_width, axis=0), structure
    )


def beam_search(step_fn, initial_state, start_tokens, end_token, max_length, beam_width,
                length_penalty=0.0, num_results=1, pad_token=0):
    """Beam search in pure TF ops: keeps the `beam_width` best prefixes of every sequence.

    Hypotheses are ranked by `log_prob / ((5 + length) / 6) ** length_penalty`, both while
    searching and at the end. A hypothesis that produced the end token keeps its slot and its
    score; the search stops when every beam has ended or after `max_length` steps.

    Args:
        step_fn: `step_fn(tokens [N] int32, state) -> (logits [N, V], new_state)`, called with
            `N = batch * beam_width`; `state` is any nested structure of batch-major tensors.
        initial_state: the state before the first step, batch size B (tiled here to the beams).
        start_tokens: int32 [B], the first input of every sequence.
        end_token: int, the token that ends a hypothesis.
        max_length: int, the most tokens generated per hypothesis (the end token counts).
        beam_width: int >= 1. A width of 1 is exactly greedy decoding.
        length_penalty: float >= 0, the exponent alpha above; 0 ranks by log-probability.
        num_results: int in [1, beam_width], the size of the returned n-best lists.
        pad_token: int written after the end token.

    Returns:
        `(tokens [B, num_results, L] int32, lengths [B, num_results] int32,
        scores [B, num_results] float32)`, best first. `lengths` counts tokens up to and
        including the end token; `scores` are the ranking scores (log-probabilities divided by
        the length penalty).

    Example:
        >>> logits = tf.math.log([[0.1, 0.3, 0.6]])
        >>> step_fn = lambda tokens, state: (tf.tile(logits, [tf.shape(tokens)[0], 1]), state)
        >>> tokens, lengths, scores = beam_search(step_fn, (), tf.zeros([1], tf.int32),
        ...     end_token=2, max_length=3, beam_width=2, num_results=2)
        >>> tokens.numpy()[0, :, 0].tolist()
        [2, 1]
    """
    check_decode_args(end_token=end_token, max_length=max_length,
                      beam_width=(beam_width, 1), num_results=(num_results, 1))
    if num_results > beam_width:
        raise ValueError(
            f"num_results must be at most beam_width={beam_width}. Received: "
            f"num_results={num_results}"
        )
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0. Received: length_penalty={length_penalty}")

    start_tokens = tf.convert_to_tensor(start_tokens, tf.int32)
    batch_size = tf.shape(start_tokens)[0]
    first_beam_only = tf.constant([0.0] + [float("-inf")] * (beam_width - 1))
    # Offsets turn a beam index within a batch row into a row of the flattened [B * K] state.
    row_offsets = tf.range(batch_size)[:, None] * beam_width

    def cond(step, inputs, state, tokens, finished, lengths, log_probs):
        return tf.logical_not(tf.reduce_all(finished))

    def body(step, inputs, state, tokens, finished, lengths, log_probs):
        logits, new_state = step_fn(inputs, state)
        vocab_size = tf.shape(logits)[-1]
        step_log_probs = tf.reshape(
            tf.nn.log_softmax(tf.cast(logits, tf.float32)), [batch_size, beam_width, vocab_size]
        )
        # An ended hypothesis has exactly one continuation, at no cost, so it keeps its score.
        ended_row = tf.where(tf.equal(tf.range(vocab_size), end_token), 0.0, float("-inf"))
        step_log_probs = tf.where(finished[..., None], ended_row, step_log_probs)
        totals = log_probs[..., None] + step_log_probs
        new_lengths = lengths + tf.cast(tf.logical_not(finished), tf.int32)
        ranking = totals / length_penalty_factor(new_lengths, length_penalty)[..., None]
        _, flat_index = tf.math.top_k(tf.reshape(ranking, [batch_size, -1]), k=beam_width)
        beam = flat_index // vocab_size
        chosen = flat_index % vocab_size
        log_probs = tf.gather(tf.reshape(totals, [batch_size, -1]), flat_index, batch_dims=1)
        was_finished = tf.gather(finished, beam, batch_dims=1)
        lengths = tf.gather(new_lengths, beam, batch_dims=1)
        finished = tf.logical_or(was_finished, tf.equal(chosen, end_token))
        output = tf.where(was_finished, pad_token, chosen)
        tokens = tf.concat([tf.gather(tokens, beam, batch_dims=1), output[..., None]], axis=2)
        rows = tf.reshape(row_offsets + beam, [-1])
        state = tf.nest.map_structure(lambda t: tf.gather(t, rows), new_state)
        return step + 1, tf.reshape(chosen, [-1]), state, tokens, finished, lengths, log_probs

    initial_state = tile_beams(initial_state, beam_width)
    loop_vars = (
        tf.constant(0),
        tf.repeat(start_tokens, beam_width),
        initial_state,
        tf.zeros([batch_size, beam_width, 0], tf.int32),
        tf.zeros([batch_size, beam_width], tf.bool),
        tf.zeros([batch_size, beam_width], tf.int32),
        tf.tile(first_beam_only[None], [batch_size, 1]),
    )
    invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None]),
        tf.nest.map_structure(batch_invariant, initial_state),
        tf.TensorShape([None, beam_width, None]),
        tf.TensorShape([None, beam_width]),
        tf.TensorShape([None, beam_width]),
        tf.TensorShape([None, beam_width]),
    )
    _, _, _, tokens, _, lengths, log_probs = tf.while_loop(
        cond, body, loop_vars, shape_invariants=invariants, maximum_iterations=max_length
    )
    scores = log_probs / length_penalty_factor(lengths, length_penalty)
    scores, order = tf.math.top_k(scores, k=num_results)
    return (tf.gather(tokens, order, batch_dims=1), tf.gather(lengths, order, batch_dims=1),
            scores)
