"""AttentionDecoder and StateBridge: the layer contract, step-by-step decoding, masks, bridges."""

import numpy as np
import pytest
import tensorflow as tf
from layer_contract import run_layer_contract

from seqzoo.zoo.layers import AttentionDecoder, BidirectionalEncoder, StateBridge

B, TT, TS, V, UNITS, DM = 3, 4, 6, 11, 5, 7
LENGTHS = np.array([6, 4, 2])


def decoder_data(memory_dim=DM, num_states=2, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.integers(1, V, size=(B, TT)).astype("int32")
    memory = rng.normal(size=(B, TS, memory_dim)).astype("float32")
    states = [rng.normal(size=(B, UNITS)).astype("float32") for _ in range(num_states)]
    mask = np.arange(TS)[None, :] < LENGTHS[:, None]
    return target, memory, states, mask


# Weights: embedding, 3 per cell, the attention's own, `combine` (with attention) and logits (2).
@pytest.mark.parametrize(
    "attention, cell, num_layers, weights",
    [("bahdanau", "lstm", 1, 1 + 3 + 4 + 1 + 2), ("luong_general", "lstm", 1, 1 + 3 + 1 + 1 + 2),
     ("luong_dot", "gru", 2, 1 + 6 + 0 + 1 + 2), ("none", "gru", 1, 1 + 3 + 2)],
)
def test_decoder_contract(attention, cell, num_layers, weights, tmp_path):
    memory_dim = UNITS if attention == "luong_dot" else DM
    num_states = num_layers * (2 if cell == "lstm" else 1)
    target, memory, states, mask = decoder_data(memory_dim, num_states)
    outputs = run_layer_contract(
        lambda: AttentionDecoder(V, UNITS, embedding_dim=3, cell=cell, num_layers=num_layers,
                                 attention=attention),
        [target, memory, *states], mask=mask,
        expected_output_shapes=[(B, TT, V), (B, TT, TS)], expected_num_trainable_weights=weights,
        tmp_path=tmp_path,
    )
    weights = outputs[1]
    padded = np.broadcast_to(~mask[:, None, :], weights.shape)
    assert np.all(weights[padded] == 0.0)
    if attention == "none":
        assert np.all(weights == 0.0)
    else:
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "attention, cell, num_layers",
    [("bahdanau", "gru", 2), ("luong_general", "lstm", 2), ("none", "lstm", 1)],
)
def test_step_by_step_decoding_equals_teacher_forcing(attention, cell, num_layers):
    num_states = num_layers * (2 if cell == "lstm" else 1)
    target, memory, states, mask = decoder_data(num_states=num_states, seed=1)
    decoder = AttentionDecoder(V, UNITS, cell=cell, num_layers=num_layers, attention=attention)
    logits, weights = decoder([target, memory, *states], mask=mask)
    keys = decoder.project_memory(memory)
    state = decoder.initial_state(memory, states)
    for t in range(TT):
        step_logits, state, step_weights = decoder.step(target[:, t], state, memory, keys, mask)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)
        np.testing.assert_allclose(step_weights, weights[:, t], atol=1e-6)


def test_decoder_without_attention_ignores_the_memory():
    target, memory, states, _ = decoder_data(seed=2)
    decoder = AttentionDecoder(V, UNITS, attention="none")
    first, _ = decoder([target, memory, *states])
    second, _ = decoder([target, memory * 10.0 + 1.0, *states])
    np.testing.assert_array_equal(first, second)


def test_decoder_initial_states_default_to_zeros_and_count_is_checked():
    target, memory, _, _ = decoder_data(seed=3)
    decoder = AttentionDecoder(V, UNITS, cell="gru", num_layers=2)
    zeros = [np.zeros((B, UNITS), "float32")] * 2
    np.testing.assert_allclose(decoder([target, memory])[0],
                               decoder([target, memory, *zeros])[0], atol=1e-6)
    with pytest.raises(ValueError, match="takes 2 initial states. Received: 1"):
        decoder([target, memory, zeros[0]])


