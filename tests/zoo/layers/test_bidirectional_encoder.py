"""BidirectionalEncoder: shared contract, and outputs/states against a NumPy re-implementation."""

import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from layer_contract import run_layer_contract

from seqzoo.zoo.layers import BidirectionalEncoder

LENGTHS = np.array([6, 4, 1])


def _batch(features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(LENGTHS), LENGTHS.max(), features)).astype("float32")
    mask = np.arange(LENGTHS.max())[None, :] < LENGTHS[:, None]
    return x, mask


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _lstm_step(x, state, weights):
    kernel, recurrent, bias = weights
    h, c = state
    i, f, g, o = np.split(x @ kernel + h @ recurrent + bias, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return h, (h, c)


def _gru_step(x, state, weights):
    kernel, recurrent, bias = weights  # reset_after=True: bias rows are (input, recurrent)
    (h,) = state
    xz, xr, xh = np.split(x @ kernel + bias[0], 3, axis=-1)
    hz, hr, hh = np.split(h @ recurrent + bias[1], 3, axis=-1)
    z, r = _sigmoid(xz + hz), _sigmoid(xr + hr)
    h = z * h + (1.0 - z) * np.tanh(xh + r * hh)
    return h, (h,)


def _run_direction(cell, sequence, weights, units):
    """Runs one direction over an unpadded [time, features] sequence; returns outputs, states."""
    step = _lstm_step if cell == "lstm" else _gru_step
    state = tuple(np.zeros(units) for _ in range(2 if cell == "lstm" else 1))
    outputs = []
    for x in sequence:
        h, state = step(x, state, weights)
        outputs.append(h)
    return np.stack(outputs), list(state)


def _numpy_encoder(encoder, x, lengths):
    """Independent reference: every example trimmed to its length, run forward and reversed."""
    merge = {
        "concat": lambda f, b: np.concatenate([f, b], -1),
        "sum": lambda f, b: f + b,
        "ave": lambda f, b: (f + b) / 2,
        "mul": lambda f, b: f * b,
    }[encoder.merge_mode]
    units, cell = encoder.units, encoder.cell
    outputs = np.zeros(x.shape[:2] + (encoder.output_dim,))
    states = [[] for _ in range(2 * encoder.num_layers * encoder.states_per_direction)]
    for b, length in enumerate(lengths):
        sequence = x[b, :length].astype("float64")
        slot = 0
        for fwd, bwd in zip(encoder.forward_layers, encoder.backward_layers):
            f_out, f_states = _run_direction(cell, sequence, fwd.get_weights(), units)
            b_out, b_states = _run_direction(cell, sequence[::-1], bwd.get_weights(), units)
            sequence = merge(f_out, b_out[::-1])
            for state in f_states + b_states:
                states[slot].append(state)
                slot += 1
        outputs[b, :length] = sequence
    return outputs, [np.stack(s) for s in states]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
def test_matches_numpy_reference_on_masked_batch(cell, merge_mode):
    x, mask = _batch()
    encoder = BidirectionalEncoder(4, cell=cell, num_layers=2, merge_mode=merge_mode)
    outputs, states = encoder(x, mask=mask)
    expected_outputs, expected_states = _numpy_encoder(encoder, x, LENGTHS)
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    assert len(states) == len(expected_states) == 4 * encoder.states_per_direction
    for actual, expected in zip(states, expected_states):
        np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_without_mask_equals_full_length_mask():
    x, _ = _batch()
    encoder = BidirectionalEncoder(4, cell="gru", num_layers=2, merge_mode="ave")
    unmasked_outputs, unmasked_states = encoder(x)
    expected_outputs, expected_states = _numpy_encoder(encoder, x, [x.shape[1]] * len(x))
    np.testing.assert_allclose(unmasked_outputs, expected_outputs, atol=1e-5)
    for actual, expected in zip(unmasked_states, expected_states):
        np.testing.assert_allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize("cell,num_layers,merge_mode", [("lstm", 2, "concat"), ("gru", 1, "sum")])
def test_layer_contract(cell, num_layers, merge_mode, tmp_path):
    x, mask = _batch()
    units = 4
    encoder_dim = 2 * units if merge_mode == "concat" else units
    n_states = 2 * num_layers * (2 if cell == "lstm" else 1)
    run_layer_contract(
        lambda: BidirectionalEncoder(units, cell=cell, num_layers=num_layers,
                                     merge_mode=merge_mode, dropout=0.3),
        x,
        mask=mask,
        expected_output_shapes=((3, 6, encoder_dim), [(3, units)] * n_states),
        expected_num_trainable_weights=2 * 3 * num_layers,  # kernels and bias per direction
        tmp_path=tmp_path,
    )


def test_dropout_acts_between_layers_only_in_training():
    x, _ = _batch()
    single = BidirectionalEncoder(4, num_layers=1, dropout=0.5)
    # Training runs the recurrent loops XLA-compiled, which round differently in the last bits.
    np.testing.assert_allclose(single(x, training=True)[0], single(x, training=False)[0],
                               atol=1e-6)
    stacked = BidirectionalEncoder(4, num_layers=2, dropout=0.5)
    inference = stacked(x, training=False)[0]
    np.testing.assert_allclose(stacked(x, training=False)[0], inference)
    assert np.abs(np.asarray(stacked(x, training=True)[0]) - inference).max() > 1e-3


def test_mask_propagates_to_outputs_in_functional_model():
    tokens = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)(tokens)
    outputs, states = BidirectionalEncoder(2, cell="gru")(embedded)
    pooled = keras.layers.GlobalAveragePooling1D()(outputs)
    model = keras.Model(tokens, pooled)
    ids = np.array([[3, 4, 0, 0], [5, 6, 7, 8]])
    full = model(ids).numpy()
    trimmed = model(ids[:1, :2]).numpy()
    # The masked average ignores the two padded steps, so padding leaves the pooled vector as is.
    np.testing.assert_allclose(full[0], trimmed[0], atol=1e-6)
    assert len(states) == 2


