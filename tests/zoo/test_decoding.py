"""Decoders against NumPy references and brute-force enumeration on a tiny vocabulary."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from seqzoo.zoo.decoding import beam_search, greedy_decode, sample_decode

VOCAB = 4
END = 3


def make_model(batch, max_length, seed=0, scale=2.0):
    """A toy autoregressive model whose logits depend on the whole prefix and the batch row.

    The state is nested ({"row", "history": (code,), "started"}); the prefix is encoded as a
    number in bijective base VOCAB so every prefix gets its own row of random logits.
    """
    rng = np.random.default_rng(seed)
    n_prefixes = sum(VOCAB**t for t in range(max_length + 1))
    table = (scale * rng.standard_normal((batch, n_prefixes, VOCAB))).astype(np.float32)

    def full_step(tokens, state):
        # The prefix code must include the token just fed, which is the previous output.
        row, (code,) = state["row"], state["history"]
        code = tf.where(state["started"], code * VOCAB + tokens + 1, code)
        logits = tf.gather_nd(table, tf.stack([row, code], axis=1))
        new_state = {"row": row, "history": (code,), "started": tf.ones_like(state["started"])}
        return logits, new_state

    initial = {
        "row": tf.range(batch, dtype=tf.int32),
        "history": (tf.zeros([batch], tf.int32),),
        "started": tf.zeros([batch], tf.bool),
    }

    def logits_of(row, prefix):
        code = 0
        for token in prefix:
            code = code * VOCAB + token + 1
        return table[row, code]

    return full_step, initial, logits_of


def log_softmax(x):
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def numpy_greedy(logits_of, row, max_length):
    prefix, score = [], 0.0
    while len(prefix) < max_length:
        lp = log_softmax(logits_of(row, prefix))
        token = int(np.argmax(lp))
        prefix.append(token)
        score += lp[token]
        if token == END:
            break
    return prefix, score


def brute_force(logits_of, row, max_length, alpha):
    """Every complete hypothesis with its length-penalised score, best first."""
    results = []
    for length in range(1, max_length + 1):
        for seq in itertools.product(range(VOCAB), repeat=length):
            if END in seq[:-1] or (length < max_length and seq[-1] != END):
                continue
            log_prob = sum(log_softmax(logits_of(row, seq[:i]))[seq[i]] for i in range(length))
            results.append((log_prob / ((5 + length) / 6) ** alpha, list(seq)))
    return sorted(results, key=lambda r: -r[0])


def start(batch):
    return tf.zeros([batch], tf.int32)


def test_greedy_matches_numpy_reference():
    step_fn, initial, logits_of = make_model(batch=5, max_length=4, seed=1)
    tokens, lengths, scores = greedy_decode(step_fn, initial, start(5), END, max_length=4)
    for row in range(5):
        prefix, score = numpy_greedy(logits_of, row, 4)
        assert lengths[row] == len(prefix)
        assert tokens[row, : len(prefix)].numpy().tolist() == prefix
        assert np.all(tokens[row, len(prefix):].numpy() == 0)
        np.testing.assert_allclose(scores[row], score, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_width_one_is_exactly_greedy(seed):
    step_fn, initial, _ = make_model(batch=6, max_length=5, seed=seed)
    g_tokens, g_lengths, g_scores = greedy_decode(step_fn, initial, start(6), END, max_length=5)
    b_tokens, b_lengths, b_scores = beam_search(step_fn, initial, start(6), END, max_length=5,
                                                beam_width=1, length_penalty=0.6)
    np.testing.assert_array_equal(b_tokens[:, 0].numpy(), g_tokens.numpy())
    np.testing.assert_array_equal(b_lengths[:, 0].numpy(), g_lengths.numpy())
    # With one beam the length penalty only rescales the final score.
    penalty = ((5 + g_lengths.numpy()) / 6) ** 0.6
    np.testing.assert_allclose(b_scores[:, 0].numpy() * penalty, g_scores.numpy(), rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_equals_brute_force_n_best(alpha):
    max_length, batch = 3, 3
    step_fn, initial, logits_of = make_model(batch=batch, max_length=max_length, seed=7,
                                             scale=1.0)
    # 1 + 3 + 9 + 27 prefixes can be alive at once; this width keeps all of them.
    width = 40
    tokens, lengths, scores = beam_search(step_fn, initial, start(batch), END, max_length,
                                          beam_width=width, length_penalty=alpha, num_results=6)
    for row in range(batch):
        expected = brute_force(logits_of, row, max_length, alpha)[:6]
        for rank, (score, seq) in enumerate(expected):
            assert lengths[row, rank] == len(seq)
            assert tokens[row, rank, : len(seq)].numpy().tolist() == seq
            np.testing.assert_allclose(scores[row, rank], score, rtol=1e-5)


def test_narrow_beam_finds_a_better_sequence_than_greedy_on_a_trap():
    # Step 1: token 0 (p=.6) looks best but every continuation of it is flat; token 1 (p=.4)
    # is followed by END with certainty.  Greedy picks 0; a width-2 beam keeps 1 and wins.
    def step_fn(tokens, state):
        first = tf.math.log([0.6, 0.4, 1e-9, 1e-9])
        after_0 = tf.math.log([0.25, 0.25, 0.25, 0.25])
        after_1 = tf.math.log([1e-9, 1e-9, 1e-9, 1.0])
        logits = tf.where(state[:, None] == 0, first,
                          tf.where(tokens[:, None] == 0, after_0, after_1))
        return logits, state + 1

    state = tf.zeros([1], tf.int32)
    g_tokens, _, g_score = greedy_decode(step_fn, state, start(1), END, max_length=2)
    b_tokens, _, b_score = beam_search(step_fn, state, start(1), END, max_length=2, beam_width=2)
    assert g_tokens.numpy().tolist() == [[0, 0]]
    assert b_tokens[0, 0].numpy().tolist() == [1, END]
    np.testing.assert_allclose(b_score[0, 0], np.log(0.4), rtol=1e-5)
    assert b_score[0, 0] > g_score[0]


def test_decoders_trace_in_tf_function_with_unknown_batch():
    step_fn, initial, _ = make_model(batch=4, max_length=4, seed=3)
    spec = tf.TensorSpec([None], tf.int32)

    @tf.function(input_signature=[spec, spec])
    def decode(rows, codes):
        state = {"row": rows, "history": (codes,), "started": tf.zeros_like(rows, tf.bool)}
        return beam_search(step_fn, state, tf.zeros_like(rows), END, 4, beam_width=3,
                           num_results=2)

    traced = decode(initial["row"], initial["history"][0])
    eager = beam_search(step_fn, initial, start(4), END, 4, beam_width=3, num_results=2)
    for a, b in zip(traced, eager):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_sampling_with_top_k_one_is_greedy():
    step_fn, initial, _ = make_model(batch=8, max_length=5, seed=4)
    g_tokens, g_lengths, g_scores = greedy_decode(step_fn, initial, start(8), END, 5)
    s_tokens, s_lengths, s_scores = sample_decode(step_fn, initial, start(8), END, 5,
                                                  temperature=0.7, top_k=1, seed=(3, 4))
    np.testing.assert_array_equal(s_tokens.numpy(), g_tokens.numpy())
    np.testing.assert_array_equal(s_lengths.numpy(), g_lengths.numpy())
    # Only one token survives the filter, so each drawn token has probability one.
    np.testing.assert_allclose(s_scores.numpy(), 0.0, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_sampling_frequencies_follow_tempered_softmax(temperature):
    logits = np.array([1.0, 0.2, -0.5, 0.6], np.float32)
    n = 20000

    def step_fn(tokens, state):
        return tf.tile(logits[None], [tf.shape(tokens)[0], 1]), state

    tokens, _, scores = sample_decode(step_fn, (), start(n), END, max_length=1,
                                      temperature=temperature, seed=(11, 12))
    counts = np.bincount(tokens[:, 0].numpy(), minlength=VOCAB) / n
    expected = np.exp(log_softmax(logits / temperature))
    # Four binomial standard errors at n = 20000 are below 0.015.
    np.testing.assert_allclose(counts, expected, atol=0.015)
    np.testing.assert_allclose(scores.numpy(), log_softmax(logits / temperature)[tokens[:, 0]],
                               rtol=1e-5)


def test_sampling_top_k_never_draws_outside_the_k_best_and_is_reproducible():
    logits = np.array([0.1, 2.0, 1.5, -1.0], np.float32)

    def step_fn(tokens, state):
        return tf.tile(logits[None], [tf.shape(tokens)[0], 1]), state

    first, _, _ = sample_decode(step_fn, (), start(5000), END, 1, top_k=2, seed=(5, 6))
    again, _, _ = sample_decode(step_fn, (), start(5000), END, 1, top_k=2, seed=(5, 6))
    assert set(np.unique(first.numpy())) == {1, 2}
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    share_of_best = np.mean(first.numpy() == 1)
    np.testing.assert_allclose(share_of_best, 1 / (1 + np.exp(-0.5)), atol=0.03)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beam_width": 0}, "beam_width"),
        ({"beam_width": 2, "num_results": 3}, "num_results"),
        ({"beam_width": 2, "length_penalty": -1.0}, "length_penalty"),
        ({"beam_width": 2, "max_length": 0}, "max_length"),
    ],
)
def test_beam_search_rejects_bad_arguments(kwargs, message):
    args = {"max_length": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        beam_search(lambda t, s: (t, s), (), start(1), END, **args)


def test_sampling_rejects_bad_temperature_and_top_k():
    with pytest.raises(ValueError, match="temperature"):
        sample_decode(lambda t, s: (t, s), (), start(1), END, 3, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        sample_decode(lambda t, s: (t, s), (), start(1), END, 3, top_k=-1)
