"""Training any cell on a long-time-lag problem, as the long-lag bench and `seqzoo gradients` do."""

import pytest

from seqzoo.training.long_lag_training import (
    ALPHABET, NUM_SYMBOLS, build_model, error_ratio, problem_batch, train_long_lag,
)


def test_a_gru_trained_briefly_learns_the_short_adding_problem():
    model = train_long_lag("gru", "adding", 10, steps=200, units=16, learning_rate=1e-2)
    assert error_ratio(model, "adding", 10, size=500) < 0.2


def test_a_gru_trained_on_varied_delays_recalls_at_the_longest():
    model = train_long_lag("gru", "copy", 5, steps=400, units=16, learning_rate=1e-2,
                           min_delay=1)
    assert error_ratio(model, "copy", 5, size=500) < 0.1   # every sequence delayed 5 steps


def test_min_delay_belongs_to_the_copy_problem():
    with pytest.raises(ValueError, match="copy problem only"):
        problem_batch("adding", 10, 4, seed=0, min_delay=1)


def test_copy_model_reads_out_the_last_steps():
    model = build_model("elman", "copy", units=4, distractors=2)
    x, _ = problem_batch("copy", 5, 3, seed=0, distractors=2)
    assert model(x).shape == (3, NUM_SYMBOLS, ALPHABET)
    with pytest.raises(ValueError, match="adding, copy"):
        build_model("gru", "parity", units=4)
