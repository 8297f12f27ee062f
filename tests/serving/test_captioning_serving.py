"""A captioner exported and served: REST (b64) and gRPC (bytes) agree with the SavedModel in
process on every signature; bad images get INVALID_ARGUMENT naming the input and the server keeps
serving.

The model is not trained (learning is tested in tests/training/tasks/test_captioning_task.py):
these tests are about the export and the wire, and an untrained model exercises them as well."""

import http.client
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from decoding_checks import as_text, assert_same_outputs
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from seqzoo.serving.client import Client
from seqzoo.serving.export import export_model
from seqzoo.serving.server import ModelServer
from seqzoo.serving.serving_error import ServingError
from seqzoo.training.tasks.captioning import CaptioningConfig, CaptioningTask

CONFIG = CaptioningConfig(image_size=32, filters=[4, 8], feature_dim=8, units=8, embedding_dim=8,
                          num_train=40, num_validation=6, beam_width=3, max_caption_length=8)
SIGNATURES = ("serving_default", "greedy", "nbest", "attention", "pixels")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("captioning")
    task = CaptioningTask(CONFIG, run_dir=root / "run")
    task.prepare()
    model = task.build_model()
    version_dir = export_model(task, model, root / "models", "shapes")
    # Pictures of another size than the model's, as PNG and JPEG files.
    pictures = [tf.io.encode_png(tf.image.resize(image, [40, 56], antialias=True)
                                 .numpy().round().astype(np.uint8)).numpy()
                for image in task.validation.images[:2]]
    pictures.append(tf.io.encode_jpeg(task.validation.images[2], quality=90).numpy())
    return root / "models", version_dir, (task, model), pictures


@pytest.fixture(scope="module")
def in_process(exported):
    return tf.saved_model.load(str(exported[1]))


def local(in_process, signature, pictures):
    if signature == "pixels":
        pixels = np.stack([tf.io.decode_image(p, channels=3).numpy() for p in pictures[:2]])
        outputs = in_process.signatures[signature](pixels=tf.constant(pixels, tf.float32))
    else:
        outputs = in_process.signatures[signature](image=tf.constant(pictures))
    return {name: value.numpy() for name, value in outputs.items()}


def test_signatures_agree_with_each_other(exported, in_process):
    _, version_dir, task, pictures = exported
    assert set(in_process.signatures) == set(SIGNATURES)
    assert (version_dir / "assets.extra" / "tf_serving_warmup_requests").is_file()
    default = local(in_process, "serving_default", pictures)
    nbest = local(in_process, "nbest", pictures)
    assert default["caption"].shape == (3,) and nbest["captions"].shape == (3, 3)
    np.testing.assert_array_equal(nbest["captions"][:, 0], default["caption"])
    np.testing.assert_allclose(nbest["scores"][:, 0], default["score"], rtol=1e-5)
    assert np.all(np.diff(nbest["scores"], axis=1) <= 1e-6)
    # The same pictures as decoded pixels give the same captions.
    pixels = local(in_process, "pixels", pictures)
    np.testing.assert_array_equal(pixels["caption"], default["caption"][:2])
    # The SavedModel decodes as the Keras model it was exported from.
    task, model = exported[2]
    images = [tf.cast(tf.io.decode_image(p, channels=3), tf.float32) for p in pictures]
    resized = np.stack([tf.image.resize(i, [32, 32], antialias=True) for i in images])
    greedy = local(in_process, "greedy", pictures)["caption"]
    assert [c.decode() for c in greedy] == task.caption(model, resized, "greedy")
    assert list(as_text(default["caption"])) == task.caption(model, resized, "beam")


def test_attention_signature_gives_weights_over_the_grid(in_process, exported):
    out = local(in_process, "attention", exported[3])
    weights, tokens = out["attention"], out["tokens"]
    assert weights.shape == (3, tokens.shape[1], 8, 8)  # 32 px, two stride-2 blocks
    for row in range(3):
        written = tokens[row] != b""
        np.testing.assert_allclose(weights[row][written].sum(axis=(1, 2)), 1.0, atol=1e-5)
        words = [t.decode() for t in tokens[row][written] if t != b"</s>"]
        assert " ".join(words) == out["caption"][row].decode()


@pytest.fixture(scope="module")
def served(exported):
    with ModelServer(exported[0], rest_port=0, grpc_port=0, poll_seconds=0) as server:
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        yield client
        client.close()


def test_server_answers_like_the_saved_model_over_rest_and_grpc(served, exported, in_process):
    pictures = exported[3]
    pixels = np.stack([tf.io.decode_image(p, channels=3).numpy() for p in pictures[:2]])
    for via in ("rest", "grpc"):
        for signature in SIGNATURES:
            inputs = ({"pixels": pixels.astype(np.float32)} if signature == "pixels"
                      else {"image": pictures})
            remote = served.predict("shapes", inputs, signature_name=signature, via=via)
            assert_same_outputs(remote, local(in_process, signature, pictures),
                                f"{via} {signature}")


@pytest.mark.parametrize("signature, inputs, message", [
    ("serving_default", {"image": [b""]}, "Input image holds an empty string"),
    ("greedy", {"image": [b"GIF89a...", b"\x89PNG\r\n\x1a\n"]},
     r"Input image accepts the bytes of JPEG or PNG files .* \[0\]"),
    ("pixels", {"pixels": np.full((1, 4, 4, 3), np.nan, np.float32)},
     r"Input pixels accepts RGB values in \[0, 255\]"),
])
def test_bad_images_are_invalid_arguments_and_the_server_keeps_serving(served, exported,
                                                                       signature, inputs,
                                                                       message):
    for via in ("rest", "grpc"):
        with pytest.raises(ServingError, match=message) as caught:
            served.predict("shapes", inputs, signature_name=signature, via=via)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT, (via, caught.value)
        assert caught.value.http_status == 400
        assert served.predict("shapes", {"image": exported[3][:1]}, via=via)["caption"].shape == (1,)


def test_numbers_sent_as_images_are_invalid_arguments(served):
    connection = http.client.HTTPConnection("127.0.0.1", served.rest_port, timeout=30)
    connection.request("POST", "/v1/models/shapes:predict", body=json.dumps({"instances": [1.5]}))
    response = connection.getresponse()
    assert response.status == 400
    assert "'image'" in json.loads(response.read())["error"]
    connection.close()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "shapes"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(np.array([1.5], np.float32)))
    with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'image'" in caught.value.details()
