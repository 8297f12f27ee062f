"""The adding problem, the copy task and the delayed echo: the data and the stated baselines."""

import numpy as np
import pytest

from seqzoo.training.data.long_lag_builtin import (
    ADDING_BASELINE_MSE, adding_problem, copy_task, delayed_echo,
)


def test_adding_problem_marks_one_value_per_half_and_sums_them():
    x, y = adding_problem(2000, 20, seed=3)
    assert x.shape == (2000, 20, 2) and y.shape == (2000, 1)
    markers = x[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :10].sum(axis=1) == 1) and np.all(markers[:, 10:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(axis=1), rtol=1e-6)
    # The mean predictor's error is the stated baseline (variance 1/6), within sampling error.
    assert abs(np.mean((y - 1.0) ** 2) - ADDING_BASELINE_MSE) < 0.015
    np.testing.assert_array_equal(adding_problem(2000, 20, seed=3)[0], x)
    assert not np.array_equal(adding_problem(2000, 20, seed=4)[0], x)


def test_copy_task_layout():
    x, y = copy_task(50, delay=4, num_symbols=3, alphabet=4, seed=1)
    assert x.shape == (50, 10, 6) and y.shape == (50, 3)
    codes = x.argmax(axis=-1)
    np.testing.assert_array_equal(codes[:, :3], y + 1)          # the symbols, read first
    assert np.all(codes[:, 3:7] == 0)                           # `delay` blanks
    assert np.all(codes[:, 7] == 5)                             # the go marker
    assert np.all(codes[:, 8:] == 0)
    assert np.all(x.sum(axis=-1) == 1.0)


@pytest.mark.parametrize("call, bad", [
    (lambda: adding_problem(4, 1), "length=1"),
    (lambda: copy_task(4, delay=0), "delay=0"),
    (lambda: copy_task(4, delay=3, alphabet=1), "alphabet=1"),
    (lambda: copy_task(4, delay=3, distractors=-1), "distractors=-1"),
    (lambda: copy_task(4, delay=3, min_delay=0), "min_delay=0, delay=3"),
    (lambda: copy_task(4, delay=3, min_delay=4), "min_delay=4, delay=3"),
])
def test_bad_sizes_are_rejected(call, bad):
    with pytest.raises(ValueError, match=bad):
        call()


def test_copy_task_distractors_fill_every_other_step():
    x, y = copy_task(50, delay=4, num_symbols=2, alphabet=3, distractors=5, seed=2)
    assert x.shape == (50, 8, 10)
    codes = x.argmax(axis=-1)
    np.testing.assert_array_equal(codes[:, :2], y + 1)
    assert np.all(codes[:, 6] == 4)
    filler = np.concatenate([codes[:, 2:6], codes[:, 7:]], axis=1)
    assert filler.min() >= 5 and filler.max() <= 9
    assert len(np.unique(filler)) == 5


def test_copy_task_with_varied_delays_matches_hand_checked_sequences():
    # Checked by hand: delay 3, two symbols of 3 (codes 1..3), go marker 4 at step 2 + 3 = 5;
    # each row's symbols start at step 3 - d for its drawn delay d in 1..3.
    x, y = copy_task(4, delay=3, num_symbols=2, alphabet=3, min_delay=1, seed=7)
    assert x.shape == (4, 7, 5) and np.all(x.sum(axis=-1) == 1.0)
    np.testing.assert_array_equal(x.argmax(axis=-1), [[0, 0, 3, 2, 0, 4, 0],    # d = 1
                                                      [0, 0, 3, 3, 0, 4, 0],    # d = 1
                                                      [0, 0, 2, 3, 0, 4, 0],    # d = 1
                                                      [3, 1, 0, 0, 0, 4, 0]])   # d = 3
    np.testing.assert_array_equal(y, [[2, 1], [2, 2], [1, 2], [2, 0]])
    # With distractors (codes 5, 6) in every blank and delays 2..3.
    x, y = copy_task(3, delay=3, num_symbols=2, alphabet=3, distractors=2, min_delay=2, seed=1)
    np.testing.assert_array_equal(x.argmax(axis=-1), [[2, 2, 5, 6, 5, 4, 5],    # d = 3
                                                      [3, 3, 6, 5, 5, 4, 6],    # d = 3
                                                      [6, 1, 1, 5, 5, 4, 6]])   # d = 2
    np.testing.assert_array_equal(y, [[1, 1], [2, 2], [0, 0]])


def test_copy_task_varied_delays_cover_the_range_and_are_fixed_by_the_seed():
    delay, num_symbols = 6, 3
    x, y = copy_task(600, delay=delay, num_symbols=num_symbols, alphabet=4, min_delay=2, seed=5)
    codes = x.argmax(axis=-1)
    start = np.argmax(codes > 0, axis=1)            # the first symbol's step
    rows = np.arange(600)[:, None]
    np.testing.assert_array_equal(codes[rows, start[:, None] + np.arange(num_symbols)], y + 1)
    # Nothing but blanks around the symbols up to the go marker and after it.
    assert np.all((codes > 0).sum(axis=1) == num_symbols + 1)
    assert np.all(codes[:, num_symbols + delay] == 5)
    np.testing.assert_array_equal(np.unique(delay - start), [2, 3, 4, 5, 6])
    again = copy_task(600, delay=delay, num_symbols=num_symbols, alphabet=4, min_delay=2, seed=5)
    np.testing.assert_array_equal(again[0], x)
    np.testing.assert_array_equal(again[1], y)
    assert not np.array_equal(
        copy_task(600, delay=delay, num_symbols=num_symbols, alphabet=4, min_delay=2,
                  seed=6)[0], x)
    # min_delay == delay draws only the delay itself: the fixed-delay sequences.
    for got, want in zip(copy_task(50, delay=4, min_delay=4, seed=3), copy_task(50, 4, seed=3)):
        np.testing.assert_array_equal(got, want)


def test_delayed_echo_repeats_the_input_after_the_delay():
    x, y, w = delayed_echo(20, length=9, delay=3, seed=5)
    assert x.shape == y.shape == (20, 9, 1) and w.shape == (20, 9)
    assert set(np.unique(x)) == {-1.0, 1.0}
    np.testing.assert_array_equal(y[:, 3:], x[:, :-3])
    np.testing.assert_array_equal(w, np.repeat([[0, 0, 0] + [1] * 6], 20, axis=0))
    with pytest.raises(ValueError, match="delay=9, length=9"):
        delayed_echo(2, length=9, delay=9)
