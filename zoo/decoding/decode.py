"""One entry point to the decoders, choosing greedy search, beam search or sampling by name."""

from __future__ import annotations

from seqzoo.zoo._checks import check_one_of
from seqzoo.zoo.decoding.beam_search import beam_search
from seqzoo.zoo.decoding.greedy import greedy_decode
from seqzoo.zoo.decoding.sampling import sample_decode

METHODS = ("greedy", "beam", "sample")


def decode(method, step_fn, initial_state, start_tokens, end_token, max_length, *, beam_width=4,
           length_penalty=0.0, num_results=1, temperature=1.0, top_k=0, seed=(0, 0),
           pad_token=0):
    """Decodes with `greedy_decode`, `beam_search` or `sample_decode`, named by `method`.

    Models that write text (translation, captioning) expose every decoder through one method
    with this signature; settings of the other decoders are ignored.

    Args:
        method: `"greedy"`, `"beam"` or `"sample"`.
        step_fn, initial_state, start_tokens, end_token, max_length, pad_token: as the decoders
            take them.
        beam_width, length_penalty, num_results: beam search settings.
        temperature, top_k, seed: sampling settings.

    Returns:
        `(tokens, lengths, scores)` as the chosen decoder returns them: with an n-best axis for
        beam search (`[B, num_results, L]`), else `[B, L]`.

    Example:
        >>> logits = tf.math.log([[0.1, 0.2, 0.7]])
        >>> step_fn = lambda tokens, state: (tf.tile(logits, [tf.shape(tokens)[0], 1]), state)
        >>> tokens, _, _ = decode("beam", step_fn, (), tf.zeros([1], tf.int32), end_token=2,
        ...                       max_length=4, beam_width=2)
        >>> tokens.numpy().tolist()
        [[[2]]]
    """
    check_one_of("method", method, METHODS)
    if method == "greedy":
        return greedy_decode(step_fn, initial_state, start_tokens, end_token, max_length,
                             pad_token=pad_token)
    if method == "beam":
        return beam_search(step_fn, initial_state, start_tokens, end_token, max_length,
                           beam_width, length_penalty=length_penalty, num_results=num_results,
                           pad_token=pad_token)
    return sample_decode(step_fn, initial_state, start_tokens, end_token, max_length,
                         temperature=temperature, top_k=top_k, seed=seed, pad_token=pad_token)
