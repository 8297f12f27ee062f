"""TF Serving's session flags on `seqzoo serve` in its own process: the thread counts of
`--tensorflow_*_parallelism` and the `session_config` of `--platform_config_file` reach the
model's TensorFlow session (its inter-op pool's threads, named `tf_Compute`, are counted in the
process), requests are answered as without them, and bad values are refused (the flags' before
TensorFlow loads)."""

import http.client
import json
import os
import pathlib
import re
import subprocess

import numpy as np
import grpc
import pytest
import tensorflow as tf
from server_process import SEQZOO, ServerProcess
from toy_saved_model import reference_affine, save_toy

from seqzoo.serving.batching_parameters import BatchingParameters
from seqzoo.serving.cli import build_parser, serve
from seqzoo.serving.platform_config import read_platform_config
from seqzoo.serving.servable import Servable
from seqzoo.serving.serving_error import ServingError

# More inter-op threads than TensorFlow's default (one per core) could make.
THREADS = len(os.sched_getaffinity(0)) + 3
ADAPTER = "[type.googleapis.com/tensorflow.serving.SavedModelBundleSourceAdapterConfig]"


def platform_config(path: pathlib.Path, legacy_config: str) -> pathlib.Path:
    path.write_text(f'platform_configs {{ key: "tensorflow" value {{ source_adapter_config {{ '
                    f"{ADAPTER} {{ legacy_config {{ {legacy_config} }} }} }} }} }}\n")
    return path


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_toy(root / "toy" / "1", 1)
    return root


def inter_op_threads(pid: int) -> int:
    tasks = pathlib.Path(f"/proc/{pid}/task")
    return sum((task / "comm").read_text().strip() == "tf_Compute" for task in tasks.iterdir())


def affine(server: ServerProcess, x, k) -> np.ndarray:
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    connection.request("POST", "/v1/models/toy:predict", body=json.dumps(
        {"signature_name": "affine", "inputs": {"x": x, "k": k}}).encode())
    response = connection.getresponse()
    assert response.status == 200
    return np.asarray(json.loads(response.read())["outputs"])


def test_the_thread_flags_reach_the_session_of_a_served_model(models_dir, tmp_path):
    x, k = [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]], [1, -2]
    with ServerProcess(models_dir, tmp_path / "server.log", "--tensorflow_intra_op_parallelism",
                       "1", "--tensorflow_inter_op_parallelism", str(THREADS)) as server:
        np.testing.assert_allclose(affine(server, x, k), reference_affine(x, k, 1))
        assert inter_op_threads(server.process.pid) == THREADS, server.log()
        assert server.stop()[0] == 0


