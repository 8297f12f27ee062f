"""ElmanNetwork: the output unit reads both hidden and context units; save and reload."""

import keras
import numpy as np
import pytest

from seqzoo.zoo.models.recurrent.elman_network import ElmanNetwork


def _network_and_inputs():
    keras.utils.set_random_seed(0)
    net = ElmanNetwork(units=3, output_units=2, context_units=4, output_activation="sigmoid")
    x = np.random.default_rng(1).normal(size=(5, 7, 2)).astype("float32")
    net(x)
    return net, x


def test_output_is_g_of_w2_h_plus_v2_c():
    net, x = _network_and_inputs()
    cell = net.cell
    w, v, w_c, v_c, b, b_c = (t.numpy() for t in (
        cell.kernel, cell.recurrent_kernel, cell.context_kernel, cell.context_recurrent_kernel,
        cell.bias, cell.context_bias))
    readout, readout_bias = net.readout.get_weights()
    w2, v2 = readout[:3], readout[3:]   # rows facing h_t, then rows facing c_t
    c = np.zeros((5, 4))
    expected = []
    for t in range(7):
        h = np.tanh(x[:, t] @ w + c @ v + b)
        c = np.tanh(x[:, t] @ w_c + c @ v_c + b_c)
        expected.append(1.0 / (1.0 + np.exp(-(h @ w2 + c @ v2 + readout_bias))))
    outputs, [context] = net(x, return_state=True)
    np.testing.assert_allclose(outputs.numpy(), np.stack(expected, axis=1), atol=1e-5)
    np.testing.assert_allclose(context.numpy(), c, atol=1e-5)


def test_continuing_from_the_returned_context_equals_one_long_pass():
    net, x = _network_and_inputs()
    first, [context] = net(x[:, :3], return_state=True)
    second = net(x[:, 3:], initial_state=context)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), net(x).numpy(), atol=1e-5)


def test_keras_save_and_reload(tmp_path):
    net, x = _network_and_inputs()
    path = tmp_path / "elman.keras"
    net.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_config() == net.get_config()
    np.testing.assert_allclose(reloaded(x).numpy(), net(x).numpy(), atol=1e-6)
    last_only = ElmanNetwork.from_config({**net.get_config(), "return_sequences": False})
    assert last_only(x).shape == (5, 2)


def test_bad_output_units_are_rejected():
    with pytest.raises(ValueError, match="output_units=0"):
        ElmanNetwork(units=3, output_units=0)
