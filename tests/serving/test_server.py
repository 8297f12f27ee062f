"""The model server over real loopback REST and gRPC: TF Serving's shapes of answers and errors."""

import base64
import http.client
import json
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from toy_saved_model import reference_affine, save_toy
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from seqzoo.serving.client import Client
from seqzoo.serving.server import ModelServer
from seqzoo.serving.serving_error import ServingError

X = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]
K = [1, -2]


def rest(server, method, path, body=None, connection=None):
    connection = connection or http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    connection.request(method, path, body=data)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_status_lists_every_version_available(server):
    status, body = rest(server, "GET", "/v1/models/toy")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in (2, 1)]}
    _, one = rest(server, "GET", "/v1/models/toy/versions/1")
    assert [s["version"] for s in one["model_version_status"]] == ["1"]
    grpc_status = Client(rest_port=server.rest_port, grpc_port=server.grpc_port).status(
        "toy", via="grpc")
    assert grpc_status == body


def test_metadata_has_tf_serving_shape_and_matches_grpc(server):
    status, body = rest(server, "GET", "/v1/models/toy/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "toy", "signature_name": "", "version": "2"}
    default = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    text = default["inputs"]["text"]
    assert text["dtype"] == "DT_STRING"
    assert text["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert sorted(default["outputs"]) == ["label", "length"]
    assert default["outputs"]["length"]["dtype"] == "DT_INT32"
    client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
    assert client.metadata("toy", via="rest") == client.metadata("toy", via="grpc")
    assert set(client.metadata("toy", 1, via="grpc")["signature_def"]) >= {"affine", "echo"}


def test_row_and_columnar_predict(server):
    status, body = rest(server, "POST", "/v1/models/toy:predict", {"instances": ["hi", "héllo"]})
    assert status == 200
    # "héllo" is 6 UTF-8 bytes; TF Serving returns string tensors as text.
    assert body == {"predictions": [{"label": "short", "length": 2},
                                    {"label": "long", "length": 6}]}
    _, body = rest(server, "POST", "/v1/models/toy:predict", {"inputs": {"text": ["hi", "héllo"]}})
    assert body == {"outputs": {"label": ["short", "long"], "length": [2, 6]}}
    _, body = rest(server, "POST", "/v1/models/toy:predict", {"inputs": ["abcd"]})
    assert body == {"outputs": {"label": ["long"], "length": [4]}}


def test_single_output_is_a_list_and_versions_are_honoured(server):
    rows = [{"x": x, "k": k} for x, k in zip(X, K)]
    for version, path in ((2, "/v1/models/toy:predict"), (1, "/v1/models/toy/versions/1:predict")):
        expected = reference_affine(X, K, version)
        status, body = rest(server, "POST", path, {"signature_name": "affine", "instances": rows})
        assert status == 200
        np.testing.assert_allclose(body["predictions"], expected, rtol=1e-6)
        _, body = rest(server, "POST", path,
                       {"signature_name": "affine", "inputs": {"x": X, "k": K}})
        np.testing.assert_allclose(body["outputs"], expected, rtol=1e-6)


def test_float32_outputs_are_written_as_their_shortest_decimals(server):
    body = {"signature_name": "affine", "inputs": {"x": [[0.1, 0.2, 0.7]], "k": [0]}}
    _, answer = rest(server, "POST", "/v1/models/toy/versions/2:predict", body)
    expected = np.float32([0.1, 0.2, 0.7]) * np.float32(3)
    # 0.3 rather than 0.30000001192092896, as TF Serving writes float32 values.
    assert answer["outputs"] == [[float(str(v)) for v in expected]]
    assert np.array_equal(np.float32(answer["outputs"]), [expected])


def test_b64_inputs_and_bytes_outputs(server):
    raw = b"\xff\x00ab"
    request = {"signature_name": "echo",
               "instances": [{"b64": base64.b64encode(raw).decode()}, "abc"]}
    status, body = rest(server, "POST", "/v1/models/toy:predict", request)
    assert status == 200
    assert body["predictions"][0]["data_bytes"] == {"b64": base64.b64encode(raw).decode()}
    assert body["predictions"][1] == {"data_bytes": {"b64": base64.b64encode(b"abc").decode()},
                                      "upper": "ABC"}


@pytest.mark.parametrize("via", ["rest", "grpc"])
def test_client_predict_matches_reference(server, via):
    client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
    out = client.predict("toy", {"x": X, "k": K}, signature_name="affine", version=1, via=via)
    np.testing.assert_allclose(out["y"], reference_affine(X, K, 1), rtol=1e-6)
    out = client.predict("toy", {"text": ["hi", "hello"]}, via=via)
    assert out["label"].tolist() == ["short", "long"]
    assert out["length"].tolist() == [2, 5]
    out = client.predict("toy", {"data": [b"\x01\x02", "ok"]}, signature_name="echo", via=via)
    assert out["data_bytes"].tolist() == [b"\x01\x02", b"ok"]
    assert out["upper"].tolist() == ["\x01\x02", "OK"]


GOOD = ("/v1/models/toy:predict", {"instances": ["hi"]},
        {"predictions": [{"label": "short", "length": 2}]})
BAD_REQUESTS = [
    # (path, body, HTTP status, words of the error message)
    ("/v1/models/toy:predict", b"{not json", 400, "JSON"),
    ("/v1/models/toy:predict", b"[1, 2]", 400, "object"),
    ("/v1/models/toy:predict", {"instances": [1, 2]}, 400, "strings"),
    ("/v1/models/toy:predict", {"signature_name": "affine", "inputs": {"x": [["a", "b", "c"]],
                                                                       "k": [1]}}, 400, "float"),
    ("/v1/models/toy:predict", {"signature_name": "affine", "inputs": {"x": [[1.0, 2.0]],
                                                                       "k": [1]}}, 400, "shape"),
    ("/v1/models/toy:predict", {"signature_name": "affine", "inputs": {"x": X, "k": [1.5, 2]}},
     400, "int32"),
    ("/v1/models/toy:predict", {"signature_name": "affine",
                                "instances": [{"x": [1.0, 2.0, 3.0], "k": 1},
                                              {"x": [1.0, 2.0], "k": 2}]}, 400, "ragged"),
    ("/v1/models/toy:predict", {"instances": [["a", "b"], ["c"]]}, 400, "ragged"),
    ("/v1/models/toy:predict", {"instances": ["a"], "inputs": ["a"]}, 400, "exactly one"),
    ("/v1/models/toy:predict", {"signature_name": "affine", "inputs": {"x": X}}, 400, "Missing"),
    ("/v1/models/toy:predict", {"inputs": {"text": ["a"], "extra": [1]}}, 400, "extra"),
    ("/v1/models/toy:predict", {"instances": [{"b64": "not base64!"}]}, 400, "base64"),
    ("/v1/models/toy:predict", {"signature_name": "nope", "instances": ["a"]}, 400, "nope"),
    ("/v1/models/missing:predict", {"instances": ["a"]}, 404, "Latest(missing)"),
    ("/v1/models/toy/versions/7:predict", {"instances": ["a"]}, 404, "Specific(toy, 7)"),
    ("/v1/models/toy:explode", {"instances": ["a"]}, 404, "Malformed request"),
]


def test_rest_errors_then_the_next_good_request_is_answered(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    for path, body, want_status, words in BAD_REQUESTS:
        status, answer = rest(server, "POST", path, body, connection)
        assert (status, list(answer)) == (want_status, ["error"]), (path, body, answer)
        assert words in answer["error"], (words, answer)
        # Same keep-alive connection: a rejected request must not break the next one.
        assert rest(server, "POST", GOOD[0], GOOD[1], connection) == (200, GOOD[2])
    assert rest(server, "GET", "/v1/models/missing")[0] == 404


def test_grpc_errors_then_the_next_good_request_is_answered(server):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))

    def request(name="toy", signature="", version=None, **inputs):
        message = predict_pb2.PredictRequest()
        message.model_spec.name = name
        message.model_spec.signature_name = signature
        if version is not None:
            message.model_spec.version.value = version
        for key, value in inputs.items():
            message.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        return message

    good = request(text=np.array([b"hello"], dtype=object))
    bad = [
        (request(text=np.array([1.0], np.float32)), grpc.StatusCode.INVALID_ARGUMENT),
        (request(signature="affine", x=np.zeros([1, 3], np.float32)),
         grpc.StatusCode.INVALID_ARGUMENT),
        (request(signature="affine", x=np.zeros([1, 4], np.float32), k=np.zeros([1], np.int32)),
         grpc.StatusCode.INVALID_ARGUMENT),
        (request(signature="affine", x=np.zeros([1, 3], np.float64), k=np.zeros([1], np.int32)),
         grpc.StatusCode.INVALID_ARGUMENT),
        (request(signature="nope", text=np.array([b"a"], dtype=object)),
         grpc.StatusCode.FAILED_PRECONDITION),
        (request(name="missing", text=np.array([b"a"], dtype=object)), grpc.StatusCode.NOT_FOUND),
        (request(version=9, text=np.array([b"a"], dtype=object)), grpc.StatusCode.NOT_FOUND),
    ]
    for message, code in bad:
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(message, timeout=30)
        assert info.value.code() == code, info.value.details()
        response = stub.Predict(good, timeout=30)
        assert tf.make_ndarray(response.outputs["length"]).tolist() == [5]
        assert response.model_spec.version.value == 2
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": "toy"}, metadata_field=["nonsense"]), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_client_raises_serving_errors_with_codes(server):
    client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
    for via in ("rest", "grpc"):
        with pytest.raises(ServingError) as info:
            client.predict("toy", {"x": X}, signature_name="affine", via=via)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(ServingError) as info:
            client.status("missing", via=via)
        assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_concurrent_requests_from_many_threads(server):
    client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
    rng = np.random.default_rng(0)
    jobs = [(rng.normal(size=(2, 3)).astype(np.float32), rng.integers(-5, 5, size=2, dtype=np.int32),
             ("rest", "grpc")[i % 2]) for i in range(32)]
    results = [None] * len(jobs)

    def work(worker):
        for index in range(worker, len(jobs), 8):
            x, k, via = jobs[index]
            results[index] = client.predict("toy", {"x": x, "k": k}, signature_name="affine",
                                            via=via)["y"]

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (x, k, _), result in zip(jobs, results):
        np.testing.assert_allclose(result, reference_affine(x, k, 2), rtol=1e-6)


def test_new_versions_are_picked_up_and_non_numeric_dirs_ignored(tmp_path):
    save_toy(tmp_path / "m" / "1", 1)
    with ModelServer(tmp_path, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        save_toy(tmp_path / "m" / ".tmp-5-abc", 5)  # an export still being written
        save_toy(tmp_path / "m" / "latest", 4)
        server.registry.poll()
        assert server.registry.versions("m") == [1]
        save_toy(tmp_path / "m" / "3", 3)
        server.registry.poll()
        assert [s["version"] for s in client.status("m")["model_version_status"]] == ["3", "1"]
        out = client.predict("m", {"x": X, "k": K}, signature_name="affine", via="grpc")
        np.testing.assert_allclose(out["y"], reference_affine(X, K, 3), rtol=1e-6)


def test_model_name_and_base_path_flags_and_clean_stop(toy_models_dir):
    server = ModelServer(model_name="other", model_base_path=toy_models_dir / "toy",
                         rest_port=0, grpc_port=0, poll_seconds=0.05).start()
    client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port, timeout=5)
    out = client.predict("other", {"text": ["abcdef"]}, version=2, via="rest")
    assert out["label"].tolist() == ["long"]
    server.stop()
    with pytest.raises(ServingError) as info:
        Client(rest_port=server.rest_port, grpc_port=server.grpc_port, timeout=5).status("other")
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ServingError):
        Client(rest_port=server.rest_port, grpc_port=server.grpc_port, timeout=2).status(
            "other", via="grpc")


