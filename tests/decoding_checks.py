"""Checks shared by the tests of models that write token sequences (translation, captioning)."""

import numpy as np


def assert_decoding_follows_teacher_forcing(decode, logits_of, never=(0, 2), start=2):
    """Greedy decoding agrees with beam search of width 1 and with the teacher-forced logits of
    its own output: every token is the arg-max of its step's logits (ids in `never`, padding and
    start, are never decoded) and each score sums the chosen tokens' log-probabilities.

    Args:
        decode: `decode(method, **settings) -> (tokens, lengths, scores)`, the model's decoding.
        logits_of: `logits_of(target_in) -> [batch, time, vocab]` logits under teacher forcing.

    Returns:
        The teacher-forcing input `target_in` (the greedy tokens behind the start id).
    """
    tokens, lengths, scores = (np.asarray(x) for x in decode("greedy", max_length=7))
    beam_tokens, beam_lengths, _ = decode("beam", beam_width=1, max_length=7)
    np.testing.assert_array_equal(np.asarray(beam_tokens)[:, 0], tokens)
    np.testing.assert_array_equal(np.asarray(beam_lengths)[:, 0], lengths)
    target_in = np.concatenate([np.full((len(tokens), 1), start), tokens[:, :-1]], axis=1)
    logits = np.array(logits_of(target_in), dtype=np.float64)
    logits[..., list(never)] = -np.inf
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    for row in range(len(tokens)):
        n = int(lengths[row])
        np.testing.assert_array_equal(logits[row, :n].argmax(-1), tokens[row, :n])
        chosen = log_probs[row, np.arange(n), tokens[row, :n]]
        np.testing.assert_allclose(chosen.sum(), scores[row], rtol=1e-4)
    return target_in


def as_text(array):
    """A string array's bytes as str, as clients receive them."""
    return np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes) else b,
                        otypes=[object])(array)


def assert_same_outputs(remote, expected, context=""):
    """A served model's outputs equal the in-process ones: strings exactly, numbers to float
    precision."""
    assert set(remote) == set(expected), context
    for name, value in expected.items():
        if value.dtype == object:
            np.testing.assert_array_equal(remote[name], as_text(value), err_msg=context)
        else:
            np.testing.assert_allclose(remote[name], value, rtol=1e-5, atol=1e-6, err_msg=context)
