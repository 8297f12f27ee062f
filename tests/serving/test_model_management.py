"""TF Serving's model management over real loopback REST and gRPC: version policies, labels,
config reloads, versions that fail to load (warmup included) and a busy gRPC port."""

import concurrent.futures
import http.client
import json
import pathlib
import socket
import subprocess
import sys

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)
from plain_keras_export import X as X_KERAS
from plain_keras_export import KerasInModule, save_plainly
from toy_saved_model import reference_affine, save_toy

from seqzoo.serving import export
from seqzoo.serving.server import ModelServer
from seqzoo.serving.servable import WARMUP_FILE

X = [[1.0, 2.0, 3.0]]
K = [1]


def rest(server, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    connection.request(method, path, body=None if body is None else json.dumps(body).encode())
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def states(server, name):
    status, body = rest(server, "GET", f"/v1/models/{name}")
    assert status == 200, body
    return [(int(s["version"]), s["state"]) for s in body["model_version_status"]]


def affine_version(server, path):
    """Which version answered, read from the affine output (scale = version + 1)."""
    status, body = rest(server, "POST", path, {"signature_name": "affine",
                                                "inputs": {"x": X, "k": K}})
    assert status == 200, body
    for version in range(1, 10):
        if np.allclose(body["outputs"], reference_affine(X, K, version)):
            return version
    raise AssertionError(body)


def entry(base, policy="", labels=None, name="toy"):
    text = f"name: '{name}' base_path: '{base}' model_platform: 'tensorflow' {policy}"
    text += "".join(f" version_labels {{ key: '{k}' value: {v} }}" for k, v in (labels or {}).items())
    return f"config {{ {text} }}"


def config_text(policy="", labels=None, base=None):
    return f"model_config_list {{ {entry(base, policy, labels)} }}"


def reload(server, text, timeout=60):
    stub = model_service_pb2_grpc.ModelServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    return stub.HandleReloadConfigRequest(request, timeout=timeout)


@pytest.fixture(scope="module")
def three_versions(tmp_path_factory):
    base = tmp_path_factory.mktemp("managed") / "toy"
    for version in (1, 2, 3):
        save_toy(base / str(version), version)
    return base


def test_version_policies_follow_reloaded_configs(three_versions, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(config_text(base=three_versions))
    with ModelServer(model_config_file=config, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        # Default policy: the latest version only.
        assert states(server, "toy") == [(3, "AVAILABLE")]
        assert affine_version(server, "/v1/models/toy:predict") == 3
        steps = [
            ("model_version_policy { latest { num_versions: 2 } }",
             [(3, "AVAILABLE"), (2, "AVAILABLE")]),
            ("model_version_policy { all {} }",
             [(3, "AVAILABLE"), (2, "AVAILABLE"), (1, "AVAILABLE")]),
            ("model_version_policy { specific { versions: 1 versions: 3 } }",
             [(3, "AVAILABLE"), (2, "END"), (1, "AVAILABLE")]),
            # The newly aspired version loads before the others unload.
            ("model_version_policy { specific { versions: 2 } }",
             [(3, "END"), (2, "AVAILABLE"), (1, "END")]),
        ]
        for policy, expected in steps:
            response = reload(server, config_text(policy, base=three_versions))
            assert response.status.error_code == 0
            assert states(server, "toy") == expected, policy
            for version, state in expected:
                status, body = rest(server, "POST", f"/v1/models/toy/versions/{version}:predict",
                                    {"signature_name": "affine", "inputs": {"x": X, "k": K}})
                assert status == (200 if state == "AVAILABLE" else 404), body
        assert affine_version(server, "/v1/models/toy:predict") == 2


def test_labels_over_rest_and_grpc_and_label_rules(three_versions, tmp_path):
    config = tmp_path / "models.config"
    policy = "model_version_policy { specific { versions: 1 versions: 2 } }"
    config.write_text(config_text(policy, {"stable": 1, "canary": 2}, three_versions))
    with ModelServer(model_config_file=config, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        assert affine_version(server, "/v1/models/toy/labels/stable:predict") == 1
        assert affine_version(server, "/v1/models/toy/labels/canary:predict") == 2
        status, body = rest(server, "GET", "/v1/models/toy/labels/canary")
        assert [s["version"] for s in body["model_version_status"]] == ["2"]
        status, body = rest(server, "GET", "/v1/models/toy/labels/stable/metadata")
        assert body["model_spec"]["version"] == "1"

        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "toy"
        request.model_spec.version_label = "canary"
        request.model_spec.signature_name = "affine"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.float32(X)))
        request.inputs["k"].CopyFrom(tf.make_tensor_proto(np.int32(K)))
        response = stub.Predict(request, timeout=30)
        assert response.model_spec.version.value == 2
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]),
                                   reference_affine(X, K, 2))

        # An unknown label is INVALID_ARGUMENT (HTTP 400), and the server keeps serving.
        status, body = rest(server, "POST", "/v1/models/toy/labels/nope:predict",
                            {"signature_name": "affine", "inputs": {"x": X, "k": K}})
        assert (status, body) == (400, {"error": "Unrecognized servable version label: nope"})
        request.model_spec.version_label = "nope"
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert affine_version(server, "/v1/models/toy/labels/stable:predict") == 1

        # A label may only point at an AVAILABLE version: this reload loads 3 and labels it in
        # one change, so it is refused and the old config stays.
        with pytest.raises(grpc.RpcError) as info:
            reload(server, config_text("model_version_policy { all {} }",
                                       {"stable": 1, "canary": 3}, three_versions))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "version 3 of model toy, which is not currently available" in info.value.details()
        assert affine_version(server, "/v1/models/toy/labels/canary:predict") == 2
        assert states(server, "toy") == [(2, "AVAILABLE"), (1, "AVAILABLE")]
        # Loaded first, then labelled: accepted.
        reload(server, config_text("model_version_policy { all {} }", {"stable": 1, "canary": 2},
                                   three_versions))
        reload(server, config_text("model_version_policy { all {} }", {"stable": 2, "canary": 3},
                                   three_versions))
        assert affine_version(server, "/v1/models/toy/labels/canary:predict") == 3
        assert affine_version(server, "/v1/models/toy/labels/stable:predict") == 2

        # A config that is not valid changes nothing either.
        with pytest.raises(grpc.RpcError) as info:
            reload(server, f"model_config_list {{ {entry(three_versions)} {entry(three_versions)} }}")
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "multiple times" in info.value.details()
        assert affine_version(server, "/v1/models/toy/labels/canary:predict") == 3


