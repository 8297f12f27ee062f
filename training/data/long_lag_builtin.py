"""Data of long-time-lag experiments: those of Hochreiter & Schmidhuber (1997), and an echo.

Every generator returns NumPy arrays built from a seeded generator, so the same seed gives the
same data, and states the error of a trivial predictor that ignores the inputs, the baseline that
makes errors comparable across lengths (an error ratio near 1 means nothing was learned).
"""

from __future__ import annotations

import numpy as np


def adding_problem(num_examples: int, length: int, seed: int = 0):
    """The adding problem: sum the two marked values of a long sequence.

    Each step carries two features: a value drawn uniformly in [0, 1] and a marker that is 1 at
    exactly two steps, one in the first half of the sequence and one in the second half. The
    target is the sum of the two marked values, so the first marked value must be held for up to
    `length - 1` steps.

    Args:
        num_examples: number of sequences (positive int).
        length: steps per sequence (int, at least 2).
        seed: seed of the generator.

    Returns:
        `(inputs, targets)`: float32 arrays `[num_examples, length, 2]` and `[num_examples, 1]`.
        Predicting the mean 1.0 has a mean squared error of 1/6 (the variance of the sum of two
        independent uniform values), `ADDING_BASELINE_MSE`.

    Example:

    ```python
    x, y = adding_problem(32, 50)   # x: (32, 50, 2), y: (32, 1)
    ```
    """
    _check_positive(num_examples=num_examples)
    if not isinstance(length, int) or length < 2:
        raise ValueError(f"adding_problem needs length >= 2. Received: length={length!r}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(num_examples, length)).astype(np.float32)
    half = length // 2
    first = rng.integers(0, half, size=num_examples)
    second = rng.integers(half, length, size=num_examples)
    markers = np.zeros((num_examples, length), np.float32)
    rows = np.arange(num_examples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second])[:, None]
    return np.stack([values, markers], axis=-1), targets.astype(np.float32)


ADDING_BASELINE_MSE = 1.0 / 6.0


