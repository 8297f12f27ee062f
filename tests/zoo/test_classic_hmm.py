"""CategoricalHMM and GaussianHMM against brute-force enumeration over every state path,
Baum–Welch on data generated with known parameters, gradient training, variable lengths."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_contract import run_layer_contract

from seqzoo.zoo.models.classic import CategoricalHMM, GaussianHMM

START = np.array([0.5, 0.3, 0.2])
TRANS = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5]])
EMISSION = np.array([[0.7, 0.2, 0.05, 0.05], [0.1, 0.1, 0.7, 0.1], [0.1, 0.5, 0.1, 0.3]])
MEANS = np.array([[-2.0, 0.0], [0.0, 2.0], [2.0, -1.0]])
VARIANCES = np.array([[0.5, 1.0], [0.8, 0.3], [1.2, 0.6]])


def categorical(dtype="float64"):
    hmm = CategoricalHMM(3, 4, dtype=dtype)
    hmm.startprob_, hmm.transmat_, hmm.emissionprob_ = START, TRANS, EMISSION
    return hmm


def gaussian(dtype="float64"):
    hmm = GaussianHMM(3, 2, dtype=dtype)
    hmm.startprob_, hmm.transmat_ = START, TRANS
    hmm.means_, hmm.covars_ = MEANS, VARIANCES
    return hmm


def emission_log_prob(kind, y):
    """log p(y_t | k), [T, K], computed directly from the parameters."""
    if kind == "categorical":
        return np.log(EMISSION[:, y].T)
    diff = y[:, None, :] - MEANS
    return -0.5 * np.sum(diff**2 / VARIANCES + np.log(2 * np.pi * VARIANCES), axis=-1)


def brute_force(kind, y):
    """Enumerates every state path: (log p(y), best path, its log joint, posteriors)."""
    log_b = emission_log_prob(kind, y)
    steps = len(y)
    paths = list(itertools.product(range(3), repeat=steps))
    joint = np.array([
        np.log(START[p[0]]) + sum(np.log(TRANS[p[t - 1], p[t]]) for t in range(1, steps))
        + sum(log_b[t, p[t]] for t in range(steps))
        for p in paths
    ])
    log_lik = np.logaddexp.reduce(joint)
    weights = np.exp(joint - log_lik)
    posteriors = np.zeros((steps, 3))
    for w, p in zip(weights, paths):
        posteriors[np.arange(steps), p] += w
    best = int(np.argmax(joint))
    return log_lik, np.array(paths[best]), joint[best], posteriors


def draw(kind, lengths, seed, emission=EMISSION):
    rng = np.random.default_rng(seed)
    samples, states = [], []
    for n in lengths:
        s = rng.choice(3, p=START)
        for _ in range(n):
            states.append(s)
            if kind == "categorical":
                samples.append(rng.choice(4, p=emission[s]))
            else:
                samples.append(MEANS[s] + np.sqrt(VARIANCES[s]) * rng.normal(size=2))
            s = rng.choice(3, p=TRANS[s])
    return np.array(samples), np.array(states)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_matches_brute_force_on_a_padded_batch_of_different_lengths(kind):
    lengths = [5, 3, 1, 4]
    X, _ = draw(kind, lengths, seed=0)
    hmm = categorical() if kind == "categorical" else gaussian()
    starts = np.cumsum([0] + lengths[:-1])
    total_log_lik, total_best = 0.0, 0.0
    posteriors = hmm.predict_proba(X, lengths)
    best_log_prob, path = hmm.decode(X, lengths)
    for start, n in zip(starts, lengths):
        log_lik, best, best_joint, marginals = brute_force(kind, X[start:start + n])
        total_log_lik += log_lik
        total_best += best_joint
        np.testing.assert_array_equal(path[start:start + n], best)
        np.testing.assert_allclose(posteriors[start:start + n], marginals, atol=1e-10)
        # One sequence at a time agrees with the padded batch.
        np.testing.assert_allclose(hmm.score(X[start:start + n]), log_lik, rtol=1e-10)
    np.testing.assert_allclose(hmm.score(X, lengths), total_log_lik, rtol=1e-10)
    np.testing.assert_allclose(best_log_prob, total_best, rtol=1e-10)
    np.testing.assert_array_equal(hmm.predict(X, lengths), path)


def test_padded_batch_tensors_mark_padding():
    X, _ = draw("categorical", [4, 2], seed=1)
    hmm = categorical()
    padded = np.zeros((2, 4), np.int32)
    padded[0], padded[1, :2] = X[:4], X[4:]
    mask = np.array([[True] * 4, [True, True, False, False]])
    _, path = hmm.viterbi(padded, mask)
    np.testing.assert_array_equal(path.numpy()[1, 2:], [-1, -1])
    np.testing.assert_array_equal(hmm.posteriors(padded, mask).numpy()[1, 2:], 0.0)


def match_states(estimated_means, true_means):
    """The state permutation that best aligns estimated with true parameters."""
    return min(itertools.permutations(range(3)),
               key=lambda p: np.abs(estimated_means[list(p)] - true_means).sum())


def test_baum_welch_categorical_is_monotone_and_recovers_parameters():
    # Emissions more distinct than EMISSION: with strongly overlapping ones EM needs far more
    # data and iterations to pin the parameters down.
    emission = np.array([[0.8, 0.1, 0.05, 0.05], [0.05, 0.05, 0.8, 0.1], [0.1, 0.75, 0.05, 0.1]])
    lengths = [200] * 40
    X, _ = draw("categorical", lengths, seed=2, emission=emission)
    hmm = CategoricalHMM(3, 4, n_iter=100, tol=1e-4, dtype="float64")
    rng = np.random.default_rng(3)
    hmm.startprob_ = np.full(3, 1 / 3)
    hmm.transmat_ = 0.4 * np.eye(3) + 0.2
    noisy = emission + rng.uniform(0, 0.3, emission.shape)
    hmm.emissionprob_ = noisy / noisy.sum(1, keepdims=True)
    hmm.fit(X, lengths)
    history = np.array(hmm.log_likelihoods_)
    assert np.all(np.diff(history) >= -1e-6), history
    assert history[-1] > history[0] + 100
    perm = list(match_states(hmm.emissionprob_, emission))
    # 8000 symbols; measured errors are about 0.05, a few standard errors of the counts.
    np.testing.assert_allclose(hmm.emissionprob_[perm], emission, atol=0.08)
    np.testing.assert_allclose(hmm.transmat_[perm][:, perm], TRANS, atol=0.08)


def test_baum_welch_gaussian_is_monotone_and_recovers_parameters():
    lengths = [100] * 20
    X, _ = draw("gaussian", lengths, seed=4)
    hmm = GaussianHMM(3, 2, n_iter=100, tol=1e-4, dtype="float64")
    hmm.startprob_ = np.full(3, 1 / 3)
    hmm.transmat_ = 0.4 * np.eye(3) + 0.2
    # Start from the true means shuffled and shifted by up to 0.8 per coordinate (EM is a
    # local method; a k-means initialisation would play this role in practice).
    hmm.means_ = MEANS[[2, 0, 1]] + np.random.default_rng(7).uniform(-0.8, 0.8, MEANS.shape)
    hmm.covars_ = np.ones((3, 2))
    hmm.fit(X, lengths)
    assert np.all(np.diff(hmm.log_likelihoods_) >= -1e-6), hmm.log_likelihoods_
    perm = list(match_states(hmm.means_, MEANS))
    np.testing.assert_allclose(hmm.means_[perm], MEANS, atol=0.15)
    np.testing.assert_allclose(np.diagonal(hmm.covars_, axis1=1, axis2=2)[perm], VARIANCES,
                               atol=0.2)
    np.testing.assert_allclose(hmm.transmat_[perm][:, perm], TRANS, atol=0.08)


def test_gradient_training_approaches_baum_welch():
    lengths = [50] * 20
    X, _ = draw("categorical", lengths, seed=5)
    padded = X.reshape(20, 50)
    baum_welch = CategoricalHMM(3, 4, n_iter=100, tol=1e-4)
    baum_welch.fit(X, lengths)
    model = CategoricalHMM(3, 4)
    optimizer = keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(model(padded)) / 50.0
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))

    before = model.score(X, lengths)
    for _ in range(200):
        step()
    after, reference = model.score(X, lengths), baum_welch.score(X, lengths)
    assert after > before + 50
    # Both are local maxima of the same likelihood; per symbol they agree within
    # 0.005 nats (measured: 0.001).
    assert abs(after - reference) / len(X) < 0.005, (after, reference)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_layer_contract(kind, tmp_path):
    mask = np.array([[True] * 5, [True] * 3 + [False] * 2])
    if kind == "categorical":
        inputs = np.random.default_rng(6).integers(0, 4, size=(2, 5)).astype("int32")
        factory = lambda: categorical(dtype="float32")  # noqa: E731
    else:
        inputs = np.random.default_rng(6).normal(size=(2, 5, 2)).astype("float32")
        factory = lambda: gaussian(dtype="float32")  # noqa: E731
    # Start and transition logits, then emission logits or means and log-variances.
    weights = 3 if kind == "categorical" else 4
    run_layer_contract(factory, inputs, mask=mask, expected_output_shapes=(2,),
                       expected_num_trainable_weights=weights, tmp_path=tmp_path, atol=1e-4)


def test_bad_values_are_reported():
    with pytest.raises(ValueError, match="n_components=0"):
        CategoricalHMM(0, 3)
    with pytest.raises(ValueError, match="n_features=0"):
        GaussianHMM(2, 0)
    hmm = CategoricalHMM(2, 3)
    with pytest.raises(ValueError, match="probabilities"):
        hmm.transmat_ = [[0.5, 0.6], [0.5, 0.5]]
    with pytest.raises(ValueError, match=r"Symbols must lie in \[0, 3\)"):
        hmm.score(np.array([0, 1, 3]))
    with pytest.raises(ValueError, match="lengths"):
        hmm.score(np.array([0, 1, 2]), lengths=[2, 2])


def test_nan_observations_are_rejected_and_leave_the_parameters_as_they_were():
    hmm = GaussianHMM(2, 2, n_iter=3)
    hmm.means_ = [[-1.0, 0.0], [1.0, 0.0]]
    X = np.random.default_rng(0).normal(size=(20, 2))
    X[7, 1] = np.nan
    for method in (hmm.fit, hmm.score, hmm.predict):
        with pytest.raises(ValueError, match=r"Observations must be finite; sample 7 holds "
                                             r"\[.*, nan\] \(1 of 20 samples hold NaN or inf\)"):
            method(X)
    np.testing.assert_array_equal(hmm.means_, [[-1.0, 0.0], [1.0, 0.0]])
    X[7, 1] = np.inf
    with pytest.raises(ValueError, match="sample 7"):
        hmm.score(X, lengths=[10, 10])



@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_one_step_sequences_in_a_traced_function_match_brute_force(kind):
    # As the exported signatures run them: batch and time unknown when traced. A scan over the
    # steps after the first then has nothing to stack for a one-step sequence.
    hmm = categorical() if kind == "categorical" else gaussian()
    X, _ = draw(kind, [1, 1], seed=3)
    batch = X[:, None] if kind == "categorical" else X[:, None, :]
    spec = tf.TensorSpec([None, None] + list(batch.shape[2:]), tf.as_dtype(batch.dtype))
    traced = tf.function(lambda y: (hmm(y), hmm.viterbi(y), hmm.posteriors(y)),
                         input_signature=[spec])
    log_lik, (best_joint, path), posteriors = traced(tf.constant(batch))
    for i, y in enumerate(X):
        want_lik, want_path, want_joint, want_posteriors = brute_force(kind, y[None])
        np.testing.assert_allclose(log_lik[i], want_lik, rtol=1e-10)
        np.testing.assert_allclose(best_joint[i], want_joint, rtol=1e-10)
        np.testing.assert_array_equal(path[i], want_path)
        np.testing.assert_allclose(posteriors[i], want_posteriors, atol=1e-10)
