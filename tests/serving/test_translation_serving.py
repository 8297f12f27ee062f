"""A date translator exported and served: REST and gRPC agree with the SavedModel in process,
for batches of sentences of different lengths, on every signature.

The model is trained two steps only (learning is tested in tests/training/test_translation_task.py):
these tests are about the export and the wire, which such a model exercises just as well. It is
the `dates_translation` run of tests/conftest.py, shared with the `seqzoo attention` tests."""

import numpy as np
import pytest
import tensorflow as tf
from decoding_checks import assert_same_outputs

from seqzoo.serving.client import Client
from seqzoo.serving.server import ModelServer

SENTENCES = ["the third of March, 2021", "03/04/21", "Wednesday, March 3, 2021", "1.2.99"]


@pytest.fixture(scope="module")
def exported(dates_translation):
    _, models_dir = dates_translation
    return models_dir, models_dir / "dates" / "1"


@pytest.fixture(scope="module")
def in_process(exported):
    return tf.saved_model.load(str(exported[1]))


def local(in_process, signature):
    outputs = in_process.signatures[signature](text=tf.constant(SENTENCES))
    return {name: value.numpy() for name, value in outputs.items()}


def test_export_holds_every_signature_and_the_vocabularies(exported, in_process):
    _, version_dir = exported
    assert set(in_process.signatures) == {"serving_default", "greedy", "nbest", "attention"}
    assert (version_dir / "assets.extra" / "tf_serving_warmup_requests").is_file()
    default = local(in_process, "serving_default")
    nbest = local(in_process, "nbest")
    assert default["translation"].shape == (4,) and default["score"].shape == (4,)
    assert nbest["translations"].shape == (4, 3) and nbest["scores"].shape == (4, 3)
    # The best of the n-best list is the default translation; scores are sorted, best first.
    np.testing.assert_array_equal(nbest["translations"][:, 0], default["translation"])
    np.testing.assert_allclose(nbest["scores"][:, 0], default["score"], rtol=1e-5)
    assert np.all(np.diff(nbest["scores"], axis=1) <= 1e-6)


def test_attention_signature_matches_tokens_and_sums_to_one(in_process):
    out = local(in_process, "attention")
    weights, source, target = out["attention"], out["source_tokens"], out["target_tokens"]
    assert weights.shape == (4, target.shape[1], source.shape[1])
    for row, sentence in enumerate(SENTENCES):
        tokens = [t.decode("utf-8") for t in source[row] if t]
        assert "".join(tokens) == sentence
        valid_source = source[row] != b""
        written = target[row] != b""
        assert np.all(weights[row][:, ~valid_source] == 0.0)
        np.testing.assert_allclose(weights[row][written].sum(axis=1), 1.0, atol=1e-5)
        translation = "".join(t.decode("utf-8") for t in target[row][written] if t != b"</s>")
        assert translation == out["translation"][row].decode("utf-8")


def test_server_answers_like_the_saved_model_over_rest_and_grpc(exported, in_process):
    models_dir, _ = exported
    with ModelServer(models_dir, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        for via in ("rest", "grpc"):
            for signature in ("serving_default", "greedy", "nbest", "attention"):
                remote = client.predict("dates", {"text": SENTENCES}, signature_name=signature,
                                        via=via)
                assert_same_outputs(remote, local(in_process, signature), f"{via} {signature}")
        client.close()