def test_decoder_dropout_acts_in_training_only():
    target, memory, states, mask = decoder_data(seed=7)
    decoder = AttentionDecoder(V, UNITS, dropout=0.5)
    inference = [decoder([target, memory, *states], mask=mask, training=False)[0]
                 for _ in range(2)]
    training = decoder([target, memory, *states], mask=mask, training=True)[0]
    np.testing.assert_array_equal(inference[0], inference[1])
    assert np.abs(np.asarray(training) - np.asarray(inference[0])).max() > 1e-3


def test_bridge_contract_and_dense_closed_form(tmp_path):
    rng = np.random.default_rng(5)
    encoder_states = [rng.normal(size=(B, size)).astype("float32") for size in (4, 4, 3, 3)]
    bridges = []

    def factory():
        bridges.append(StateBridge(UNITS, cell="lstm", num_layers=2))
        return bridges[-1]

    outputs = run_layer_contract(factory, encoder_states,
                                 expected_output_shapes=[(B, UNITS)] * 4,
                                 expected_num_trainable_weights=2, tmp_path=tmp_path)
    joined = np.concatenate(encoder_states, axis=1)
    kernel = bridges[0].projection.kernel.numpy()
    bias = bridges[0].projection.bias.numpy()
    for index, output in enumerate(outputs):
        columns = slice(index * UNITS, (index + 1) * UNITS)
        expected = np.tanh(joined @ kernel[:, columns] + bias[columns])
        np.testing.assert_allclose(output, expected, atol=1e-5)


@pytest.mark.parametrize("mode", ["learned", "zeros"])
def test_bridge_learned_and_zero_modes(mode, tmp_path):
    encoder_states = [np.ones((B, 4), "float32")] * 2
    outputs = run_layer_contract(lambda: StateBridge(UNITS, cell="gru", num_layers=3, mode=mode),
                                 encoder_states, expected_output_shapes=[(B, UNITS)] * 3,
                                 expected_num_trainable_weights=int(mode == "learned"),
                                 tmp_path=tmp_path)
    for output in outputs:
        np.testing.assert_array_equal(output, 0.0)
    if mode == "learned":
        bridge = StateBridge(UNITS, cell="gru", num_layers=3, mode=mode)
        with tf.GradientTape() as tape:
            total = tf.add_n([tf.reduce_sum(s * (i + 1.0))
                              for i, s in enumerate(bridge(encoder_states))])
        gradient = tape.gradient(total, bridge.trainable_weights)[0].numpy()
        np.testing.assert_allclose(gradient, np.repeat([[1.0], [2.0], [3.0]], UNITS, 1) * B)


def test_bridge_maps_a_bidirectional_encoder_to_a_deeper_unidirectional_decoder():
    rng = np.random.default_rng(6)
    source = rng.normal(size=(B, TS, 3)).astype("float32")
    mask = np.arange(TS)[None, :] < LENGTHS[:, None]
    memory, encoder_states = BidirectionalEncoder(4, cell="lstm", num_layers=2)(source, mask=mask)
    assert len(encoder_states) == 8
    bridge = StateBridge(UNITS, cell="gru", num_layers=3)
    decoder_states = bridge(encoder_states)
    target, _, _, _ = decoder_data()
    logits, weights = AttentionDecoder(V, UNITS, cell="gru", num_layers=3)(
        [target, memory, *decoder_states], mask=mask)
    assert logits.shape == (B, TT, V) and weights.shape == (B, TT, TS)


def test_bad_arguments_say_what_is_accepted():
    with pytest.raises(ValueError, match="attention='additive'"):
        AttentionDecoder(V, UNITS, attention="additive")
    with pytest.raises(ValueError, match="cell='rnn'"):
        AttentionDecoder(V, UNITS, cell="rnn")
    with pytest.raises(ValueError, match="vocab_size=0"):
        AttentionDecoder(0, UNITS)
    with pytest.raises(ValueError, match="mode='copy'"):
        StateBridge(UNITS, mode="copy")
