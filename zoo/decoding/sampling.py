"""Random sampling with a temperature and top-k filtering, seeded and stateless."""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.decoding.common import check_decode_args, run_decoder


def sample_decode(step_fn, initial_state, start_tokens, end_token, max_length, temperature=1.0,
                  top_k=0, seed=(0, 0), pad_token=0):
    """Decodes by sampling every token from the model's tempered, top-k filtered distribution.

    Sampling uses stateless random ops, so the same `seed` gives the same sequences (in eager
    code, in a `tf.function` and inside a SavedModel alike).

    Args:
        step_fn: `step_fn(tokens [B] int32, state) -> (logits [B, V], new_state)`; `state` is any
            nested structure of batch-major tensors.
        initial_state: the state before the first step.
        start_tokens: int32 [B], the first input of every sequence.
        end_token: int, the token that ends a sequence.
        max_length: int, the most tokens generated per sequence (the end token counts).
        temperature: float > 0; logits are divided by it (below 1 sharpens, above 1 flattens).
        top_k: int >= 0; when positive only the `top_k` most likely tokens can be drawn
            (`top_k=1` is greedy decoding); 0 keeps the whole vocabulary.
        seed: two ints (or an int tensor of shape [2]) seeding the stateless sampler.
        pad_token: int written after the end token.

    Returns:
        `(tokens [B, L] int32, lengths [B] int32, scores [B] float32)` as in `greedy_decode`;
        `scores` sums the log-probabilities of the drawn tokens under the tempered, filtered
        distribution they were drawn from.

    Example:
        >>> logits = tf.math.log([[0.5, 0.5, 0.0]])
        >>> step_fn = lambda tokens, state: (tf.tile(logits, [tf.shape(tokens)[0], 1]), state)
        >>> tokens, _, _ = sample_decode(step_fn, (), tf.zeros([4], tf.int32), end_token=2,
        ...                              max_length=3, seed=(1, 2))
        >>> tokens.shape
        TensorShape([4, 3])
    """
    check_decode_args(end_token=end_token, max_length=max_length, top_k=(top_k, 0))
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0. Received: temperature={temperature}")
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)

    def choose(logits, step):
        logits = tf.cast(logits, tf.float32) / temperature
        if top_k:
            kth_largest = tf.math.top_k(logits, k=top_k).values[:, -1:]
            logits = tf.where(logits < kth_largest, float("-inf"), logits)
        step_seed = tf.random.experimental.stateless_fold_in(seed, step)
        tokens = tf.random.stateless_categorical(logits, 1, step_seed, dtype=tf.int32)[:, 0]
        log_probs = tf.gather(tf.nn.log_softmax(logits), tokens, axis=1, batch_dims=1)
        return tokens, log_probs

    return run_decoder(step_fn, initial_state, start_tokens, end_token, max_length, pad_token,
                       choose)
