"""SentimentClassifier .keras round trip, and its serving signature as a SavedModel."""

import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from seqzoo.zoo.models.sentiment import SentimentClassifier, SentimentServingModule

VOCABULARY = ["the", "plot", "was", "not", "good", "bad", "but", "acting", "great"]
TEXTS = ["The plot was not good, but the acting was great!", "bad", "", "unknown words only",
         "GOOD good good"]


def _model(**kwargs):
    kwargs = {"embedding_dim": 4, "units": 3, **kwargs}
    return SentimentClassifier(VOCABULARY, class_names=["neg", "neu", "pos"], **kwargs)


@pytest.mark.parametrize("kwargs", [
    {"pooling": "final", "cell": "gru"},
    {"pooling": "mean", "cell": "lstm", "num_layers": 2, "merge_mode": "sum", "dropout": 0.2},
    {"pooling": "max", "cell": "lstm", "merge_mode": "mul"},
])
def test_keras_round_trip_gives_identical_outputs(kwargs, tmp_path):
    model = _model(**kwargs)
    text = tf.constant(TEXTS)
    probabilities = model(text).numpy()
    assert probabilities.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)
    model.save(tmp_path / "sentiment.keras")
    reloaded = keras.saving.load_model(tmp_path / "sentiment.keras")
    assert isinstance(reloaded, SentimentClassifier)
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_array_equal(reloaded(text).numpy(), probabilities)


def test_padding_and_batch_neighbours_do_not_change_a_text_probabilities():
    model = _model(pooling="final", cell="lstm")
    alone = model(tf.constant(["bad"])).numpy()
    in_batch = model(tf.constant(["bad", "the plot was not good but the acting was great"]))
    np.testing.assert_allclose(in_batch[0], alone[0], atol=1e-6)


def test_serving_signature_outputs_labels_and_probabilities(tmp_path):
    model = _model(pooling="mean")
    module = SentimentServingModule(model)
    tf.saved_model.save(module, str(tmp_path / "export"), signatures=module.signatures)
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    function = loaded.signatures["serving_default"]
    _, inputs = function.structured_input_signature
    assert inputs == {"text": tf.TensorSpec([None], tf.string, name="text")}
    outputs = function(text=tf.constant(TEXTS))
    assert sorted(outputs) == ["label", "probabilities"]
    expected = model(tf.constant(TEXTS)).numpy()
    assert outputs["probabilities"].dtype == tf.float32
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-6)
    names = np.array([b"neg", b"neu", b"pos"])
    np.testing.assert_array_equal(outputs["label"].numpy(), names[expected.argmax(-1)])


@pytest.mark.parametrize("kwargs,message", [
    ({"pooling": "last"}, "pooling='last'"),
    ({"class_names": ["only"]}, "class_names=\\['only'\\]"),
    ({"embedding_dim": 0}, "embedding_dim=0"),
])
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SentimentClassifier(VOCABULARY, **kwargs)


def _op_types(graph):
    graph_def = graph.graph_def if hasattr(graph, "graph_def") else graph.as_graph_def()
    ops = {n.op for n in graph_def.node}
    ops.update(n.op for f in graph_def.library.function for n in f.node_def)
    return ops


def test_saved_model_has_no_cudnn_op_even_when_a_gpu_is_visible(monkeypatch, tmp_path):
    rnn_backend = importlib.import_module("keras.src.backend.tensorflow.rnn")
    monkeypatch.setattr(rnn_backend, "_is_gpu_available", lambda: True)
    model = _model(cell="lstm", pooling="final")
    module = SentimentServingModule(model)
    # Sanity check of the simulation: an in-process trace now uses the cuDNN kernel ...
    assert any("Cudnn" in op for op in _op_types(module.serve.get_concrete_function().graph))
    # ... while every function of the SavedModel (the signature, Keras' default one) does not.
    tf.saved_model.save(module, str(tmp_path / "export"), signatures=module.signatures)
    saved = saved_model_pb2.SavedModel.FromString((tmp_path / "export" / "saved_model.pb").read_bytes())
    ops = _op_types(saved.meta_graphs[0])
    assert "StringSplit" in ops or "StringSplitV2" in ops  # tokenization lives in the graph
    assert not any("Cudnn" in op for op in ops)
