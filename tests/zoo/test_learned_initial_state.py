"""LearnedInitialState: contract, the states it feeds, gradients by finite differences, training."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_contract import run_layer_contract

from seqzoo.zoo.layers.elman_cell import ElmanCell
from seqzoo.zoo.layers.learned_initial_state import LearnedInitialState


def _inputs(batch=3, steps=5, features=2, seed=0, dtype="float32"):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype(dtype)


def test_contract_lstm_with_mask_and_states(tmp_path):
    mask = np.array([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    run_layer_contract(
        lambda: LearnedInitialState(
            keras.layers.LSTM(4, return_sequences=True, return_state=True),
            initializer=keras.initializers.RandomNormal(seed=1),
        ),
        _inputs(), mask=mask, expected_output_shapes=[(3, 5, 4), (3, 4), (3, 4)],
        expected_num_trainable_weights=2 + 3,  # h_0 and c_0, then the LSTM's
        tmp_path=tmp_path,
    )


def test_contract_bidirectional_elman(tmp_path):
    run_layer_contract(
        lambda: LearnedInitialState(
            keras.layers.Bidirectional(keras.layers.RNN(ElmanCell(3, context_units=2))),
            initializer=keras.initializers.RandomNormal(seed=2),
        ),
        # h_0 of each direction, then six weights per Elman cell.
        _inputs(), expected_output_shapes=(3, 10), expected_num_trainable_weights=2 + 2 * 6,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("make_layer, sizes", [
    (lambda: keras.layers.SimpleRNN(3, return_sequences=True), [3]),
    (lambda: keras.layers.GRU(3, return_sequences=True), [3]),
    (lambda: keras.layers.LSTM(3, return_sequences=True), [3, 3]),
    (lambda: keras.layers.RNN(ElmanCell(3, context_units=2), return_sequences=True), [2]),
])
def test_every_sequence_starts_from_the_learned_states(make_layer, sizes):
    x = _inputs()
    wrapper = LearnedInitialState(make_layer(), initializer=keras.initializers.RandomNormal(seed=3))
    outputs = wrapper(x).numpy()
    assert [tuple(w.shape) for w in wrapper.initial_states] == [(s,) for s in sizes]
    states = [np.tile(w.numpy(), (3, 1)) for w in wrapper.initial_states]
    np.testing.assert_allclose(outputs, wrapper.layer(x, initial_state=states).numpy(), atol=1e-6)
    assert not np.allclose(outputs, wrapper.layer(x).numpy(), atol=1e-3), "states had no effect"


def test_gradients_reach_the_initial_states_and_equal_finite_differences():
    x = _inputs(seed=4, dtype="float64")
    wrapper = LearnedInitialState(
        keras.layers.LSTM(3, return_sequences=True, dtype="float64"),
        initializer=keras.initializers.RandomNormal(stddev=0.5, seed=5), dtype="float64",
    )
    wrapper(x)
    weights = np.random.default_rng(6).normal(size=(3, 5, 3))

    def loss():
        return tf.reduce_sum(wrapper(x) * weights)

    with tf.GradientTape() as tape:
        value = loss()
    gradients = tape.gradient(value, wrapper.initial_states)
    eps = 1e-6
    for variable, gradient in zip(wrapper.initial_states, gradients):
        assert np.abs(gradient.numpy()).min() > 1e-4, "a state unit receives no gradient"
        numeric = np.zeros(variable.shape)
        for i in range(variable.shape[0]):
            base = variable.numpy()
            for sign in (1, -1):
                shifted = base.copy()
                shifted[i] += sign * eps
                variable.assign(shifted)
                numeric[i] += sign * float(loss()) / (2 * eps)
            variable.assign(base)
        np.testing.assert_allclose(gradient.numpy(), numeric, rtol=1e-6, atol=1e-8)


def test_training_moves_the_states_and_fits_the_first_step():
    # y_t = x_{t-1}, with a fixed "x_{-1}" = 2 that only the initial state can supply.
    rng = np.random.default_rng(7)
    x = rng.normal(size=(256, 6, 1)).astype("float32")
    y = np.concatenate([np.full((256, 1, 1), 2.0, "float32"), x[:, :-1]], axis=1)
    wrapper = LearnedInitialState(keras.layers.SimpleRNN(8, return_sequences=True))
    model = keras.Sequential([keras.Input((None, 1)), wrapper, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(2e-2), "mse")
    first_step_before = float(np.mean((model.predict(x, verbose=0)[:, 0] - 2.0) ** 2))
    model.fit(x, y, batch_size=64, epochs=15, verbose=0)
    first_step_after = float(np.mean((model.predict(x, verbose=0)[:, 0] - 2.0) ** 2))
    assert np.linalg.norm(wrapper.initial_states[0].numpy()) > 0.1
    assert first_step_after < 0.05 * first_step_before, (first_step_before, first_step_after)


def test_rejects_layers_it_cannot_wrap():
    with pytest.raises(ValueError, match="wraps a keras.layers.RNN"):
        LearnedInitialState(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="stateful=True"):
        LearnedInitialState(keras.layers.GRU(3, stateful=True))
