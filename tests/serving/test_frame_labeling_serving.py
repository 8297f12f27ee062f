"""A frame labeler exported and served: signatures equal the in-process model for padded batches,
raw and encoded frames agree, REST and gRPC answer the same, bad requests are INVALID_ARGUMENT
naming the input while the server keeps serving, and `seqzoo predict --frames` prints the
segments of a folder of frames.

The model is not trained (learning is tested in tests/training/tasks/): these tests are about
the export and the wire."""

import itertools
import os
import re
import subprocess
import sys

import grpc
import numpy as np
import pytest
import tensorflow as tf
from damaged_images import cut_short, damaged_png

from seqzoo.serving.client import Client
from seqzoo.serving.export import export_model
from seqzoo.serving.server import ModelServer
from seqzoo.serving.serving_error import ServingError
from seqzoo.training.tasks.frame_labeling import FrameLabelingConfig, FrameLabelingTask

SEQZOO = os.path.join(os.path.dirname(sys.executable), "seqzoo")
CONFIG = FrameLabelingConfig(num_train=4, num_validation=3, min_frames=5, max_frames=9,
                             frame_size=16, units=4, embedding_dim=4, frame_filters=[4])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("frame_labeling")
    task = FrameLabelingTask(CONFIG, run_dir=root / "run")
    task.prepare()
    model = task.build_model()
    version_dir = export_model(task, model, root / "models", "frames")
    videos = task.splits["validation"]
    return {"task": task, "model": model, "models_dir": root / "models",
            "loaded": tf.saved_model.load(str(version_dir)),
            "frames": videos.frames, "lengths": videos.lengths}


def _expected(exported, frames, lengths):
    logits = exported["model"]({"frames": frames, "lengths": lengths}).numpy()
    mask = np.arange(frames.shape[1])[None, :] < lengths[:, None]
    probabilities = tf.nn.softmax(logits).numpy() * mask[:, :, None]
    names = np.array(exported["task"].class_names, dtype=object)
    return np.where(mask, names[logits.argmax(-1)], ""), probabilities


def _with_frame_0_1(encoded, damage):
    """Encoded videos whose frame 1 of video 0 is `damage`d."""
    encoded = encoded.copy()
    encoded[0, 1] = damage(encoded[0, 1])
    return encoded


def _png(frames):
    return np.array([[tf.io.encode_png(frame).numpy() for frame in video] for video in frames],
                    dtype=object)


def test_signatures_equal_the_model_on_a_padded_batch(exported):
    frames, lengths = exported["frames"], exported["lengths"]
    assert len(set(lengths.tolist())) > 1
    signatures = exported["loaded"].signatures
    assert set(signatures) == {"serving_default", "encoded"}
    # Shapes are checked in the graph (TF Serving does not check them against signatures).
    _, inputs = signatures["serving_default"].structured_input_signature
    assert inputs == {"frames": tf.TensorSpec(None, tf.uint8, "frames"),
                      "lengths": tf.TensorSpec(None, tf.int32, "lengths")}
    out = signatures["serving_default"](frames=tf.constant(frames), lengths=tf.constant(lengths))
    labels, probabilities = _expected(exported, frames, lengths)
    np.testing.assert_array_equal(out["labels"].numpy().astype(str), labels.astype(str))
    np.testing.assert_allclose(out["probabilities"].numpy(), probabilities, atol=1e-6)
    mask = probabilities.sum(-1) > 0
    np.testing.assert_allclose(probabilities.sum(-1)[mask], 1.0, atol=1e-5)


def test_png_frames_and_other_sizes_give_the_same_labels(exported):
    frames, lengths = exported["frames"], exported["lengths"]
    signatures = exported["loaded"].signatures
    raw = signatures["serving_default"](frames=tf.constant(frames), lengths=tf.constant(lengths))
    encoded = _png(frames)
    encoded[0, lengths[0]:] = b""  # padding need not be an image
    out = signatures["encoded"](encoded_frames=tf.constant(encoded),
                                lengths=tf.constant(lengths))
    np.testing.assert_allclose(out["probabilities"].numpy(), raw["probabilities"].numpy(),
                               atol=1e-6)
    # Frames twice the size are resized in the graph, as tf.image.resize does.
    large = np.repeat(np.repeat(frames, 2, axis=2), 2, axis=3)
    resized = tf.image.resize(tf.constant(large.reshape(-1, 32, 32, 3)), (16, 16))
    resized = tf.cast(tf.round(resized), tf.uint8).numpy().reshape(frames.shape)
    _, expected = _expected(exported, resized, lengths)
    out = signatures["serving_default"](frames=tf.constant(large), lengths=tf.constant(lengths))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-6)


