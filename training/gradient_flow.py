"""Vanishing gradients made visible: how ‖∂s_t/∂s_k‖ shrinks with t − k, cell by cell.

Backpropagation through time multiplies one Jacobian per step:
∂s_t/∂s_k = ∏_{i=k+1..t} ∂s_i/∂s_{i-1} (for a SimpleRNN, ∏ diag(g'(·)) Vᵀ). When the factors have norm below one the product decays
geometrically and errors cannot reach steps far back. `jacobian_norms` measures the spectral norm of
the product for every pair k < t on given inputs, with the one-step Jacobians taken by automatic
differentiation of the cell itself; `norms_by_lag` summarises it per lag t − k, and
`plot_gradient_flow` draws the curves of several cells on a log scale.

The state `s` is everything a cell carries between steps: `h` for SimpleRNN and GRU, `[h, c]` for
LSTM and the context `c` for `ElmanCell` (its hidden units `h_t` depend on `c_{t-1}`, not on
`h_{t-1}`, so `c` is the only path from the past).
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import tensorflow as tf

from seqzoo.training.data.long_lag_builtin import adding_problem
from seqzoo.training.long_lag_training import CELL_NAMES, make_cell, train_long_lag

__all__ = ["CELL_NAMES", "make_cell", "state_trajectory", "step_jacobians", "jacobian_norms",
           "norms_by_lag", "compare_cells", "plot_gradient_flow", "format_norms_table"]

# Products that underflow are drawn at this floor instead of vanishing from a log-scale plot.
_NORM_FLOOR = 1e-300


def _state_sizes(cell) -> list[int]:
    return [int(size) for size in keras.tree.flatten(cell.state_size)]


def _step(cell, inputs, state):
    """One step of `cell` on the concatenated state, returning the next concatenated state."""
    states = tf.split(state, _state_sizes(cell), axis=-1)
    _, new_states = cell(inputs, list(states))
    return tf.concat(keras.tree.flatten(new_states), axis=-1)


def state_trajectory(cell, inputs, initial_state=None) -> np.ndarray:
    """States `s_0 .. s_T` of `cell` reading `inputs` `[batch, T, features]`: `[batch, T+1, S]`.

    `S` is the sum of the cell's state sizes; `initial_state` is `[batch, S]` (zeros if omitted).
    """
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    batch = int(inputs.shape[0])
    state = (tf.zeros((batch, sum(_state_sizes(cell))), tf.float32) if initial_state is None
             else tf.convert_to_tensor(initial_state, tf.float32))
    states = [state]
    for t in range(int(inputs.shape[1])):
        state = _step(cell, inputs[:, t], state)
        states.append(state)
    return tf.stack(states, axis=1).numpy()


def step_jacobians(cell, inputs, initial_state=None) -> np.ndarray:
    """One-step Jacobians `J_t = ∂s_t/∂s_{t-1}` along the trajectory: `[batch, T, S, S]`.

    `J_t[b, i, j]` is the derivative of state unit `i` at step `t` with respect to state unit `j`
    at step `t - 1` (t = 1..T), by automatic differentiation of the cell.
    """
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    batch, steps = int(inputs.shape[0]), int(inputs.shape[1])
    previous = state_trajectory(cell, inputs, initial_state)[:, :-1]
    size = previous.shape[-1]
    # Every step's Jacobian depends only on its own input and previous state, so all steps of all
    # sequences are differentiated at once as one flat batch.
    flat_inputs = tf.reshape(inputs, (batch * steps, -1))
    flat_previous = tf.constant(previous.reshape(batch * steps, size))
    with tf.GradientTape() as tape:
        tape.watch(flat_previous)
        flat_next = _step(cell, flat_inputs, flat_previous)
    jacobians = tape.batch_jacobian(flat_next, flat_previous)
    return jacobians.numpy().reshape(batch, steps, size, size)


def jacobian_norms(cell, inputs, initial_state=None) -> np.ndarray:
    """Spectral norms `‖∂s_t/∂s_k‖₂` for every pair of steps: `[batch, T+1, T+1]`.

    Entry `[b, t, k]` is the norm for sequence `b` (1 on the diagonal, where the Jacobian is the
    identity; NaN above it, k > t). Products are taken in float64.
    """
    jacobians = step_jacobians(cell, inputs, initial_state).astype(np.float64)
    batch, steps, size, _ = jacobians.shape
    norms = np.full((batch, steps + 1, steps + 1), np.nan)
    for k in range(steps + 1):
        product = np.broadcast_to(np.eye(size), (batch, size, size))
        norms[:, k, k] = 1.0
        for t in range(k + 1, steps + 1):
            product = jacobians[:, t - 1] @ product
            norms[:, t, k] = np.linalg.norm(product, ord=2, axis=(-2, -1))
    return norms


def norms_by_lag(norms: np.ndarray) -> np.ndarray:
    """Geometric mean over sequences and start steps k of `‖∂s_{k+lag}/∂s_k‖` for lag = 1..T.

    Args:
        norms: the output of `jacobian_norms`, `[batch, T+1, T+1]`.

    Returns:
        `[T]` float64, entry `lag - 1` for lag = 1..T.
    """
    steps = norms.shape[1] - 1
    logs = np.log(np.maximum(norms, _NORM_FLOOR))
    return np.array([
        np.exp(np.mean(np.diagonal(logs, offset=-lag, axis1=1, axis2=2)))
        for lag in range(1, steps + 1)
    ])


def compare_cells(length: int = 50, units: int = 32, features: int = 8, batch: int = 8,
                  input_scale: float = 1.0, cells=CELL_NAMES, seed: int = 0,
                  train_steps: int = 0) -> dict:
    """Measures `norms_by_lag` of several cells on the same inputs.

    Args:
        length: sequence length T (lags 1..T are measured).
        units: units of every cell.
        features: input features of the random inputs.
        batch: sequences averaged over.
        input_scale: standard deviation of the Gaussian inputs (larger inputs saturate tanh and
            sigmoid units, which shrinks g').
        cells: names of the cells to compare (see `CELL_NAMES`).
        seed: seed of the inputs and of the weights.
        train_steps: 0 measures freshly initialised cells on Gaussian inputs; more first trains
            each cell for this many steps on the adding problem of `length` steps (see
            `long_lag_training.train_long_lag`) and measures it on adding-problem sequences
            (`features` and `input_scale` are then unused).

    Returns:
        `{cell name: norms by lag [T]}`.
    """
    for name, value in (("length", length), ("units", units), ("features", features),
                        ("batch", batch)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"compare_cells expects a positive integer {name}. Received: {value!r}"
            )
    if not isinstance(train_steps, int) or train_steps < 0:
        raise ValueError(f"compare_cells expects train_steps >= 0. Received: {train_steps!r}")
    if train_steps:
        inputs, _ = adding_problem(batch, length, seed=seed)
    else:
        inputs = np.random.default_rng(seed).normal(0.0, input_scale, (batch, length, features))
    curves = {}
    for name in cells:
        if train_steps:
            model = train_long_lag(name, "adding", length, steps=train_steps, units=units,
                                   seed=seed)
            cell = next(layer.cell for layer in model.layers
                        if isinstance(layer, keras.layers.RNN))
        else:
            keras.utils.set_random_seed(seed)
            cell = make_cell(name, units)
        curves[name] = norms_by_lag(jacobian_norms(cell, inputs.astype("float32")))
    return curves


def plot_gradient_flow(curves: dict, path, title: str | None = None) -> pathlib.Path:
    """Draws `{name: norms by lag}` on a log-scale y axis and writes a PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        lags = np.arange(1, len(curve) + 1)
        axes.semilogy(lags, np.maximum(curve, _NORM_FLOOR), marker=".", label=name)
    axes.set_xlabel("t − k (steps back in time)")
    axes.set_ylabel("‖∂s_t / ∂s_k‖₂ (geometric mean)")
    axes.set_title(title or "How far back can the error flow?")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def format_norms_table(curves: dict, lags=(1, 2, 5, 10, 20, 50, 100, 200)) -> str:
    """A text table of `{name: norms by lag}` at the given lags (those the curves reach)."""
    length = min(len(curve) for curve in curves.values())
    shown = [lag for lag in lags if lag <= length]
    header = f"{'t - k':>7}" + "".join(f"{name:>12}" for name in curves)
    rows = [f"{lag:>7}" + "".join(f"{curve[lag - 1]:>12.2e}" for curve in curves.values())
            for lag in shown]
    return "\n".join([header, *rows])
