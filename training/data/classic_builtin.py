"""Series for the classic tasks, generated in code with known parameters, and series files.

Every generator is deterministic for a seed and returns the true parameters beside the data, so
evaluation can compare what was learned with what generated the data:

- `var_series`: a stationary VAR(2) in two variables (task `ar`, builtin:var2) or a univariate
  AR(3) (builtin:ar3).
- `logistic_map`: the chaotic logistic map x_{t+1} = r x_t (1 - x_t), observed with a little
  noise (task `delay_tap`, builtin:logistic): a smooth nonlinear recurrence no AR(p) captures.
- `lds_sequences`: a damped rotation in a 2-D hidden state seen through a 2-D noisy linear
  observation (task `lds`, builtin:oscillator), a few observations missing at random.
- `hmm_sequences`: the "dishonest casino" (a fair and a loaded die, 6 symbols; task `hmm` with
  categorical emissions, builtin:casino) or three Gaussian regimes in 1-D (builtin:regimes).

`read_series_file` reads a user's numeric CSV (rows are time steps, columns are variables; empty
cells or "nan" mark missing values) for `--data file:PATH`.
"""

from __future__ import annotations

import pathlib

import numpy as np

VAR2 = {
    "coefficients": np.array([[[0.5, 0.1], [-0.2, 0.3]], [[0.2, 0.0], [0.1, -0.1]]]),
    "intercept": np.array([0.1, -0.2]),
    "noise": 0.5,
}
AR3 = {
    "coefficients": np.array([0.6, -0.3, 0.2]).reshape(3, 1, 1),
    "intercept": np.array([0.05]),
    "noise": 1.0,
}
_ROTATION = 0.3
OSCILLATOR = {
    "transition_matrices": 0.95 * np.array(
        [[np.cos(_ROTATION), -np.sin(_ROTATION)], [np.sin(_ROTATION), np.cos(_ROTATION)]]
    ),
    "observation_matrices": np.array([[1.0, 0.0], [0.5, 1.0]]),
    "transition_covariance": 0.1 * np.eye(2),
    "observation_covariance": np.diag([0.2, 0.3]),
    "initial_state_mean": np.zeros(2),
    "initial_state_covariance": np.eye(2),
}
CASINO = {
    "startprob": np.array([0.5, 0.5]),
    "transmat": np.array([[0.95, 0.05], [0.1, 0.9]]),
    "emissionprob": np.array([[1 / 6] * 6, [0.1] * 5 + [0.5]]),
}
REGIMES = {
    "startprob": np.array([0.6, 0.3, 0.1]),
    "transmat": np.array([[0.9, 0.08, 0.02], [0.05, 0.9, 0.05], [0.05, 0.15, 0.8]]),
    "means": np.array([[-2.0], [0.0], [2.5]]),
    "variances": np.array([[0.4], [0.3], [0.6]]),
}
BUILTIN = {
    "ar": ("var2", "ar3"),
    "delay_tap": ("logistic",),
    "lds": ("oscillator",),
    "hmm": ("casino", "regimes"),
}


def check_builtin_name(task: str, name: str) -> str:
    """Resolves `builtin[:NAME]` for `task` (empty NAME: the first), listing the valid names."""
    names = BUILTIN[task]
    if name == "":
        return names[0]
    if name not in names:
        raise ValueError(
            f"Unknown builtin dataset {name!r} for the {task} task; accepted: "
            + ", ".join(f"builtin:{n}" for n in names)
            + "."
        )
    return name


def var_series(name: str, num_steps: int, seed: int):
    """A VAR(p) series [num_steps, D] and its parameters (coefficients [p, D, D], intercept)."""
    params = {"var2": VAR2, "ar3": AR3}[name]
    coefficients, intercept = params["coefficients"], params["intercept"]
    order, dims = coefficients.shape[:2]
    rng = np.random.default_rng(seed)
    burn_in = 200
    y = np.zeros((num_steps + burn_in, dims))
    for t in range(order, len(y)):
        y[t] = intercept + params["noise"] * rng.normal(size=dims)
        for lag in range(order):
            y[t] += coefficients[lag] @ y[t - lag - 1]
    return y[burn_in:], params


