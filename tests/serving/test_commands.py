"""`seqzoo serve` and `seqzoo predict`: TF Serving's flag spellings and end-to-end use."""

import os
import signal
import subprocess
import sys

import pytest

from serving.cli import build_parser
from serving.cli import main as seqzoo
from serving.client import Client

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("via_flag", [[], ["--grpc"]])
def test_predict_prints_each_input_with_its_outputs(server, capsys, via_flag):
    code = seqzoo(["predict", "toy", "hi", "hello there", "--port", str(server.grpc_port),
                   "--rest_api_port", str(server.rest_port), *via_flag])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "hi", "  label: short", "  length: 2", "hello there", "  label: long", "  length: 11"]


def test_predict_reports_user_errors(server, capsys):
    ports = ["--port", str(server.grpc_port), "--rest_api_port", str(server.rest_port)]
    assert seqzoo(["predict", "nope", "hi", *ports]) == 2
    assert "Servable not found" in capsys.readouterr().err
    assert seqzoo(["predict", "toy", "hi", "--signature", "affine", *ports]) == 2
    assert "one text input" in capsys.readouterr().err


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
        [sys.executable, "-m", "serving.cli", "serve", "--models-dir", str(toy_models_dir),
         "--port", "0", "--rest_api_port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        banner = process.stdout.readline()
        assert banner.startswith("Serving {'toy': [1, 2]}"), banner
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
