"""Prometheus metrics under TF Serving's names (`--monitoring_config_file`), scraped and read
with prometheus-client's own parser, and the standard gRPC health service, on `seqzoo serve` in
its own process."""

import http.client
import json
import subprocess

import grpc
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from server_process import SEQZOO, ServerProcess
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from toy_saved_model import save_toy

METRICS_PATH = "/monitoring/prometheus/metrics"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitored")
    save_toy(root / "models" / "toy" / "1", 1)
    broken = root / "models" / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    config = root / "monitoring.config"
    config.write_text('prometheus_config {\n  enable: true\n  path: "%s"\n}\n' % METRICS_PATH)
    with ServerProcess(root / "models", root / "serve.log",
                       "--monitoring_config_file", str(config)) as process:
        process.models = root / "models"
        yield process
        assert process.stop()[0] == 0, process.log()


def rest(server, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    connection.request(method, path, body=None if body is None else json.dumps(body).encode())
    response = connection.getresponse()
    return response.status, response.getheader("Content-Type"), response.read()


def predict(stub, name):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(["hi"]))
    return stub.Predict(request, timeout=30)


def test_metrics_count_requests_and_loads_under_tf_serving_names(server):
    for _ in range(3):
        assert rest(server, "POST", "/v1/models/toy:predict", {"instances": ["hi"]})[0] == 200
    assert rest(server, "POST", "/v1/models/toy:predict", {"inputs": {"nope": [1]}})[0] == 400
    assert rest(server, "POST", "/v1/models/nosuch:predict", {"instances": ["hi"]})[0] == 404
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        predict(stub, "toy")
        with pytest.raises(grpc.RpcError):
            predict(stub, "nosuch")

    status, content_type, text = rest(server, "GET", METRICS_PATH)
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(text.decode())}

    count = families[":tensorflow:serving:request_count"]
    assert count.type == "counter"
    assert {(s.labels["model_name"], s.labels["status"]): s.value for s in count.samples} == {
        ("toy", "OK"): 4, ("toy", "INVALID_ARGUMENT"): 1, ("nosuch", "NOT_FOUND"): 2}

    latency = families[":tensorflow:serving:request_latency"]
    assert latency.type == "histogram"
    counts = {(s.labels["model_name"], s.labels["API"], s.labels["entrypoint"]): s.value
              for s in latency.samples if s.name.endswith("_count")}
    assert counts == {("toy", "Predict", "REST"): 4, ("toy", "Predict", "GRPC"): 1,
                      ("nosuch", "Predict", "REST"): 1, ("nosuch", "Predict", "GRPC"): 1}
    rest_buckets = [(s.labels["le"], s.value) for s in latency.samples
                    if s.name.endswith("_bucket")
                    and (s.labels["model_name"], s.labels["entrypoint"]) == ("toy", "REST")]
    assert rest_buckets[0][0] == "10.0" and rest_buckets[-1] == ("+Inf", 4)
    assert [value for _, value in rest_buckets] == sorted(value for _, value in rest_buckets)

    loads = families[":tensorflow:cc:saved_model:load_attempt_count"]
    attempts = {(s.labels["model_path"], s.labels["status"]): s.value for s in loads.samples}
    assert attempts == {(str(server.models / "toy" / "1"), "success"): 1,
                        (str(server.models / "broken" / "1"), "fail"): 1}
    (load_latency,) = families[":tensorflow:cc:saved_model:load_latency"].samples
    assert load_latency.labels == {"model_path": str(server.models / "toy" / "1")}
    assert load_latency.value > 0


def test_a_corrupt_version_is_listed_with_its_error(server):
    status, _, body = rest(server, "GET", "/v1/models/broken")
    assert status == 200
    (version,) = json.loads(body)["model_version_status"]
    assert (version["version"], version["state"]) == ("1", "END")
    assert version["status"]["error_code"] != "OK" and version["status"]["error_message"]
    # Not ready (the readiness probe the README gives) while the status endpoint answers.
    assert rest(server, "GET", "/v1/models/broken/metadata")[0] == 404
    assert rest(server, "GET", "/v1/models/toy/metadata")[0] == 200


def test_grpc_health_service_answers_for_the_server_and_each_service(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "tensorflow.serving.PredictionService",
                        "tensorflow.serving.ModelService"):
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(health_pb2.HealthCheckRequest(service="nosuch"), timeout=30)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_bad_monitoring_config_is_refused_before_serving(tmp_path):
    config = tmp_path / "monitoring.config"
    config.write_text("prometheus_config { enable: yes please }")
    result = subprocess.run([SEQZOO, "serve", "--models-dir", str(tmp_path),
                             "--monitoring_config_file", str(config)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "is not a text MonitoringConfig" in result.stderr