def test_poller_follows_new_and_removed_versions(tmp_path):
    save_toy(tmp_path / "m" / "1", 1)
    with ModelServer(tmp_path, rest_port=0, grpc_port=0, poll_seconds=0.05) as server:
        assert server.registry.versions("m") == [1]
        save_toy(tmp_path / "m" / "2", 2)
        shutil.rmtree(tmp_path / "m" / "1")

        deadline = time.monotonic() + 60
        while server.registry.versions("m") != [2] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.registry.versions("m") == [2]
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        out = client.predict("m", {"x": X, "k": K}, signature_name="affine")
        np.testing.assert_allclose(out["y"], reference_affine(X, K, 2), rtol=1e-6)


def write_model_config(path, models):
    entries = "".join(f"  config {{ name: '{name}' base_path: '{base}' model_platform: 'tensorflow' }}\n"
                      for name, base in models.items())
    path.write_text(f"model_config_list {{\n{entries}}}\n")


def test_tf_serving_model_config_file_is_re_read_every_poll_wait(tmp_path, toy_models_dir):
    save_toy(tmp_path / "second" / "4", 4)
    config = tmp_path / "models.config"
    write_model_config(config, {"first": toy_models_dir / "toy"})
    with ModelServer(model_config_file=config, rest_port=0, grpc_port=0, poll_seconds=0,
                     config_poll_seconds=0.05) as server:
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        assert server.registry.names() == ["first"]
        write_model_config(config, {"first": toy_models_dir / "toy", "second": tmp_path / "second"})
        deadline = time.monotonic() + 60
        while server.registry.names() != ["first", "second"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.registry.names() == ["first", "second"]
        out = client.predict("second", {"x": X, "k": K}, signature_name="affine", via="grpc")
        np.testing.assert_allclose(out["y"], reference_affine(X, K, 4), rtol=1e-6)
        # A config that does not parse is logged and the models stay as they are.
        config.write_text("model_config_list { bogus: 1 }")
        time.sleep(0.3)
        assert server.registry.names() == ["first", "second"]
    config.write_text("model_config_list { bogus: 1 }")
    with pytest.raises(ValueError, match="not a text ModelServerConfig"):
        ModelServer(model_config_file=config)


def test_in_graph_assertion_text_reaches_the_client():
    import tensorflow as tf

    from seqzoo.serving.serving_error import ServingError

    class Checked(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def f(self, x):
            tf.debugging.assert_less(x, 6, message="symbols must be < n_features=6")
            return x

    try:
        Checked().f(tf.constant([7]))
    except tf.errors.InvalidArgumentError as err:
        wrapped = ServingError.from_tf_error(err)
    assert wrapped.http_status == 400
    assert wrapped.message.startswith("assertion failed: [symbols must be < n_features=6]")
    assert "Detected at node" not in wrapped.message and "[[" not in wrapped.message
