"""TF Serving's Classify, Regress and MultiInference APIs (REST `:classify`/`:regress`, gRPC) on
SavedModels with classify and regress signatures over serialized tf.Examples: one exported from a
tf.Module as the zoo exports, one built with TF1's SavedModelBuilder and signature helpers."""

import http.client
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from seqzoo.serving import export
from seqzoo.serving.servable import WARMUP_FILE, Servable
from seqzoo.serving.server import ModelServer
from seqzoo.serving.serving_error import ServingError

CLASSES = ("low", "high")
FEATURES = {"x": tf.io.FixedLenFeature([2], tf.float32)}


class ExampleModule(tf.Module):
    """score(x) = x0 + 2 x1: regressed as is, classified as softmax([-score, score])."""

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    def score(self, x):
        return {"score": x[:, 0] + 2.0 * x[:, 1]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        score = self.score(tf.io.parse_example(inputs, FEATURES)["x"])["score"]
        scores = tf.nn.softmax(tf.stack([-score, score], axis=1))
        return {"classes": tf.tile(tf.constant([CLASSES]), [tf.shape(score)[0], 1]),
                "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        return {"outputs": self.score(tf.io.parse_example(inputs, FEATURES)["x"])["score"][:, None]}

    @property
    def signatures(self):
        return {"serving_default": self.score, "classify_x": self.classify,
                "regress_x": self.regress}


def reference(x):
    score = np.float32(x)[:, 0] + 2 * np.float32(x)[:, 1]
    exp = np.exp(np.stack([-score, score], axis=1))
    return score, exp / exp.sum(axis=1, keepdims=True)


X = [[0.5, -1.0], [2.0, 0.25]]


def save_tf1(path):
    """The same model as a TF1 graph whose classify and regress signatures share one input
    tensor, built with TF's own signature helpers."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
        x = tf.io.parse_example(serialized, FEATURES)["x"]
        score = x[:, 0] + 2.0 * x[:, 1]
        scores = tf.nn.softmax(tf.stack([-score, score], axis=1))
        classes = tf.tile(tf.constant([CLASSES]), [tf.shape(score)[0], 1])
        builder = tf.compat.v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
            "classify_x": tf.compat.v1.saved_model.classification_signature_def(
                serialized, classes, scores),
            "regress_x": tf.compat.v1.saved_model.regression_signature_def(
                serialized, score[:, None]),
        })
        builder.save()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")
    records = export.save_for_serving(ExampleModule(), root / "ex" / "1", "ex", {"x": X})
    # Each example warms up the predict signature, the classify and the regress one.
    assert records == 3 * len(X)
    save_tf1(root / "tf1" / "1")
    with ModelServer(root, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        yield server


def rest(server, path, body):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    connection.request("POST", path, body=body if isinstance(body, bytes) else json.dumps(body))
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def stub(server):
    return prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))


def examples_input(request_input, rows):
    for row in rows:
        request_input.example_list.examples.add().features.feature["x"].float_list.value.extend(row)


def test_signature_methods_follow_tf_serving_contracts(server):
    signatures = server.registry.get("ex").signature_defs
    assert signatures["classify_x"].method_name == "tensorflow/serving/classify"
    assert signatures["regress_x"].method_name == "tensorflow/serving/regress"
    assert signatures["serving_default"].method_name == "tensorflow/serving/predict"


def test_rest_classify_and_regress_match_the_reference(server):
    score, probabilities = reference(X)
    status, body = rest(server, "/v1/models/ex:classify",
                        {"signature_name": "classify_x", "examples": [{"x": row} for row in X]})
    assert status == 200, body
    assert [[label for label, _ in item] for item in body["results"]] == [list(CLASSES)] * 2
    np.testing.assert_allclose([[s for _, s in item] for item in body["results"]], probabilities,
                               rtol=1e-6)
    status, body = rest(server, "/v1/models/ex/versions/1:regress",
                        {"signature_name": "regress_x", "examples": [{"x": row} for row in X]})
    assert status == 200, body
    np.testing.assert_allclose(body["results"], score, rtol=1e-6)
    # A context shared by every example holds the feature once.
    status, body = rest(server, "/v1/models/ex:regress",
                        {"signature_name": "regress_x", "context": {"x": X[1]}, "examples": [{}]})
    np.testing.assert_allclose(body["results"], score[1:], rtol=1e-6)


def test_grpc_classify_regress_and_multi_inference(server):
    score, probabilities = reference(X)
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "ex"
    request.model_spec.signature_name = "classify_x"
    examples_input(request.input, X)
    response = stub(server).Classify(request, timeout=30)
    assert response.model_spec.version.value == 1
    got = [[(c.label, c.score) for c in item.classes] for item in response.result.classifications]
    assert [[label for label, _ in item] for item in got] == [list(CLASSES)] * 2
    np.testing.assert_allclose([[s for _, s in item] for item in got], probabilities, rtol=1e-6)

    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "ex"
    request.model_spec.signature_name = "regress_x"
    examples_input(request.input, X)
    response = stub(server).Regress(request, timeout=30)
    np.testing.assert_allclose([r.value for r in response.result.regressions], score, rtol=1e-6)

    def multi_inference(model):
        request = inference_pb2.MultiInferenceRequest()
        for signature, method in (("classify_x", "tensorflow/serving/classify"),
                                  ("regress_x", "tensorflow/serving/regress")):
            task = request.tasks.add()
            task.model_spec.name = model
            task.model_spec.signature_name = signature
            task.method_name = method
        examples_input(request.input, X)
        return stub(server).MultiInference(request, timeout=30)

    response = multi_inference("tf1")
    classified, regressed = response.results
    assert [r.model_spec.signature_name for r in response.results] == ["classify_x", "regress_x"]
    np.testing.assert_allclose([[c.score for c in item.classes]
                                for item in classified.classification_result.classifications],
                               probabilities, rtol=1e-6)
    np.testing.assert_allclose([r.value for r in regressed.regression_result.regressions], score,
                               rtol=1e-6)
    # Signatures written by tf.saved_model.save each get their own input placeholder, and TF
    # Serving runs MultiInference only on signatures that share one.
    with pytest.raises(grpc.RpcError) as info:
        multi_inference("ex")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "Input tensor must be the same for all Signatures."


GOOD = ("/v1/models/ex:regress", {"signature_name": "regress_x", "examples": [{"x": [1.0, 1.0]}]},
        {"results": [3.0]})
BAD_REST = [
    # (path, body, HTTP status, words of the error)
    ("/v1/models/ex:classify", {"examples": [{"x": [1.0, 1.0]}]}, 400,
     "Expected classification signature method_name to be tensorflow/serving/classify"),
    ("/v1/models/ex:regress", {"signature_name": "classify_x", "examples": [{"x": [1.0, 1.0]}]},
     400, "Expected regression signature method_name"),
    ("/v1/models/ex:classify", {"signature_name": "nope", "examples": [{"x": [1.0, 1.0]}]}, 400,
     "No signature was found with the name: nope"),
    ("/v1/models/ex:classify", {"signature_name": "classify_x", "examples": []}, 400,
     "non-empty list"),
    ("/v1/models/ex:classify", {"signature_name": "classify_x", "examples": [{"x": [[1.0]]}]}, 400,
     "unexpected JSON type"),
    ("/v1/models/ex:classify", {"signature_name": "classify_x", "examples": [{"x": [1.0, "a"]}]},
     400, "Feature: x mixes decimals and strings"),
    # Well-formed tf.Examples the signature cannot parse: its own error, with TF's code.
    ("/v1/models/ex:classify", {"signature_name": "classify_x", "examples": [{"y": [1.0, 1.0]}]},
     400, "Feature: x (data type: float) is required"),
    ("/v1/models/ex:classify", {"signature_name": "classify_x", "examples": [{"x": [1, 2]}]},
     400, "Data types don't match. Data type: int64 but expected type: float"),
    ("/v1/models/ex:classify", b"{not json", 400, "JSON"),
    ("/v1/models/ex/labels/nope:classify", {"examples": [{"x": [1.0, 1.0]}]}, 400,
     "Unrecognized servable version label: nope"),
]


def test_rest_errors_then_the_next_good_request_is_answered(server):
    for path, body, want_status, words in BAD_REST:
        status, answer = rest(server, path, body)
        assert (status, list(answer)) == (want_status, ["error"]), (path, body, answer)
        assert words in answer["error"], (words, answer)
        assert rest(server, GOOD[0], GOOD[1]) == (200, GOOD[2])


def test_grpc_errors_then_the_next_good_request_is_answered(server):
    def classify(signature="classify_x", rows=X, feature="x"):
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name = "ex"
        request.model_spec.signature_name = signature
        for row in rows:
            example = request.input.example_list.examples.add()
            example.features.feature[feature].float_list.value.extend(row)
        return request

    multi = inference_pb2.MultiInferenceRequest()
    for name in ("ex", "other"):
        task = multi.tasks.add()
        task.model_spec.name = name
        task.method_name = "tensorflow/serving/classify"
    duplicate = inference_pb2.MultiInferenceRequest()
    for _ in range(2):
        task = duplicate.tasks.add()
        task.model_spec.name = "ex"
        task.model_spec.signature_name = "classify_x"
        task.method_name = "tensorflow/serving/classify"
    examples_input(duplicate.input, X)
    bad = [
        ("Classify", classify(signature=""), grpc.StatusCode.INVALID_ARGUMENT),
        ("Classify", classify(rows=[]), grpc.StatusCode.INVALID_ARGUMENT),
        ("Classify", classify(feature="y"), grpc.StatusCode.INVALID_ARGUMENT),
        ("Classify", classify(rows=[[1.0, 2.0, 3.0]]), grpc.StatusCode.INVALID_ARGUMENT),
        ("MultiInference", multi, grpc.StatusCode.INVALID_ARGUMENT),
        ("MultiInference", duplicate, grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for method, request, code in bad:
        with pytest.raises(grpc.RpcError) as info:
            getattr(stub(server), method)(request, timeout=30)
        assert info.value.code() == code, (method, info.value.details())
        response = stub(server).Classify(classify(), timeout=30)
        assert len(response.result.classifications) == len(X)


def test_warmup_replays_classify_regress_and_multi_inference_records(tmp_path):
    """Our exports write Predict records only; SavedModels from other tools may carry the
    other kinds, which TF Serving replays through its Classify, Regress and MultiInference."""
    def write(records):
        path = tmp_path / "tf1" / "1" / WARMUP_FILE
        path.parent.mkdir(exist_ok=True)
        with tf.io.TFRecordWriter(str(path)) as writer:
            for record in records:
                writer.write(record.SerializeToString())

    def logged(kind, signature):
        record = prediction_log_pb2.PredictionLog()
        request = getattr(record, kind).request
        if kind == "multi_inference_log":
            for key, method in (("classify_x", "classify"), ("regress_x", "regress")):
                task = request.tasks.add()
                task.model_spec.signature_name = key
                task.method_name = f"tensorflow/serving/{method}"
        else:
            request.model_spec.signature_name = signature
        examples_input(request.input, X)
        return record

    save_tf1(tmp_path / "tf1" / "1")
    write([logged("classify_log", "classify_x"), logged("regress_log", "regress_x"),
           logged("multi_inference_log", None)])
    assert Servable("tf1", 1, tmp_path / "tf1" / "1").warmup() == 3

    write([logged("regress_log", "regress_x"), logged("classify_log", "regress_x")])
    with pytest.raises(ServingError, match="Warmup record 2 failed: Expected classification "
                                           "signature method_name"):
        Servable("tf1", 1, tmp_path / "tf1" / "1").warmup()
