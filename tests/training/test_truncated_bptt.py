"""Truncated BPTT: chunk gradients, the carried state, and what truncation cannot learn."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqzoo.training.data.long_lag_builtin import delayed_echo
from seqzoo.training.truncated_bptt import TruncatedBPTT
from seqzoo.zoo.models.recurrent.elman_network import ElmanNetwork

MSE = keras.losses.MeanSquaredError


def _network(seed=0):
    keras.utils.set_random_seed(seed)
    net = ElmanNetwork(units=5, output_units=2, context_units=4)
    net(np.zeros((1, 1, 3), "float32"))
    return net


def _data(batch=4, steps=10, seed=1):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.normal(size=(batch, steps, 3)).astype("float32")),
            tf.constant(rng.normal(size=(batch, steps, 2)).astype("float32")))


def test_chunks_cover_the_sequence_in_order():
    assert TruncatedBPTT(_network(), MSE(), "sgd", truncation=4).chunks(10) == [
        (0, 4), (4, 8), (8, 10)]
    assert TruncatedBPTT(_network(), MSE(), "sgd").chunks(10) == [(0, 10)]


def test_state_carried_across_chunks_equals_the_full_forward_pass():
    net = _network()
    x, _ = _data()
    context0 = tf.random.normal((4, 4), seed=2)
    outputs, states = TruncatedBPTT(net, MSE(), "sgd", truncation=3).forward(x, [context0])
    full_outputs, full_states = net(x, initial_state=context0, return_state=True)
    np.testing.assert_allclose(outputs.numpy(), full_outputs.numpy(), atol=1e-5)
    np.testing.assert_allclose(states[0].numpy(), full_states[0].numpy(), atol=1e-5)


def test_chunk_gradient_treats_the_carried_state_as_a_constant():
    net = _network()
    x, y = _data()
    tbptt = TruncatedBPTT(net, MSE(), "sgd", truncation=4)
    _, _, carried = tbptt.chunk_gradients(x[:, :4], y[:, :4])
    loss, gradients, _ = tbptt.chunk_gradients(x[:, 4:8], y[:, 4:8], carried)

    # By hand: the state after step 4 from a plain forward pass, frozen as a NumPy constant.
    frozen = tf.constant(net(x[:, :4], return_state=True)[1][0].numpy())
    with tf.GradientTape() as tape:
        expected_loss = tf.reduce_mean(tf.square(net(x[:, 4:8], initial_state=frozen) - y[:, 4:8]))
    expected = tape.gradient(expected_loss, net.trainable_variables)
    np.testing.assert_allclose(float(loss), float(expected_loss), rtol=1e-6)
    for got, want in zip(gradients, expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)

    # Full BPTT of the same chunk's loss also flows into steps 0..3, so it must differ.
    with tf.GradientTape() as tape:
        full = tf.reduce_mean(tf.square(net(x[:, :8])[:, 4:8] - y[:, 4:8]))
    full_gradients = tape.gradient(full, net.trainable_variables)
    recurrent = [i for i, v in enumerate(net.trainable_variables) if "context_recurrent" in v.path]
    assert not np.allclose(gradients[recurrent[0]].numpy(),
                           full_gradients[recurrent[0]].numpy(), atol=1e-6)


def test_no_gradient_crosses_a_chunk_boundary():
    net = _network()
    x, _ = _data()
    tbptt = TruncatedBPTT(net, MSE(), "sgd", truncation=4)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        truncated, _ = tbptt.forward(x)
        full = net(x)
        truncated_output, full_output = truncated[:, 6], full[:, 6]   # step 6 is in chunk [4, 8)
    truncated_grad = tape.gradient(truncated_output, x).numpy()
    full_grad = tape.gradient(full_output, x).numpy()
    assert np.all(truncated_grad[:, :4] == 0.0)
    assert np.abs(full_grad[:, :4]).max() > 1e-3
    np.testing.assert_allclose(truncated_grad[:, 4:], full_grad[:, 4:], atol=1e-6)


@pytest.mark.parametrize("truncation, learns", [(None, True), (8, True), (2, False)])
def test_truncation_shorter_than_the_dependency_cannot_learn_it(truncation, learns):
    delay = 6
    keras.utils.set_random_seed(0)
    tbptt = TruncatedBPTT(ElmanNetwork(16, 1), MSE(), keras.optimizers.Adam(1e-2),
                          truncation=truncation)
    for step in range(150):
        x, y, weight = (tf.constant(a) for a in delayed_echo(32, 16, delay, seed=step))
        tbptt.train_step(x, y, sample_weight=weight)
    x, y, _ = delayed_echo(512, 16, delay, seed=10_000)
    outputs, _ = tbptt.forward(tf.constant(x))
    accuracy = float(np.mean(np.sign(outputs.numpy()[:, delay:]) == y[:, delay:]))
    if learns:
        assert accuracy > 0.95, accuracy
    else:
        assert accuracy < 0.7, accuracy


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="truncation=0"):
        TruncatedBPTT(_network(), MSE(), "sgd", truncation=0)
    with pytest.raises(ValueError, match="keras.losses.Loss"):
        TruncatedBPTT(_network(), "mse", "sgd")
