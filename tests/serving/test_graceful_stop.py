"""SIGTERM, as Kubernetes stops a pod: `seqzoo serve` refuses new requests at once, answers every
request it accepted over both protocols, closes idle connections, unloads and exits 0."""

import ctypes
import http.client
import json
import os
import pathlib
import platform
import re
import signal
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

SLOW_MICROS = 6_000_000


def slow_request():
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "slow"
    request.inputs["micros"].CopyFrom(tf.make_tensor_proto(np.int64([SLOW_MICROS])))
    return request


def rest_predict(connection, micros):
    connection.request("POST", "/v1/models/slow:predict",
                       body=json.dumps({"instances": [micros]}).encode())
    response = connection.getresponse()
    return response.status, response.getheader("Connection"), json.loads(response.read())


def refused_within(seconds, port):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=10).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_drains_accepted_requests_and_exits_0(tmp_path):
    save_slow(tmp_path / "models" / "slow" / "1")
    with ServerProcess(tmp_path / "models", tmp_path / "serve.log",
                       "--drain_timeout_seconds", "120") as server:
        idle = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
        assert rest_predict(idle, 0)[0] == 200  # then it stays open, idle
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        answers = {}

        def over_grpc():
            answers["grpc"] = stub.Predict(slow_request(), timeout=60)

        def over_rest():
            connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
            answers["rest"] = rest_predict(connection, SLOW_MICROS)

        clients = [threading.Thread(target=over_grpc), threading.Thread(target=over_rest)]
        for client in clients:
            client.start()
        time.sleep(2.0)  # both accepted and computing (each takes 6 s)
        sent = time.monotonic()
        server.terminate()
        assert server.process.stdout.readline().startswith("Stopping: no new requests")

        # Refused from then on (within moments of the signal, however loaded the machine):
        # new connections, new calls, and the next request of an idle one.
        assert refused_within(10, server.rest_port)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(slow_request(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            rest_predict(idle, 0)

        # The accepted ones are answered in full.
        for client in clients:
            client.join(timeout=60)
        assert tf.make_ndarray(answers["grpc"].outputs["calls"]).tolist() in ([2], [3])
        status, connection_header, body = answers["rest"]
        assert (status, connection_header) == (200, "close")
        assert body["predictions"] in ([2], [3])
        code, out = server.wait()
        assert code == 0, server.log()
        assert time.monotonic() - sent < 100  # done when the requests were, not at the timeout
        assert out.splitlines()[-1] == "Stopped.", out
        assert "Unloaded slow version 1" in server.log()
        channel.close()


def send_to_thread(pid, tid, signum):
    """tgkill(2): the signal goes to that one thread, as the kernel may choose for a SIGTERM sent
    to the process (any thread that does not block it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    tgkill = 234  # x86_64; the project's machines
    assert libc.syscall(tgkill, pid, tid, signum) == 0, os.strerror(ctypes.get_errno())


@pytest.mark.skipif(platform.machine() != "x86_64", reason="tgkill's syscall number is x86_64's")
def test_sigterm_that_another_thread_receives_still_stops_the_server(tmp_path):
    save_slow(tmp_path / "models" / "slow" / "1")
    with ServerProcess(tmp_path / "models", tmp_path / "serve.log") as server:
        pid = server.process.pid
        tasks = pathlib.Path(f"/proc/{pid}/task")
        # Threads that do not block SIGTERM, other than the main one (the one Python handles
        # signals in): the server's own (REST loop, gRPC, batch threads) and TensorFlow's.
        receivers = []
        for task in sorted(tasks.iterdir()):
            blocked = re.search(r"SigBlk:\s*([0-9a-f]+)", (task / "status").read_text())[1]
            if int(task.name) != pid and not int(blocked, 16) >> (signal.SIGTERM - 1) & 1:
                receivers.append(int(task.name))
        assert receivers
        send_to_thread(pid, receivers[-1], signal.SIGTERM)
        code, out = server.wait(timeout=60)
        assert code == 0, server.log()
        assert out.splitlines()[-1] == "Stopped.", out
