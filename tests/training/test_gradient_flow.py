"""Gradient flow: measured ‖∂s_t/∂s_k‖ against closed forms computed in NumPy."""

import keras
import numpy as np
import pytest

from seqzoo.training import gradient_flow
from seqzoo.training.long_lag_training import parse_cell_names
from seqzoo.zoo.layers.elman_cell import ElmanCell

STEPS, UNITS, FEATURES = 12, 5, 3


def _inputs(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, scale, (4, STEPS, FEATURES)).astype("float32")


def _built(cell):
    cell(np.zeros((1, FEATURES), "float32"), [np.zeros((1, n), "float32")
                                                for n in keras.tree.flatten(cell.state_size)])
    return cell


def _product_norms(step_jacobians):
    """‖J_t ⋯ J_{k+1}‖₂ for every k < t, from a list of per-step Jacobians [batch, S, S]."""
    batch, size = step_jacobians[0].shape[0], step_jacobians[0].shape[1]
    steps = len(step_jacobians)
    norms = np.full((batch, steps + 1, steps + 1), np.nan)
    for k in range(steps + 1):
        norms[:, k, k] = 1.0
        for t in range(k + 1, steps + 1):
            product = np.eye(size)
            for i in range(k + 1, t + 1):
                product = step_jacobians[i - 1] @ product
            norms[:, t, k] = [np.linalg.svd(p, compute_uv=False)[0] for p in product]
    return norms


def test_linear_rnn_with_scaled_orthogonal_recurrence_decays_as_a_power():
    rho = 0.8
    cell = _built(keras.layers.SimpleRNNCell(UNITS, activation=None))
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(UNITS, UNITS)))
    cell.recurrent_kernel.assign((rho * q).astype("float32"))
    norms = gradient_flow.jacobian_norms(cell, _inputs())
    t, k = np.tril_indices(STEPS + 1)
    np.testing.assert_allclose(norms[:, t, k], np.broadcast_to(rho ** (t - k), (4, len(t))),
                               rtol=1e-5)


def test_tanh_rnn_matches_the_product_of_v_and_g_prime():
    cell = _built(keras.layers.SimpleRNNCell(UNITS))
    x = _inputs(seed=2, scale=1.5)
    kernel, recurrent, bias = (w.numpy().astype(np.float64) for w in cell.weights)
    h, jacobians = np.zeros((4, UNITS)), []
    for t in range(STEPS):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
        # ∂h_t/∂h_{t-1} = diag(g'(a_t)) Vᵀ with g' = 1 - tanh², V the recurrent kernel.
        jacobians.append((1.0 - h ** 2)[:, :, None] * recurrent.T[None])
    expected = _product_norms(jacobians)
    measured = gradient_flow.jacobian_norms(cell, x)
    t, k = np.tril_indices(STEPS + 1)
    np.testing.assert_allclose(measured[:, t, k], expected[:, t, k], rtol=1e-4, atol=1e-12)


def test_elman_state_is_the_context_and_its_jacobian_is_the_context_recurrence():
    cell = _built(ElmanCell(UNITS, context_units=4))
    x = _inputs(seed=3)
    w_c, v_c, b_c = (cell.context_kernel.numpy(), cell.context_recurrent_kernel.numpy(),
                     cell.context_bias.numpy())
    c, expected = np.zeros((4, 4)), []
    for t in range(STEPS):
        c = np.tanh(x[:, t] @ w_c + c @ v_c + b_c)
        expected.append((1.0 - c ** 2)[:, :, None] * v_c.T[None])
    np.testing.assert_allclose(gradient_flow.step_jacobians(cell, x),
                               np.stack(expected, axis=1), rtol=1e-4, atol=1e-6)


def test_norms_by_lag_is_the_geometric_mean_over_sequences_and_starts():
    norms = np.full((2, 3, 3), np.nan)
    norms[:, [0, 1, 2], [0, 1, 2]] = 1.0
    norms[0, 1, 0], norms[0, 2, 1], norms[1, 1, 0], norms[1, 2, 1] = 0.5, 0.2, 0.4, 0.1
    norms[0, 2, 0], norms[1, 2, 0] = 0.01, 0.04
    np.testing.assert_allclose(gradient_flow.norms_by_lag(norms),
                               [(0.5 * 0.2 * 0.4 * 0.1) ** 0.25, (0.01 * 0.04) ** 0.5])


def test_compare_cells_simple_rnn_decays_and_plot_is_written(tmp_path):
    curves = gradient_flow.compare_cells(length=30, units=8, batch=4, seed=0)
    assert sorted(curves) == sorted(gradient_flow.CELL_NAMES)
    simple = curves["simple_rnn"]
    assert np.all(np.diff(simple) < 0), "SimpleRNN's norm must shrink at every extra step back"
    assert simple[29] < 1e-3 * simple[0]
    path = gradient_flow.plot_gradient_flow(curves, tmp_path / "flow.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_cell_lists_the_accepted_ones():
    with pytest.raises(ValueError, match="simple_rnn, elman, lstm, gru"):
        gradient_flow.make_cell("transformer", 4)
    assert parse_cell_names("lstm,gru,") == ["lstm", "gru"]
    with pytest.raises(ValueError, match="Unknown cell.s. rnn; accepted: a comma-separated list of "
                                         "simple_rnn, elman, lstm, gru"):
        parse_cell_names("lstm,rnn")


def test_gradients_command_prints_the_table_and_draws_the_png(tmp_path, capsys):
    from seqzoo.serving.cli import main

    out = tmp_path / "flow.png"
    assert main(["gradients", "--out", str(out), "--length", "6", "--units", "4",
                 "--batch", "2", "--cells", "simple_rnn,gru"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["t", "-", "k", "simple_rnn", "gru"]
    assert [line.split()[0] for line in printed[1:4]] == ["1", "2", "5"]
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_trained_cells_are_measured_on_adding_problem_inputs():
    curves = gradient_flow.compare_cells(length=6, units=4, batch=2, cells=("gru",),
                                         train_steps=2)
    untrained = gradient_flow.compare_cells(length=6, units=4, batch=2, cells=("gru",))
    assert curves["gru"].shape == (6,)
    assert not np.allclose(curves["gru"], untrained["gru"])
    with pytest.raises(ValueError, match="train_steps >= 0"):
        gradient_flow.compare_cells(train_steps=-1)


def test_lstm_chained_step_jacobians_equal_autodiff_through_the_unrolled_cell():
    import tensorflow as tf

    cell = _built(keras.layers.LSTMCell(UNITS))
    x = _inputs(seed=8)
    # The state s = [h, c] differentiated end to end, from step 0 to step STEPS, by one tape.
    start = tf.random.stateless_normal((4, 2 * UNITS), seed=(1, 2)) * 0.5
    with tf.GradientTape() as tape:
        tape.watch(start)
        h, c = tf.split(start, 2, axis=-1)
        for t in range(STEPS):
            _, (h, c) = cell(x[:, t], [h, c])
        end = tf.concat([h, c], axis=-1)
    direct = tape.batch_jacobian(end, start).numpy()
    expected = [np.linalg.svd(j, compute_uv=False)[0] for j in direct]
    measured = gradient_flow.jacobian_norms(cell, x, initial_state=start.numpy())[:, STEPS, 0]
    np.testing.assert_allclose(measured, expected, rtol=1e-4)
