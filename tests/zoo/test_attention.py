"""Attention layers: the layer contract and NumPy re-implementations of the scores."""

import numpy as np
import pytest
from layer_contract import run_layer_contract

from seqzoo.zoo.layers import BahdanauAttention, LuongAttention

B, T, DQ, DM = 3, 5, 4, 6
LENGTHS = np.array([5, 3, 1])


def data(query_dim=DQ, memory_dim=DM, seed=0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(B, query_dim)).astype("float32")
    memory = rng.normal(size=(B, T, memory_dim)).astype("float32")
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    return query, memory, mask


def numpy_attend(scores, memory, mask):
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("bt,btd->bd", weights, memory), weights


def check_against(reference_scores, outputs, memory, mask):
    context, weights = outputs
    expected_context, expected_weights = numpy_attend(reference_scores, memory, mask)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-5)
    np.testing.assert_allclose(context, expected_context, atol=1e-5)
    assert np.all(weights[~mask] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)


def test_bahdanau_contract_and_scores(tmp_path):
    query, memory, mask = data()
    layers = []

    def factory():
        layers.append(BahdanauAttention(7))
        return layers[-1]

    outputs = run_layer_contract(factory, [query, memory], mask=mask,
                                 expected_output_shapes=[(B, DM), (B, T)],
                                 expected_num_trainable_weights=4, tmp_path=tmp_path)
    w_query, w_memory, b_memory, v = [w.numpy() for w in
                                      (layers[0].query_dense.kernel, layers[0].memory_dense.kernel,
                                       layers[0].memory_dense.bias, layers[0].score_dense.kernel)]
    hidden = np.tanh((query @ w_query)[:, None, :] + memory @ w_memory + b_memory)
    check_against((hidden @ v)[..., 0], outputs, memory, mask)


@pytest.mark.parametrize("score", ["general", "dot"])
def test_luong_contract_and_scores(score, tmp_path):
    memory_dim = DM if score == "general" else DQ
    query, memory, mask = data(memory_dim=memory_dim, seed=1)
    layers = []

    def factory():
        layers.append(LuongAttention(score))
        return layers[-1]

    outputs = run_layer_contract(factory, [query, memory], mask=mask,
                                 expected_output_shapes=[(B, memory_dim), (B, T)],
                                 expected_num_trainable_weights=1 if score == "general" else 0,
                                 tmp_path=tmp_path)
    keys = memory @ layers[0].memory_dense.kernel.numpy() if score == "general" else memory
    check_against(np.einsum("bd,btd->bt", query, keys), outputs, memory, mask)


def test_luong_scaled_dot_divides_scores_by_sqrt_of_size():
    query, memory, mask = data(memory_dim=DQ, seed=2)
    outputs = [np.asarray(o) for o in LuongAttention("dot", scale=True)([query, memory],
                                                                        mask=mask)]
    check_against(np.einsum("bd,btd->bt", query, memory) / np.sqrt(DQ), outputs, memory, mask)


def test_attention_without_mask_spreads_over_every_step():
    query, memory, _ = data(seed=3)
    _, weights = BahdanauAttention(3)([query, memory])
    assert np.all(np.asarray(weights) > 0)


def test_bad_arguments_say_what_is_accepted():
    with pytest.raises(ValueError, match="units=0"):
        BahdanauAttention(0)
    with pytest.raises(ValueError, match="score='cosine'"):
        LuongAttention("cosine")
    query, memory, _ = data()
    with pytest.raises(ValueError, match="query_dim=4, memory_dim=6"):
        LuongAttention("dot")([query, memory])