def test_labels_of_unavailable_versions_with_the_flag(three_versions, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(config_text("model_version_policy { specific { versions: 1 } }",
                                  {"stable": 1, "next": 2}, three_versions))
    with pytest.raises(ValueError, match="version 2 of model toy, which is not currently"):
        ModelServer(model_config_file=config, rest_port=0, grpc_port=0, poll_seconds=0).start()
    with ModelServer(model_config_file=config, rest_port=0, grpc_port=0, poll_seconds=0,
                     allow_version_labels_for_unavailable_models=True) as server:
        assert affine_version(server, "/v1/models/toy/labels/stable:predict") == 1
        status, body = rest(server, "POST", "/v1/models/toy/labels/next:predict",
                            {"signature_name": "affine", "inputs": {"x": X, "k": K}})
        assert (status, body["error"]) == (404, "Servable not found for request: Specific(toy, 2)")


def test_unknown_models_and_versions_in_status(server):
    status, body = rest(server, "GET", "/v1/models/missing")
    assert (status, body) == (404, {"error": "Could not find any versions of model missing"})
    status, body = rest(server, "GET", "/v1/models/toy/versions/9")
    assert (status, body) == (404, {"error": "Could not find version 9 of model toy"})
    stub = model_service_pb2_grpc.ModelServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": "toy", "version_label": "nope"}), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def write_warmup(version_dir, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.model_spec.signature_name = "affine"
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    (version_dir / WARMUP_FILE).parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(version_dir / WARMUP_FILE)) as writer:
        writer.write(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)).SerializeToString())


