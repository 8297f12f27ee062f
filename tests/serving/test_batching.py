"""Request batching on `seqzoo serve` in its own process, with a model that takes as long as asked
(one batch thread, batches of one, one batch may wait): the overflow of a full queue gets HTTP 503
and gRPC UNAVAILABLE in TF Serving's words while the server keeps serving, and SIGTERM still
answers every request it accepted, the queued one included. (Every task's signatures, batched,
are tested in test_tf_serving_loader.py.)"""

import http.client
import json
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from server_process import ServerProcess
from slow_saved_model import save_slow
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

SLOW_MICROS = 1_500_000  # long enough to send the overflow while one runs and one waits
FULL = "The batch scheduling queue to which this task was submitted is full"


def rest_predict(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    connection.request("POST", "/v1/models/slow:predict",
                       body=json.dumps({"instances": [SLOW_MICROS]}).encode())
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def grpc_predict(stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "slow"
    request.inputs["micros"].CopyFrom(tf.make_tensor_proto(np.int64([SLOW_MICROS])))
    return tf.make_ndarray(stub.Predict(request, timeout=60).outputs["calls"]).tolist()


def batch_count(server, name):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text)
               if family.name == f":tensorflow:serving:batching_session:{name}"
               for sample in family.samples if sample.name.endswith("_count"))


def wait_for(condition):
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_full_queue_refuses_the_overflow_and_sigterm_answers_the_queued(tmp_path):
    save_slow(tmp_path / "models" / "slow" / "1")
    parameters = tmp_path / "batching.config"
    parameters.write_text("max_batch_size { value: 1 } max_enqueued_batches { value: 1 } "
                          "num_batch_threads { value: 1 }")
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics" }')
    with ServerProcess(tmp_path / "models", tmp_path / "serve.log", "--enable_batching",
                       "--batching_parameters_file", str(parameters),
                       "--monitoring_config_file", str(monitoring),
                       "--drain_timeout_seconds", "60") as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        answers = {}
        computing = threading.Thread(target=lambda: answers.update(rest=rest_predict(server)))
        computing.start()
        wait_for(lambda: batch_count(server, "processed_batch_size") == 1)  # it runs
        queued = threading.Thread(target=lambda: answers.update(grpc=grpc_predict(stub)))
        queued.start()
        wait_for(lambda: batch_count(server, "input_batch_size") == 2)  # it waits its turn

        status, body = rest_predict(server)
        assert status == 503 and body["error"].startswith(FULL), body
        with pytest.raises(grpc.RpcError) as caught:
            grpc_predict(stub)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert caught.value.details().startswith(FULL)

        server.terminate()
        computing.join(60)
        queued.join(60)
        # Both answered, computed one after the other; the refused ones never were.
        assert answers == {"rest": (200, {"predictions": [1]}), "grpc": [2]}
        code, out = server.wait()
        assert code == 0, server.log()
        assert out.splitlines()[-1] == "Stopped."
        channel.close()


def test_a_grpc_request_whose_deadline_passes_in_the_batch_queue_is_not_computed(tmp_path):
    save_slow(tmp_path / "models" / "slow" / "1")
    parameters = tmp_path / "batching.config"
    parameters.write_text("max_batch_size { value: 1 } num_batch_threads { value: 1 }")
    with ServerProcess(tmp_path / "models", tmp_path / "serve.log", "--enable_batching",
                       "--batching_parameters_file", str(parameters)) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def calls(micros, timeout=60):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "slow"
            request.inputs["micros"].CopyFrom(tf.make_tensor_proto(np.int64([micros])))
            return tf.make_ndarray(stub.Predict(request, timeout=timeout).outputs["calls"])[0]

        first = calls(0)
        # The one batch thread computes a slow call; the late one waits in the queue past its
        # deadline, unlike the unbatched server's (test_hostile_clients.py), in a gRPC thread.
        slow = threading.Thread(target=calls, args=(SLOW_MICROS,))
        slow.start()
        time.sleep(0.3)
        with pytest.raises(grpc.RpcError) as caught:
            calls(0, timeout=0.5)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        slow.join(60)
        assert calls(0) == first + 2  # the slow call and this one; not the late one
        assert server.stop()[0] == 0, server.log()
        channel.close()