@pytest.fixture(scope="module")
def served(exported):
    with ModelServer(exported["models_dir"], rest_port=0, grpc_port=0, poll_seconds=0) as server:
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        yield client
        client.close()


@pytest.mark.parametrize("via", ["rest", "grpc"])
def test_server_answers_like_the_model(exported, served, via):
    frames, lengths = exported["frames"], exported["lengths"]
    labels, probabilities = _expected(exported, frames, lengths)
    out = served.predict("frames", {"frames": frames, "lengths": lengths}, via=via)
    np.testing.assert_array_equal(out["labels"].astype(str), labels.astype(str))
    np.testing.assert_allclose(out["probabilities"], probabilities, atol=1e-6)
    out = served.predict("frames", {"encoded_frames": _png(frames), "lengths": lengths},
                         signature_name="encoded", via=via)
    np.testing.assert_allclose(out["probabilities"], probabilities, atol=1e-6)


@pytest.mark.parametrize("via", ["rest", "grpc"])
@pytest.mark.parametrize("signature, inputs, named", [
    ("serving_default", lambda f, n: {"frames": f[:, 0], "lengths": n}, "frames"),
    ("serving_default", lambda f, n: {"frames": f[..., :2], "lengths": n}, "frames"),
    ("serving_default", lambda f, n: {"frames": f, "lengths": n[:1]}, "lengths"),
    ("serving_default", lambda f, n: {"frames": f, "lengths": n + f.shape[1]}, "lengths"),
    ("encoded", lambda f, n: {"encoded_frames": np.full(f.shape[:2], b"GIF89a", object),
                              "lengths": n}, "encoded_frames"),
    ("encoded", lambda f, n: {"encoded_frames": _png(f)[:, :, None], "lengths": n},
     "encoded_frames"),
    ("encoded", lambda f, n: {"encoded_frames": _with_frame_0_1(_png(f), cut_short),
                              "lengths": n},
     r"Input encoded_frames holds bytes that begin as a JPEG or PNG file but end before the "
     r"image does .* \[\[0 1\]\]"),
    ("encoded", lambda f, n: {"encoded_frames": _with_frame_0_1(_png(f), damaged_png),
                              "lengths": n},
     r"Invalid PNG data(.|\n)*decoding_input_encoded_frames/"),
])
def test_bad_requests_are_invalid_arguments_naming_the_input(exported, served, via, signature,
                                                            inputs, named):
    frames, lengths = exported["frames"], exported["lengths"]
    with pytest.raises(ServingError) as info:
        served.predict("frames", inputs(frames, lengths), signature_name=signature, via=via)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(named, info.value.message), info.value.message
    # The server keeps serving.
    out = served.predict("frames", {"frames": frames, "lengths": lengths}, via=via)
    assert out["labels"].shape == frames.shape[:2]


def _seqzoo(*args):
    return subprocess.run([SEQZOO, *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("via", ["rest", "grpc"])
def test_predict_command_prints_the_segments_of_a_folder_of_frames(exported, served, via,
                                                                   tmp_path):
    frames, length = exported["frames"][0], int(exported["lengths"][0])
    for index, frame in enumerate(frames[:length]):
        (tmp_path / f"frame_{index:03d}.png").write_bytes(tf.io.encode_png(frame).numpy())
    labels, _ = _expected(exported, frames[None, :length], np.array([length]))
    expected, start = [], 0
    for label, run in itertools.groupby(labels[0]):
        run_length = len(list(run))
        expected.append((start, start + run_length - 1, label))
        start += run_length
    port = ["--port", str(served.grpc_port), "--grpc"] if via == "grpc" else [
        "--rest-port", str(served.rest_port)]
    result = _seqzoo("predict", "frames", "--frames", str(tmp_path), *port)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["start", "end", "label"]
    assert [(int(s), int(e), label) for s, e, label in map(str.split, lines[1:])] == expected


def test_predict_command_names_frames_that_are_not_images(served, tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a picture")
    result = _seqzoo("predict", "frames", "--frames", str(tmp_path / "a.png"), "--rest-port",
                     str(served.rest_port))
    assert result.returncode == 2
    assert (f"--frames takes JPEG and PNG files; these are neither: {tmp_path / 'a.png'}"
            in result.stderr)