def save_tf1_control_flow(path: pathlib.Path) -> None:
    """A TF1 SavedModel whose graph branches with Switch and Merge: y = 3x if sum(x) > 0,
    else 2x."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        when_not, when = tf.raw_ops.Switch(data=x, pred=tf.reduce_sum(x) > 0)
        y = tf.raw_ops.Merge(inputs=[when_not * 2, when * 3])[0]
        builder = tf.compat.v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING], signature_def_map={
            "serving_default": tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})})
        builder.save()


def test_a_session_config_that_cannot_run_the_graph_fails_the_request_as_tf_serving(tmp_path):
    # The single-threaded executor refuses TF1 control flow when a signature's callable is
    # prepared, at the first request: that request fails with TensorFlow's error, as in TF
    # Serving, and the version keeps answering with the same error (no crash, no raw error).
    save_tf1_control_flow(tmp_path / "1")
    x = {"x": np.array([1.0, 2.0], np.float32)}
    single_threaded = read_platform_config(platform_config(
        tmp_path / "platform.config",
        'session_config { experimental { executor_type: "SINGLE_THREADED_EXECUTOR" } }'))
    servable = Servable("tf1", 1, tmp_path / "1", session_config=single_threaded.session_config)
    for _ in range(2):
        with pytest.raises(ServingError, match="Single-threaded executor does not support "
                                               "switch op") as info:
            servable.predict("", x)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    np.testing.assert_allclose(Servable("tf1", 1, tmp_path / "1").predict("", x)["y"], [3, 6])


@pytest.mark.parametrize("flags, threads", [
    ([], (0, 0)),
    (["--tensorflow_session_parallelism", "3"], (3, 3)),
    (["--tensorflow_session_parallelism", "3", "--tensorflow_inter_op_parallelism", "2"], (0, 2)),
    (["--tensorflow_intra_op_parallelism", "1", "--tensorflow_inter_op_parallelism", "2"], (1, 2)),
])
def test_the_thread_flags_choose_as_tf_serving_does(flags, threads):
    # TF Serving: the intra/inter-op flags, if either is set, else the session flag for both.
    args = build_parser().parse_args(["serve", *flags])
    assert serve._session_threads(args) == threads


def test_the_session_config_of_a_platform_config_file_reaches_the_session(models_dir, tmp_path):
    # In a server process of its own: TensorFlow makes the inter-op pool of sessions without
    # their own once per process, so a test process that made a session before would count none.
    path = platform_config(tmp_path / "platform.config", (
        f"session_config {{ intra_op_parallelism_threads: 1 inter_op_parallelism_threads: "
        f"{THREADS} experimental {{ executor_type: \"SINGLE_THREADED_EXECUTOR\" }} }} "
        "batching_parameters { max_batch_size { value: 4 } }"))
    assert read_platform_config(path).batching == BatchingParameters(max_batch_size=4)
    x, k = [[1.0, 2.0, 3.0]], [4]
    with ServerProcess(models_dir, tmp_path / "server.log", "--platform_config_file",
                       str(path)) as server:
        np.testing.assert_allclose(affine(server, x, k), reference_affine(x, k, 1))
        assert inter_op_threads(server.process.pid) == THREADS, server.log()
        assert server.stop()[0] == 0


@pytest.mark.parametrize("flags, message", [
    (["--tensorflow_inter_op_parallelism", "-1"],
     "argument --tensorflow_inter_op_parallelism: expected a non-negative int; received '-1'"),
    (["--tensorflow_session_parallelism", "2", "--tensorflow_intra_op_parallelism", "1",
      "--tensorflow_inter_op_parallelism", "1"],
     "Give either --tensorflow_session_parallelism or --tensorflow_intra_op_parallelism and "
     "--tensorflow_inter_op_parallelism, not all three."),
    (["--enable_per_model_batching_parameters"],
     "--enable_per_model_batching_parameters is given without --enable_batching"),
])
def test_bad_flags_are_refused_before_tensorflow_loads(flags, message):
    result = subprocess.run([SEQZOO, "serve", "--models-dir", "nowhere", *flags],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 2
    assert message in result.stderr
    assert "import time:" in result.stderr
    assert not re.search(r"\| tensorflow$", result.stderr, re.MULTILINE)


@pytest.mark.parametrize("legacy_config, message", [
    ("enable_model_warmup: true", 'has no field named "enable_model_warmup"'),
    ("session_config { intra_op_parallelism_threads: -1 }",
     "session_config.intra_op_parallelism_threads must be >= 0"),
    ('session_target: "grpc://elsewhere:8500"', "session_target 'grpc://elsewhere:8500' is not"),
    ("batching_parameters { max_batch_size { value: 0 } }", "max_batch_size must be >= 1"),
])
def test_a_bad_platform_config_file_is_refused_with_what_is_wrong(tmp_path, legacy_config,
                                                                   message):
    path = platform_config(tmp_path / "platform.config", legacy_config)
    with pytest.raises(ValueError, match=f"^Platform config file {re.escape(repr(str(path)))}"
                                          f".*{re.escape(message)}"):
        read_platform_config(path)


def test_flags_a_platform_config_file_replaces_are_refused(tmp_path):
    args = build_parser().parse_args(["serve", "--platform_config_file", "platform.config",
                                      "--enable_batching", "--tensorflow_session_parallelism", "1"])
    with pytest.raises(ValueError, match="--tensorflow_session_parallelism, --enable_batching "
                                         "would be ignored"):
        serve._session_threads(args)