def copy_task(num_examples: int, delay: int, num_symbols: int = 3, alphabet: int = 4,
              distractors: int = 0, seed: int = 0, min_delay: int | None = None):
    """The copy (recall) task: read a few symbols, wait `delay` steps, then write them back.

    Input one-hot codes have `alphabet + 2 + distractors` entries: a blank (0), the symbols
    1..`alphabet`, a "go" marker (`alphabet + 1`) and the distractor symbols after it. A sequence
    is `num_symbols` random symbols, `delay` blanks, the go marker, then `num_symbols - 1` more
    blanks; from the go marker on, the model writes the symbols back, one per step. With
    `distractors > 0` every blank is replaced by a random distractor symbol, noise the network
    must learn to ignore (as in Hochreiter & Schmidhuber's noisy long-lag experiments). The
    targets are the symbols at the last `num_symbols` steps, so every symbol is recalled
    `num_symbols + delay` steps after it was read. Sequences have `2 * num_symbols + delay` steps.

    With `min_delay`, each sequence draws its own delay `d` uniformly from `min_delay..delay`
    and its symbols start at step `delay - d`, after blanks (or distractors): the go marker and
    the recall keep their steps, only the time the symbols arrive varies, as the relevant inputs
    arrive at random times in Hochreiter & Schmidhuber's adding and temporal-order experiments.
    A network then has to hold the symbols for as long as it takes, instead of relying on a
    fixed lag.

    Args:
        num_examples: number of sequences (positive int).
        delay: steps between the last symbol and the go marker (positive int).
        num_symbols: symbols to remember per sequence (positive int).
        alphabet: number of distinct symbols (int, at least 2).
        distractors: number of distinct distractor symbols filling the blanks (0: plain blanks).
        seed: seed of the generator.
        min_delay: the shortest delay drawn, `1..delay`; `None` (default) gives every sequence
            the delay `delay`.

    Returns:
        `(inputs, targets)`: float32 one-hot inputs `[num_examples, 2 * num_symbols + delay,
        alphabet + 2 + distractors]` and int32 targets `[num_examples, num_symbols]` with values in
        `0..alphabet - 1` (symbol minus one). Guessing has an error rate of `1 - 1/alphabet`.

    Example:

    ```python
    x, y = copy_task(32, delay=20)   # x: (32, 26, 6), y: (32, 3)
    x, y = copy_task(32, delay=20, min_delay=1)   # the same shapes, symbols after 0..19 blanks
    ```
    """
    _check_positive(num_examples=num_examples, delay=delay, num_symbols=num_symbols)
    if not isinstance(distractors, int) or distractors < 0:
        raise ValueError(
            f"copy_task needs distractors >= 0. Received: distractors={distractors!r}"
        )
    if not isinstance(alphabet, int) or alphabet < 2:
        raise ValueError(f"copy_task needs alphabet >= 2. Received: alphabet={alphabet!r}")
    if min_delay is not None and (not isinstance(min_delay, int) or isinstance(min_delay, bool)
                                  or not 1 <= min_delay <= delay):
        raise ValueError(f"copy_task needs 1 <= min_delay <= delay or min_delay=None. Received: "
                         f"min_delay={min_delay!r}, delay={delay}")
    rng = np.random.default_rng(seed)
    length = 2 * num_symbols + delay
    symbols = rng.integers(1, alphabet + 1, size=(num_examples, num_symbols))
    start = np.zeros(num_examples, np.int64)
    if min_delay is not None:
        start = delay - rng.integers(min_delay, delay + 1, size=num_examples)
    codes = np.zeros((num_examples, length), np.int64)
    codes[np.arange(num_examples)[:, None], start[:, None] + np.arange(num_symbols)] = symbols
    codes[:, num_symbols + delay] = alphabet + 1
    if distractors:
        filler = codes == 0
        codes[filler] = alphabet + 2 + rng.integers(0, distractors, size=int(filler.sum()))
    inputs = np.eye(alphabet + 2 + distractors, dtype=np.float32)[codes]
    return inputs, (symbols - 1).astype(np.int32)


def _check_positive(**values):
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"Expected `{name}` to be a positive integer. Received: {name}={value!r}"
            )


def delayed_echo(num_examples: int, length: int, delay: int, seed: int = 0):
    """The delayed echo: output at every step the ±1 input seen `delay` steps earlier.

    A dependency of exactly `delay` steps at every position, which makes the effect of truncated
    backpropagation through time plain: with chunks shorter than `delay`, no gradient ever links
    an output to the input it must repeat.

    Args:
        num_examples: number of sequences (positive int).
        length: steps per sequence (int, greater than `delay`).
        delay: steps between an input and its echo (positive int).
        seed: seed of the generator.

    Returns:
        `(inputs, targets, sample_weight)`: float32 `[num_examples, length, 1]` inputs of ±1,
        targets of the same shape (0 at the first `delay` steps, which have nothing to echo) and
        float32 weights `[num_examples, length]`, 0 at those first steps and 1 elsewhere.
        Answering 0 has a mean squared error of 1 and guessing the sign an error rate of 1/2.

    Example:

    ```python
    x, y, w = delayed_echo(32, length=16, delay=6)   # y[:, 6:] == x[:, :-6]
    ```
    """
    _check_positive(num_examples=num_examples, length=length, delay=delay)
    if delay >= length:
        raise ValueError(
            f"delayed_echo needs delay < length. Received: delay={delay}, length={length}"
        )
    rng = np.random.default_rng(seed)
    inputs = rng.choice(np.array([-1.0, 1.0], np.float32), size=(num_examples, length, 1))
    targets = np.zeros_like(inputs)
    targets[:, delay:] = inputs[:, :-delay]
    weight = np.ones((num_examples, length), np.float32)
    weight[:, :delay] = 0.0
    return inputs, targets, weight