def test_states_per_direction():
    assert BidirectionalEncoder(2, cell="lstm").states_per_direction == 2
    assert BidirectionalEncoder(2, cell="gru").states_per_direction == 1


@pytest.mark.parametrize("kwargs,message", [
    ({"units": 0}, "units=0"),
    ({"units": 4, "cell": "rnn"}, "cell='rnn'"),
    ({"units": 4, "num_layers": 0}, "num_layers=0"),
    ({"units": 4, "merge_mode": "max"}, "merge_mode='max'"),
    ({"units": 4, "dropout": 1.0}, "dropout=1.0"),
])
def test_rejects_bad_arguments_naming_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        BidirectionalEncoder(**kwargs)


def _op_types(graph_def):
    ops = {n.op for n in graph_def.node}
    ops.update(n.op for f in graph_def.library.function for n in f.node_def)
    return ops


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_uses_cudnn_on_gpu_but_never_in_a_saved_model(cell, monkeypatch, tmp_path):
    rnn_backend = importlib.import_module("keras.src.backend.tensorflow.rnn")
    monkeypatch.setattr(rnn_backend, "_is_gpu_available", lambda: True)  # a GPU "is visible"
    x, mask = _batch()
    inputs = keras.Input((None, 3))
    outputs, _ = BidirectionalEncoder(2, cell=cell, num_layers=2)(inputs)
    model = keras.Model(inputs, outputs)
    spec = tf.TensorSpec([None, None, 3], tf.float32)
    training_graph = tf.function(model).get_concrete_function(spec).graph.as_graph_def()
    assert any("Cudnn" in op for op in _op_types(training_graph))

    module = tf.Module()
    module.model = model
    module.serve = tf.function(lambda x: model(x), input_signature=[spec])
    tf.saved_model.save(module, str(tmp_path / "export"), signatures={"serving_default": module.serve})
    saved = saved_model_pb2.SavedModel.FromString((tmp_path / "export" / "saved_model.pb").read_bytes())
    exported = _op_types(saved.meta_graphs[0].graph_def)
    assert "While" in exported or "StatelessWhile" in exported  # the generic recurrent loop
    assert not any("Cudnn" in op for op in exported)
    assert model.layers[1].forward_layers[0].use_cudnn == "auto"