def logistic_map(num_steps: int, seed: int, r: float = 3.9, noise: float = 0.002):
    """A logistic-map series [num_steps, 1] observed with Gaussian noise of std `noise`."""
    rng = np.random.default_rng(seed)
    x = np.empty(num_steps)
    x[0] = rng.uniform(0.2, 0.8)
    for t in range(1, num_steps):
        x[t] = r * x[t - 1] * (1.0 - x[t - 1])
    return (x + noise * rng.normal(size=num_steps))[:, None]


def lds_sequences(num_sequences: int, length: int, seed: int, missing: float = 0.05):
    """Observations [N, T, 2] (NaN where missing), true states [N, T, 2] and the parameters."""
    p = OSCILLATOR
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(p["initial_state_mean"], p["initial_state_covariance"],
                                size=num_sequences)
    states, observations = [], []
    for t in range(length):
        if t > 0:
            x = x @ p["transition_matrices"].T + rng.multivariate_normal(
                np.zeros(2), p["transition_covariance"], size=num_sequences)
        states.append(x)
        observations.append(x @ p["observation_matrices"].T + rng.multivariate_normal(
            np.zeros(2), p["observation_covariance"], size=num_sequences))
    observations = np.stack(observations, axis=1)
    observations[rng.random(observations.shape[:2]) < missing] = np.nan
    return observations, np.stack(states, axis=1), p


def hmm_sequences(name: str, num_sequences: int, length: int, seed: int):
    """Observations ([N, T] ints or [N, T, 1] floats), hidden states [N, T] and parameters."""
    p = {"casino": CASINO, "regimes": REGIMES}[name]
    rng = np.random.default_rng(seed)
    k = len(p["startprob"])
    states = np.empty((num_sequences, length), np.int64)
    states[:, 0] = rng.choice(k, size=num_sequences, p=p["startprob"])
    for t in range(1, length):
        cumulative = np.cumsum(p["transmat"][states[:, t - 1]], axis=1)
        states[:, t] = (rng.random((num_sequences, 1)) > cumulative).sum(axis=1)
    if name == "casino":
        cumulative = np.cumsum(p["emissionprob"][states], axis=-1)
        observations = (rng.random(states.shape + (1,)) > cumulative).sum(axis=-1)
        return np.minimum(observations, 5).astype(np.int32), states, p
    noise = rng.normal(size=states.shape + (1,))
    return p["means"][states] + np.sqrt(p["variances"][states]) * noise, states, p


def read_series_file(path: str | pathlib.Path) -> np.ndarray:
    """Reads a numeric CSV (optional header row) into [T, D] floats, NaN for empty cells."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"Data file {str(path)!r} does not exist.")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        cells = [cell.strip() for cell in line.split(",")]
        try:
            rows.append([float(cell) if cell else np.nan for cell in cells])
        except ValueError:
            if number == 1 and not rows:
                continue  # a header row
            raise ValueError(
                f"{path}:{number}: expected comma-separated numbers (empty or nan for missing). "
                f"Received: {line!r}"
            ) from None
    if not rows or len({len(row) for row in rows}) != 1:
        raise ValueError(
            f"{path}: expected a non-empty CSV with the same number of columns on every row."
        )
    return np.array(rows)


def chunk_series(series: np.ndarray, length: int) -> np.ndarray:
    """Cuts a series [T, D] into consecutive sequences [T // length, length, D] (rest dropped)."""
    count = len(series) // length
    if count < 2:
        raise ValueError(
            f"The series ({len(series)} steps) gives fewer than 2 sequences of "
            f"sequence_length={length}; lower model.sequence_length or provide more data."
        )
    return series[: count * length].reshape(count, length, series.shape[1])


def split_sequences(arrays, validation_fraction: float):
    """Splits arrays sharing a first (sequence) axis; at least one sequence on each side."""
    count = len(arrays[0])
    validation = min(max(1, int(round(count * validation_fraction))), count - 1)
    return [a[: count - validation] for a in arrays], [a[count - validation :] for a in arrays]
