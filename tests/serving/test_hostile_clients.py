"""Limits against hostile or careless clients, on `seqzoo serve` in its own process: large
bodies, deep nesting, too many values, clients that stall mid-request, large gRPC messages and
gRPC deadlines that pass while a request waits."""

import http.client
import json
import re
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from server_process import ServerProcess
from slow_saved_model import save_slow
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from toy_saved_model import save_toy

MAX_BODY = 1_000_000
MAX_ELEMENTS = 1000
TIMEOUT_SECONDS = 1.5
MAX_GRPC_MESSAGE = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    save_toy(root / "models" / "toy" / "1", 1)
    save_slow(root / "models" / "slow" / "1")
    flags = ["--rest_api_max_body_bytes", str(MAX_BODY),
             "--rest_api_max_elements", str(MAX_ELEMENTS),
             "--rest_api_timeout_in_ms", str(int(TIMEOUT_SECONDS * 1000)),
             "--grpc_max_threads", "1",
             "--grpc_channel_arguments", f"grpc.max_receive_message_length={MAX_GRPC_MESSAGE}"]
    with ServerProcess(root / "models", root / "serve.log", *flags) as process:
        yield process
        assert process.stop()[0] == 0, process.log()


def post(server, body: bytes, path="/v1/models/toy:predict"):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    try:
        connection.request("POST", path, body=body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def good_request_is_answered(server):
    assert post(server, b'{"instances": ["hi"]}') == (
        200, {"predictions": [{"label": "short", "length": 2}]})


def test_a_body_over_the_limit_is_refused_413_without_being_parsed(server):
    # Unparsed: as JSON this body would be refused 400 for its nesting.
    status, body = post(server, b"[" * (MAX_BODY + 1))
    assert status == 413
    assert f"{MAX_BODY + 1} bytes is larger than the limit of {MAX_BODY} bytes" in body["error"]
    # A client that asks first (Expect: 100-continue, as curl does) is refused before sending.
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as raw:
        raw.sendall(b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
                    b"%d\r\nExpect: 100-continue\r\n\r\n" % (10 * MAX_BODY))
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    good_request_is_answered(server)


def exchange(server, *parts: bytes) -> list[bytes]:
    """Sends each part of a raw request in turn, reading the response (interim or final) that
    the server gives after each."""
    answers = []
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as raw:
        for part in parts:
            raw.sendall(part)
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += raw.recv(65536)
            head, _, body = answer.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: (\d+)", head)
            while length and len(body) < int(length[1]):
                body += raw.recv(65536)
            answers.append(head + b"\r\n\r\n" + body)
    return answers


def test_bodies_that_wait_for_100_continue_or_come_in_chunks_are_read_within_the_limit(server):
    body = b'{"instances": ["hi"]}'
    head = b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\n"
    continued, answer = exchange(
        server, head + b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body), body)
    assert continued == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'"length": 2}]}')
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n"
    (answer,) = exchange(server, chunked + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'"length": 2}]}')
    chunk = b"[" * (MAX_BODY // 2 + 1)
    (answer,) = exchange(server, chunked + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert f"{2 * len(chunk)} bytes is larger than the limit of {MAX_BODY}".encode() in answer
    good_request_is_answered(server)


@pytest.mark.parametrize("depth", [50_000, 100])
def test_deep_nesting_is_refused_400(server, depth):
    body = b'{"inputs": {"text": ' + b"[" * depth + b'"a"' + b"]" * depth + b"}}"
    status, answer = post(server, body)
    assert status == 400, answer
    assert "a tensor has at most 64 dimensions" in answer["error"]
    good_request_is_answered(server)


def test_too_many_values_are_refused_400(server):
    status, body = post(server, json.dumps({"instances": ["a"] * (MAX_ELEMENTS + 1)}).encode())
    assert status == 400
    assert f"{MAX_ELEMENTS + 1} tensor elements, more than the limit of {MAX_ELEMENTS}" in (
        body["error"])
    assert post(server, json.dumps({"instances": ["a"] * MAX_ELEMENTS}).encode())[0] == 200


def test_clients_that_stall_are_timed_out_and_hold_up_no_one(server):
    half_body = socket.create_connection(("127.0.0.1", server.rest_port), timeout=30)
    half_body.sendall(b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100\r\n\r\n{\"inst")
    half_line = socket.create_connection(("127.0.0.1", server.rest_port), timeout=30)
    half_line.sendall(b"GET /v1/mo")
    started = time.monotonic()
    for _ in range(5):  # answered at once while both stall
        before = time.monotonic()
        good_request_is_answered(server)
        assert time.monotonic() - before < TIMEOUT_SECONDS / 2
    with half_body, half_line:
        answer = b"".join(iter(lambda: half_body.recv(4096), b""))  # until the server closes
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"A request must arrive within 1.5 s." in answer
        assert half_line.recv(4096) == b""  # closed
    assert time.monotonic() - started < TIMEOUT_SECONDS * 4


def test_a_long_model_call_holds_up_no_other_rest_client(server):
    answers = {}

    def slow():
        answers["slow"] = post(server, json.dumps({"instances": [2_000_000]}).encode(),
                               "/v1/models/slow:predict")

    caller = threading.Thread(target=slow)
    caller.start()
    time.sleep(0.5)  # the slow call is computing in a worker thread
    before = time.monotonic()
    good_request_is_answered(server)
    assert time.monotonic() - before < 1.0
    caller.join()
    assert answers["slow"][0] == 200, answers


def predict_request(name, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_grpc_messages_over_the_limit_are_refused(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(predict_request("toy", text=["x" * MAX_GRPC_MESSAGE]), timeout=30)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        answer = stub.Predict(predict_request("toy", text=["hi"]), timeout=30)
        assert tf.make_ndarray(answer.outputs["length"]).tolist() == [2]


def test_a_grpc_request_whose_deadline_passed_while_waiting_is_not_computed(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def calls(micros, timeout=60):
            answer = stub.Predict(predict_request("slow", micros=np.int64([micros])),
                                  timeout=timeout)
            return int(tf.make_ndarray(answer.outputs["calls"])[0])

        first = calls(0)
        # One gRPC thread (--grpc_max_threads 1): the late request waits behind a slow one.
        slow = threading.Thread(target=calls, args=(2_000_000,))
        slow.start()
        time.sleep(0.5)
        with pytest.raises(grpc.RpcError) as caught:
            calls(0, timeout=0.5)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        slow.join()
        assert calls(0) == first + 2  # the slow call and this one; not the late one
