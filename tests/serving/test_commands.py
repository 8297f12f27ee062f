"""`seqzoo serve` and `seqzoo predict`: TF Serving's flag spellings and use over loopback."""

import io
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from toy_saved_model import reference_affine

from seqzoo.serving.cli import build_parser
from seqzoo.serving.cli import main as seqzoo
from seqzoo.serving.client import Client
from seqzoo.serving.predict_request import format_outputs
from seqzoo.serving.server import ModelServer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class StatsModule(tf.Module):
    """Signatures whose outputs are not one row per input: scalars and other batch sizes."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence")])
    def words(self, sentence):
        counts = tf.cast(tf.strings.split(sentence).row_lengths(), tf.int32)
        return {"words": counts, "total_words": tf.reduce_sum(counts)}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    def moments(self, x):
        return {"total": tf.reduce_sum(x), "column_means": tf.reduce_mean(x, axis=0)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence")])
    def joined(self, sentence):
        return {"joined": tf.strings.reduce_join(sentence, separator="|")}


@pytest.fixture(scope="module")
def stats_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats_models")
    module = StatsModule()
    tf.saved_model.save(module, str(root / "stats" / "1"),
                        signatures={"serving_default": module.words, "moments": module.moments,
                                    "joined": module.joined})
    server = ModelServer(root, rest_port=0, grpc_port=0, poll_seconds=0)
    server.start()
    yield server
    server.stop()


def _ports(server):
    return ["--port", str(server.grpc_port), "--rest_api_port", str(server.rest_port)]


@pytest.mark.parametrize("via_flag", [[], ["--grpc"]])
def test_predict_prints_each_input_with_its_outputs(server, capsys, via_flag):
    code = seqzoo(["predict", "toy", "hi", "hello there", *_ports(server), *via_flag])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "hi", "  label: short", "  length: 2", "hello there", "  label: long", "  length: 11"]


@pytest.mark.parametrize("via_flag", [[], ["--grpc"]])
def test_predict_texts_go_to_the_string_input_whatever_its_name(stats_server, capsys, via_flag):
    # Texts after an option too; scalar outputs follow the rows, by name.
    code = seqzoo(["predict", "stats", *via_flag, "a b c", "hello", *_ports(stats_server)])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "a b c", "  words: 3", "hello", "  words: 1", "total_words: 4"]


def test_format_outputs_decodes_strings_and_keeps_bytes():
    outputs = {"best": np.array("été", dtype=object), "best_bytes": np.array(b"\x00a"),
               "scores": np.array([0.25, 0.5, 1 / 3], np.float32)}
    assert format_outputs(outputs, ["a"]).splitlines() == [
        "best: été", "best_bytes: b'\\x00a'", "scores: [0.25, 0.5, 0.333333]"]
    assert json.loads(format_outputs(outputs, [], "json")) == {
        "best": "été", "best_bytes": {"b64": "AGE="}, "scores": [0.25, 0.5, 0.33333334]}


@pytest.mark.parametrize("flags, version", [([], 2), (["--grpc", "--version", "1"], 1)])
def test_predict_named_inputs_of_a_numeric_signature(server, capsys, flags, version):
    x, k = [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]], [4, -2]
    code = seqzoo(["predict", "toy", "--signature", "affine", "--input", f"x={json.dumps(x)}",
                   "--input", f"k={json.dumps(k)}", "--output", "json", *flags, *_ports(server)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["y"]
    np.testing.assert_allclose(printed["y"], reference_affine(x, k, version))


def test_predict_prints_outputs_that_are_not_rows_by_name(stats_server, capsys):
    code = seqzoo(["predict", "stats", "--signature", "moments", "--input",
                   "x=[[1, 2], [3, 5], [5, 5]]", *_ports(stats_server)])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == ["column_means: [3, 4]", "total: 21"]
    code = seqzoo(["predict", "stats", "--signature", "moments", "--input", "x=[[1, 2], [3, 5]]",
                   "--output", "json", "--grpc", *_ports(stats_server)])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"column_means": [2.0, 3.5], "total": 11.0}


def test_predict_sends_a_json_request_body(server, capsys, tmp_path, monkeypatch):
    rows = {"signature_name": "affine",
            "instances": [{"x": [1, 2, 3], "k": 1}, {"x": [0, 0, 1], "k": 2}]}
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    assert seqzoo(["predict", "toy", "--json", str(tmp_path / "rows.json"),
                   *_ports(server)]) == 0
    # Matrices print with their rows aligned under the first.
    assert capsys.readouterr().out.splitlines() == ["y: [[4, 7, 10],",
                                                    "    [2, 2, 5]]"]
    columns = {"inputs": {"x": [[1.5, 0, 0]], "k": [0]}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(columns)))
    assert seqzoo(["predict", "toy", "--json", "-", "--signature", "affine", "--output", "json",
                   "--grpc", *_ports(server)]) == 0
    assert json.loads(capsys.readouterr().out) == {"y": [[4.5, 0.0, 0.0]]}


@pytest.mark.parametrize("argv, message", [
    (["nope", "hi"], "Servable not found"),
    (["toy", "hi", "--signature", "affine"],
     "single string input, but signature 'affine' of model 'toy' has inputs k (int32 [None]), "
     "x (float32 [None, 3])"),
    (["toy", "hi", "--input", "text=[\"hi\"]"], "Received: TEXT and --input"),
    (["toy"], "Received: none of them"),
    (["toy", "--signature", "affine", "--input", "z=[1]"],
     "has no input 'z'; its inputs are k (int32 [None]), x (float32 [None, 3])"),
    (["toy", "--signature", "affine", "--input", "x=[[1, 2, 3]"],
     "--input x: the value is not JSON"),
    (["toy", "--signature", "affine", "--input", "x"], "--input takes NAME=JSON"),
    (["toy", "--signature", "affine", "--input", "x=[[1, 2, 3]]"], "missing: k"),
    (["toy", "--signature", "affine", "--input", "x=[[1, 2, 3]]", "--input", "k=[0.5]"],
     "--input k expects int32 values; received 0.5"),
    (["toy", "--signature", "affine", "--input", "k=[1]", "--input", "k=[2]"], "given twice"),
])
def test_predict_reports_user_errors(server, capsys, argv, message):
    assert seqzoo(["predict", *argv, *_ports(server)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("body, message", [
    ('{"instances": [1', "rows.json is not JSON"),
    ('{"instance": ["hi"]}',
     "keys among instances, inputs, signature_name. Received: keys instance"),
    ('["hi"]', "Received: list"),
    ('{"instances": ["hi"], "signature_name": "echo"}', "signature_name 'echo' differ"),
    ('{"instances": ["hi"], "inputs": ["hi"]}', "exactly one of 'instances'"),
])
def test_predict_reports_bad_request_bodies(server, capsys, tmp_path, body, message):
    (tmp_path / "rows.json").write_text(body)
    argv = ["predict", "toy", "--json", str(tmp_path / "rows.json"), "--signature", "affine"]
    assert seqzoo([*argv, *_ports(server)]) == 2
    assert message in capsys.readouterr().err


def test_serve_accepts_tf_serving_flags():
    args = build_parser().parse_args([
        "serve", "--port=9000", "--rest_api_port=9001", "--model_name=m",
        "--model_base_path=/models/m", "--file_system_poll_wait_seconds=5"])
    assert (args.port, args.rest_api_port, args.model_name, args.model_base_path,
            args.poll_seconds) == (9000, 9001, "m", "/models/m", 5.0)
    assert seqzoo(["serve", "--model_name", "m"]) == 2
    assert seqzoo(["serve", "--models-dir", "x", "--model_config_file", "y"]) == 2
    args = build_parser().parse_args([
        "serve", "--model_config_file=/models/models.config",
        "--model_config_file_poll_wait_seconds=60"])
    assert args.model_config_file == "/models/models.config"


def test_serve_command_serves_until_sigterm(toy_models_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "seqzoo.serving.cli", "serve", "--models-dir", str(toy_models_dir),
         "--port", "0", "--rest_api_port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        banner = process.stdout.readline()
        assert banner.startswith("Serving {'toy': [2]}"), banner  # latest version only
        grpc_port = int(banner.split("gRPC on 127.0.0.1:")[1].split(",")[0])
        rest_port = int(banner.split("http://127.0.0.1:")[1].split("/")[0])
        client = Client(rest_port=rest_port, grpc_port=grpc_port)
        assert client.predict("toy", {"text": ["abcd"]}, via="grpc")["label"].tolist() == ["long"]
        assert client.predict("toy", {"text": ["abc"]})["label"].tolist() == ["short"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("via", ["rest", "grpc"])
def test_scalar_string_output_is_answered(stats_server, via):
    from seqzoo.serving.client import Client

    client = Client(rest_port=stats_server.rest_port, grpc_port=stats_server.grpc_port)
    try:
        outputs = client.predict("stats", {"sentence": ["a b", "c"]}, signature_name="joined",
                                 via=via)
    finally:
        client.close()
    assert np.asarray(outputs["joined"]).item() in ("a b|c", b"a b|c")


def test_predict_names_bad_image_files_before_sending(server, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "photo.png").write_bytes(b"GIF89a, whatever the suffix says")
    for paths, message in [
        (["nowhere.png"], "--image nowhere.png: no such file or directory"),
        ([str(tmp_path / "empty")], "the directory holds no image file (accepted: .jpeg, .jpg"),
        ([str(tmp_path)], f"--image takes JPEG and PNG files; these are neither: "
                          f"{tmp_path / 'photo.png'}"),
    ]:
        argv = ["predict", "toy"] + [arg for path in paths for arg in ("--image", path)]
        assert seqzoo([*argv, *_ports(server)]) == 2
        assert message in capsys.readouterr().err
    (tmp_path / "real.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert seqzoo(["predict", "toy", "hi", "--image", str(tmp_path / "real.png"),
                   *_ports(server)]) == 2
    assert "Give the request one way" in capsys.readouterr().err