def version_status(server, name, version):
    _, body = rest(server, "GET", f"/v1/models/{name}/versions/{version}")
    (entry,) = body["model_version_status"]
    return entry["state"], entry["status"]["error_code"], entry["status"]["error_message"]


def test_failed_versions_show_their_error_keep_the_old_one_and_retry_on_change(tmp_path):
    save_toy(tmp_path / "m" / "1", 1)
    with ModelServer(tmp_path, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        # Version 2 is a good SavedModel whose warmup request fails (k has the wrong dtype):
        # it is refused, and version 1 keeps answering.
        save_toy(tmp_path / "m" / "2", 2)
        write_warmup(tmp_path / "m" / "2", x=np.float32(X), k=np.float32(K))
        server.registry.poll()
        state, code, message = version_status(server, "m", 2)
        assert (state, code) == ("END", "INVALID_ARGUMENT")
        assert message.startswith("Warmup record 1 failed: Input 'k' expects int32"), message
        assert states(server, "m") == [(2, "END"), (1, "AVAILABLE")]
        assert affine_version(server, "/v1/models/m:predict") == 1
        server.registry.poll()  # unchanged directory: not retried
        assert version_status(server, "m", 2)[0] == "END"

        # Fixing the warmup file makes the next poll retry it; version 1 then unloads.
        write_warmup(tmp_path / "m" / "2", x=np.float32(X), k=np.int32(K))
        server.registry.poll()
        assert states(server, "m") == [(2, "AVAILABLE"), (1, "END")]
        assert version_status(server, "m", 2) == ("AVAILABLE", "OK", "")
        assert affine_version(server, "/v1/models/m:predict") == 2

        # A version that is not a SavedModel at all.
        (tmp_path / "m" / "3").mkdir()
        (tmp_path / "m" / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
        server.registry.poll()
        state, code, message = version_status(server, "m", 3)
        assert state == "END" and code != "OK" and "saved_model.pb" in message, message
        assert affine_version(server, "/v1/models/m:predict") == 2


def test_a_keras_model_saved_plainly_is_refused_as_tf_serving_would_and_export_fixes_it(tmp_path):
    module = KerasInModule()
    x = X_KERAS
    save_plainly(module, tmp_path / "plain" / "1")
    # tf.saved_model.load restores through the object graph, so it hides the problem.
    loaded = tf.saved_model.load(str(tmp_path / "plain" / "1")).signatures["serving_default"](
        x=tf.constant(x))
    np.testing.assert_allclose(loaded["y"], module.model(x), rtol=1e-6)

    export.save_for_serving(module, tmp_path / "fixed" / "1", "fixed", {"x": x.tolist()})
    with ModelServer(tmp_path, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        state, code, message = version_status(server, "plain", 1)
        assert (state, code) == ("END", "FAILED_PRECONDITION")
        assert "Could not find variable" in message, message
        status, body = rest(server, "POST", "/v1/models/fixed:predict", {"instances": x.tolist()})
        assert status == 200, body
        np.testing.assert_allclose(body["predictions"], module.model(x), rtol=1e-6)


def test_a_busy_grpc_port_fails_the_start_with_a_clear_message(tmp_path):
    # The port is held the way an earlier `seqzoo serve` (or any grpcio server) holds it: with
    # SO_REUSEPORT, which used to let a second server share it silently.
    holder = grpc.server(concurrent.futures.ThreadPoolExecutor(1))
    port = holder.add_insecure_port("127.0.0.1:0")
    holder.start()
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            rest_port = probe.getsockname()[1]
        result = subprocess.run(
            [str(pathlib.Path(sys.executable).with_name("seqzoo")), "serve", "--models-dir", str(tmp_path),
             "--port", str(port), "--rest_api_port", str(rest_port)],
            capture_output=True, text=True, timeout=60)
    finally:
        holder.stop(0)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"Could not bind the gRPC port 127.0.0.1:{port}: it is in use" in result.stderr
    assert "Serving" not in result.stdout
