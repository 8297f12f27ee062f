"""A captioner exported and served by `seqzoo serve` in a separate process: REST (b64) and gRPC
(bytes) agree with the SavedModel in process on every signature; `seqzoo predict --image` prints
the captions of files and directories; bad images get INVALID_ARGUMENT naming the input and the
server keeps serving.

The model is trained two steps only (learning is tested in
tests/training/tasks/test_captioning_task.py): these tests are about the export and the wire, and
an untrained model exercises them as well."""

import http.client
import json
import subprocess

import grpc
import numpy as np
import pytest
import tensorflow as tf
from damaged_images import damaged_png
from decoding_checks import as_text, assert_same_outputs
from server_process import SEQZOO, ServerProcess
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from seqzoo.serving.client import Client
from seqzoo.serving.serving_error import ServingError
from seqzoo.training import run_directory

SIGNATURES = ("serving_default", "greedy", "nbest", "attention", "pixels")


@pytest.fixture(scope="module")
def exported(shapes_captioner):
    run_dir, models_dir = shapes_captioner
    task, model = run_directory.restore(run_dir)
    # Pictures of another size than the model's, as PNG and JPEG files.
    pictures = [tf.io.encode_png(tf.image.resize(image, [40, 56], antialias=True)
                                 .numpy().round().astype(np.uint8)).numpy()
                for image in task.validation.images[:2]]
    pictures.append(tf.io.encode_jpeg(task.validation.images[2], quality=90).numpy())
    return models_dir, models_dir / "shapes" / "1", (task, model), pictures


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
def served(exported, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with ServerProcess(exported[0], log) as server:
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        yield client
        client.close()
        code, _ = server.stop()
        assert code == 0, server.log()


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
    ("nbest", {"image": [tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()[:30]]},
     r"Input image holds bytes that begin as a JPEG or PNG file but end before the image .* \[0\]"),
    ("attention", {"image": [damaged_png(tf.io.encode_png(np.full((8, 8, 3), 7, np.uint8))
                                         .numpy())]},
     r"Invalid PNG data(.|\n)*decoding_input_image/"),
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


@pytest.mark.parametrize("via", ["rest", "grpc"])
def test_predict_prints_the_captions_of_image_files_and_directories(served, exported, in_process,
                                                                    tmp_path, via):
    pictures = exported[3]
    names = ["b.png", "a.png", "c.jpg"]
    for name, picture in zip(names, pictures):
        (tmp_path / name).write_bytes(picture)
    (tmp_path / "notes.txt").write_text("not an image: left out of the directory")
    ports = (["--grpc", "--port", str(served.grpc_port)] if via == "grpc"
             else ["--rest_api_port", str(served.rest_port)])
    result = subprocess.run([SEQZOO, "predict", "shapes", "--image", str(tmp_path), *ports],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    expected = local(in_process, "serving_default", pictures)
    lines = []
    for index in np.argsort(names):  # a directory's images in name order
        lines += [str(tmp_path / names[index]),
                  f"  caption: {expected['caption'][index].decode()}",
                  f"  score: {expected['score'][index]:.6g}"]
    assert result.stdout.splitlines() == lines
    one = subprocess.run([SEQZOO, "predict", "shapes", "--image", str(tmp_path / "c.jpg"),
                          "--signature", "greedy", *ports], capture_output=True, text=True,
                         timeout=120)
    greedy = local(in_process, "greedy", pictures[2:])["caption"][0].decode()
    assert one.stdout.splitlines()[:2] == [str(tmp_path / "c.jpg"), f"  caption: {greedy}"]
