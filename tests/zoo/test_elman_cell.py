"""ElmanCell: the layer contract, and the lecture's equations re-computed in NumPy."""

import keras
import numpy as np
import pytest
from layer_contract import run_layer_contract

from seqzoo.zoo.layers.elman_cell import ElmanCell

UNITS, CONTEXT, FEATURES = 4, 3, 2


def _inputs(batch=3, steps=6, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, FEATURES)).astype("float32")


def _randomize(layer, seed):
    """Gives every weight (biases included) random values, so no term can hide behind a zero."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0.0, 0.7, w.shape).astype("float32")
                       for w in layer.get_weights()])


def _numpy_elman(cell, x, context=None):
    """The lecture's equations, step by step, with the cell's weights: returns outputs, c_T."""
    w, v, w_c, v_c = (cell.kernel.numpy(), cell.recurrent_kernel.numpy(),
                      cell.context_kernel.numpy(), cell.context_recurrent_kernel.numpy())
    b, b_c = cell.bias.numpy(), cell.context_bias.numpy()
    c = np.zeros((x.shape[0], v_c.shape[0])) if context is None else context
    outputs = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ w + c @ v + b)          # reads the *previous* context
        c = np.tanh(x[:, t] @ w_c + c @ v_c + b_c)
        outputs.append(np.concatenate([h, c], axis=-1))
    return np.stack(outputs, axis=1), c


def test_contract_in_rnn_with_mask(tmp_path):
    x = _inputs()
    mask = np.array([[True] * 6, [True] * 4 + [False] * 2, [True] * 2 + [False] * 4])
    run_layer_contract(
        lambda: keras.layers.RNN(ElmanCell(UNITS, context_units=CONTEXT),
                                 return_sequences=True, return_state=True),
        x, mask=mask, expected_output_shapes=[(3, 6, UNITS + CONTEXT), (3, CONTEXT)],
        expected_num_trainable_weights=6, tmp_path=tmp_path,
    )


def test_contract_in_bidirectional(tmp_path):
    run_layer_contract(
        lambda: keras.layers.Bidirectional(
            keras.layers.RNN(ElmanCell(UNITS, context_units=CONTEXT))
        ),
        _inputs(), expected_output_shapes=(3, 2 * (UNITS + CONTEXT)),
        expected_num_trainable_weights=12, tmp_path=tmp_path,
    )


def test_rnn_matches_numpy_equations_and_carries_given_context():
    x = _inputs(seed=1)
    rnn = keras.layers.RNN(ElmanCell(UNITS, context_units=CONTEXT), return_sequences=True,
                           return_state=True)
    rnn(x)
    _randomize(rnn, seed=2)
    context0 = np.random.default_rng(3).normal(size=(3, CONTEXT)).astype("float32")
    outputs, context = rnn(x, initial_state=[context0])
    expected, expected_context = _numpy_elman(rnn.cell, x.astype(np.float64), context0)
    np.testing.assert_allclose(outputs.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(context.numpy(), expected_context, atol=1e-5)


def test_hidden_units_read_only_the_previous_context():
    # h_t has no recurrence of its own: with V = 0 it is a function of x_t alone.
    cell = ElmanCell(UNITS, context_units=CONTEXT, use_bias=False)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    x = _inputs(seed=4)
    rnn(x)
    _randomize(rnn, seed=5)
    cell.recurrent_kernel.assign(np.zeros((CONTEXT, UNITS), "float32"))
    hidden = rnn(x).numpy()[..., :UNITS]
    np.testing.assert_allclose(hidden, np.tanh(x @ cell.kernel.numpy()), atol=1e-6)


def test_bidirectional_runs_the_equations_both_ways():
    x = _inputs(seed=6)
    bi = keras.layers.Bidirectional(
        keras.layers.RNN(ElmanCell(UNITS, context_units=CONTEXT), return_sequences=True)
    )
    bi(x)
    _randomize(bi, seed=7)
    out = bi(x).numpy()
    forward, _ = _numpy_elman(bi.forward_layer.cell, x.astype(np.float64))
    backward, _ = _numpy_elman(bi.backward_layer.cell, x[:, ::-1].astype(np.float64))
    np.testing.assert_allclose(out[..., :UNITS + CONTEXT], forward, atol=1e-5)
    np.testing.assert_allclose(out[..., UNITS + CONTEXT:], backward[:, ::-1], atol=1e-5)


@pytest.mark.parametrize("kwargs, bad", [({"units": 0}, "units=0"),
                                          ({"units": 3, "context_units": -1}, "context_units=-1"),
                                          ({"units": 2.5}, "units=2.5")])
def test_bad_sizes_are_rejected(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        ElmanCell(**kwargs)
