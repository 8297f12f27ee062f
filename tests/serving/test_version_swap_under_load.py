"""Versions change under continuous load over both protocols, on `seqzoo serve` in its own
process: a new version replaces the old (TF Serving's default policy, the latest only) and not one
request fails; a corrupt newer version leaves the old one serving, its error in the status."""

import http.client
import json
import shutil
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from server_process import ServerProcess
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from toy_saved_model import reference_affine, save_toy

X = [[1.0, 2.0, 3.0]]
K = [1]
CLIENTS_PER_PROTOCOL = 2


def rest_caller(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    body = json.dumps({"signature_name": "affine", "inputs": {"x": X, "k": K}}).encode()

    def call():
        connection.request("POST", "/v1/models/toy:predict", body=body)
        response = connection.getresponse()
        payload = response.read()
        assert response.status == 200, payload
        return np.float32(json.loads(payload)["outputs"])
    return call


def grpc_caller(server):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "toy", "affine"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.float32(X)))
    request.inputs["k"].CopyFrom(tf.make_tensor_proto(np.int32(K)))
    return lambda: tf.make_ndarray(stub.Predict(request, timeout=60).outputs["y"])


def versions_answering(answers):
    """The versions whose outputs `answers` are (each must be one of them)."""
    references = {version: reference_affine(X, K, version) for version in (1, 2)}
    seen = set()
    for answer in answers:
        matching = [v for v, reference in references.items() if np.allclose(answer, reference)]
        assert matching, answer
        seen.update(matching)
    return seen


def status(server, version):
    """The version's status entry ({} while the server has not seen it)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    connection.request("GET", f"/v1/models/toy/versions/{version}")
    return json.loads(connection.getresponse().read()).get("model_version_status", [{}])[0]


def wait_for(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_versions_swap_under_load_without_a_failed_request(tmp_path):
    base = tmp_path / "models" / "toy"
    save_toy(base / "1", 1)
    staged = tmp_path / "staged"
    save_toy(staged / "2", 2)
    with ServerProcess(tmp_path / "models", tmp_path / "serve.log",
                       "--file_system_poll_wait_seconds", "0.2") as server:
        answers, failures, stop = [], [], threading.Event()

        def client(make_call):
            call = make_call(server)
            while not stop.is_set():
                try:
                    answers.append(call())
                except Exception as err:  # every failure is collected and fails the test
                    failures.append(repr(err))

        callers = [rest_caller, grpc_caller] * CLIENTS_PER_PROTOCOL
        threads = [threading.Thread(target=client, args=(caller,)) for caller in callers]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(answers) > 50)
            # A version appears whole: moved into place once written.
            (staged / "2").rename(base / "2")
            wait_for(lambda: status(server, 1).get("state") == "END")
            swapped = len(answers)
            wait_for(lambda: len(answers) > swapped + 50)

            corrupt = staged / "3"
            shutil.copytree(base / "2", corrupt)
            (corrupt / "saved_model.pb").write_bytes(b"corrupt")
            corrupt.rename(base / "3")
            wait_for(lambda: status(server, 3).get("state") == "END")
            failed = len(answers)
            wait_for(lambda: len(answers) > failed + 50)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

        assert failures == []
        assert versions_answering(answers[:swapped]) <= {1, 2}
        assert versions_answering(answers[:20]) == {1}
        assert versions_answering(answers[failed:]) == {2}
        error = status(server, 3)["status"]
        assert error["error_code"] != "OK" and error["error_message"]
        assert status(server, 2)["state"] == "AVAILABLE"
        assert server.stop()[0] == 0, server.log()
