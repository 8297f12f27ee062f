"""TF Serving's `--enable_per_model_batching_parameters` on `seqzoo serve` in its own process:
a version whose directory holds `batching_params.pbtxt` is batched by that file's parameters
(seen in the batch-size metric and in its own max_batch_size, smaller than the global one), a
version without the file is not batched, and a version whose file does not parse fails to
load with the parser's error in the model status while the others keep serving."""

import http.client
import json
import shutil

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from server_process import ServerProcess
from toy_saved_model import reference_affine, save_toy


def request(server, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    connection.request(method, path, body=None if body is None else json.dumps(body).encode())
    response = connection.getresponse()
    return response.status, response.read().decode()


def affine(server, model, rows):
    x, k = np.ones((rows, 3), np.float32).tolist(), list(range(rows))
    status, text = request(server, "POST", f"/v1/models/{model}:predict",
                           {"signature_name": "affine", "inputs": {"x": x, "k": k}})
    if status == 200:
        np.testing.assert_allclose(json.loads(text)["outputs"], reference_affine(x, k, 1))
    return status, text


def batched_requests(server) -> float:
    """How many requests went through the batch scheduler (its input batch size samples)."""
    text = request(server, "GET", "/metrics")[1]
    return sum(sample.value for family in text_string_to_metric_families(text)
               if family.name == ":tensorflow:serving:batching_session:input_batch_size"
               for sample in family.samples if sample.name.endswith("_count"))


def test_only_versions_with_their_own_batching_parameters_are_batched_by_them(tmp_path):
    models = tmp_path / "models"
    save_toy(models / "filed" / "1", 1)
    (models / "filed" / "1" / "batching_params.pbtxt").write_text(
        "max_batch_size { value: 2 } num_batch_threads { value: 7 }")
    for name in ("plain", "broken"):
        shutil.copytree(models / "filed" / "1", models / name / "1")
    (models / "plain" / "1" / "batching_params.pbtxt").unlink()
    (models / "broken" / "1" / "batching_params.pbtxt").write_text("max_batch_size: 2")
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics" }')
    with ServerProcess(models, tmp_path / "server.log", "--enable_batching",
                       "--enable_per_model_batching_parameters",
                       "--monitoring_config_file", str(monitoring)) as server:
        assert affine(server, "plain", 3)[0] == 200
        assert batched_requests(server) == 0
        assert affine(server, "filed", 2)[0] == 200
        assert batched_requests(server) == 1
        # The file's max_batch_size, not the global default of 1000.
        status, text = affine(server, "filed", 3)
        assert status == 400 and "larger than maximum input batch size 2" in text

        status, text = request(server, "GET", "/v1/models/broken")
        version = json.loads(text)["model_version_status"][0]
        assert version["state"] == "END"
        assert version["status"]["error_code"] == "INVALID_ARGUMENT"
        assert "batching_params.pbtxt" in version["status"]["error_message"]
        assert "max_batch_size" in version["status"]["error_message"]
        assert affine(server, "broken", 1)[0] == 404
        assert server.stop()[0] == 0
