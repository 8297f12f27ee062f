"""The gRPC half of the model server: TF Serving's PredictionService and ModelService."""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from seqzoo.serving import tensor_proto
from seqzoo.serving.data_type import TYPES
from seqzoo.serving.model_registry import ModelRegistry
from seqzoo.serving.servable import DEFAULT_SIGNATURE
from seqzoo.serving.serving_error import ServingError


def _requested(spec):
    return (spec.name, spec.version.value if spec.HasField("version") else None,
            spec.version_label or None)


def _answered_spec(spec, request_spec, version: int) -> None:
    spec.name = request_spec.name
    spec.version.value = version
    spec.signature_name = request_spec.signature_name or DEFAULT_SIGNATURE


# The types `tensor_proto` converts (with NumPy, several times faster than TensorFlow's
# converters, in the same bytes); TensorFlow's converters take the others (bfloat16, ...).
_NUMPY_TYPES = frozenset(data_type.enum for data_type in TYPES)
_NUMPY_DTYPES = frozenset(np.dtype(data_type.as_numpy_dtype) for data_type in TYPES)


def _ndarray(proto) -> np.ndarray:
    """The array of a request's `TensorProto`, as `tf.make_ndarray` reads it."""
    if proto.dtype in _NUMPY_TYPES:
        return tensor_proto.make_ndarray(proto)
    return tf.make_ndarray(proto)


def _fill_tensor_proto(proto, array: np.ndarray) -> None:
    """Writes `array` into the empty `TensorProto` `proto`, as `tf.make_tensor_proto` would."""
    if array.dtype in _NUMPY_DTYPES:
        tensor_proto.make_tensor_proto(array, proto=proto)
    else:
        proto.CopyFrom(tf.make_tensor_proto(array))


def _abort_on_error(method):
    """Turns a `ServingError` (or a bad input tensor) into the gRPC status TF Serving gives."""

    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as err:
            context.abort(err.code, err.message)
        except (TypeError, ValueError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def _counted(method):
    """Counts and times an inference call in the registry's metrics, as TF Serving does."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        specs = [task.model_spec for task in request.tasks] if method.__name__ == (
            "MultiInference") else [request.model_spec]
        with self.registry.metrics.request(specs[0].name if specs else "", method.__name__,
                                           "GRPC"):
            return method(self, request, context)

    return wrapper


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    @_abort_on_error
    @_counted
    def Predict(self, request, context):
        name, version, label = _requested(request.model_spec)
        servable = self.registry.get(name, version, label)
        inputs = {key: _ndarray(proto) for key, proto in request.inputs.items()}
        remaining = context.time_remaining()
        outputs = servable.predict(
            request.model_spec.signature_name, inputs, request.output_filter,
            deadline=None if remaining is None else time.monotonic() + remaining)
        response = predict_pb2.PredictResponse()
        _answered_spec(response.model_spec, request.model_spec, servable.version)
        for key, array in outputs.items():
            _fill_tensor_proto(response.outputs[key], array)
        return response

    def _on_examples(self, request, response, method: str):
        """Classify or Regress: the servable's `method` on the request's tf.Examples."""
        servable = self.registry.get(*_requested(request.model_spec))
        response.result.CopyFrom(getattr(servable, method)(request.model_spec.signature_name,
                                                           request.input))
        _answered_spec(response.model_spec, request.model_spec, servable.version)
        return response

    @_abort_on_error
    @_counted
    def Classify(self, request, context):
        return self._on_examples(request, classification_pb2.ClassificationResponse(), "classify")

    @_abort_on_error
    @_counted
    def Regress(self, request, context):
        return self._on_examples(request, regression_pb2.RegressionResponse(), "regress")

    @_abort_on_error
    @_counted
    def MultiInference(self, request, context):
        names = {task.model_spec.name for task in request.tasks}
        if "" in names:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "Found ModelSpec with an empty model name.")
        if len(names) > 1:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "All ModelSpecs in a MultiInferenceRequest must access the same "
                               f"model name; received {sorted(names)}.")
        if not names:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "MultiInferenceRequest has no tasks; give at least one.")
        servable = self.registry.get(*_requested(request.tasks[0].model_spec))
        response = inference_pb2.MultiInferenceResponse()
        response.results.extend(servable.multi_inference(request.tasks, request.input))
        return response

    @_abort_on_error
    def GetModelMetadata(self, request, context):
        name, version, label = _requested(request.model_spec)
        servable = self.registry.get(name, version, label)
        unsupported = sorted(set(request.metadata_field) - {"signature_def"})
        if unsupported or not request.metadata_field:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Metadata field(s) {unsupported or '(none)'} are not supported; the accepted "
                "metadata_field is 'signature_def'.",
            )
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(servable.signature_def_map())
        return response


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    @_abort_on_error
    def GetModelStatus(self, request, context):
        return self.registry.status(*_requested(request.model_spec))

    @_abort_on_error
    def HandleReloadConfigRequest(self, request, context):
        self.registry.reload_config(request.config)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.SetInParent()  # error_code OK
        return response


# The names the health service answers for: the whole server ("") and each service.
HEALTH_SERVICES = ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")
# grpcio's own default for the largest message a server receives is 4 MiB; TF Serving allows
# any size. A bound keeps one request from taking the server's memory.
DEFAULT_MAX_RECEIVE_BYTES = 64 << 20


class GrpcServer:
    """Serves a `ModelRegistry` over TF Serving's gRPC API.

    `PredictionService` (Predict, Classify, Regress, MultiInference, GetModelMetadata),
    `ModelService` (GetModelStatus, HandleReloadConfigRequest) and the standard
    `grpc.health.v1.Health` service (SERVING from start until a stop begins, for the server
    "" and each service by its full name, e.g. for Kubernetes' gRPC probes); errors are gRPC statuses
    (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...) as TF Serving gives them. The port is
    bound exclusively: grpcio's default SO_REUSEPORT would let a second server share a busy port
    and take half of its requests.

    Args:
        registry: the models to serve.
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it back from `.port`).
        max_workers: threads answering requests concurrently (TF Serving's `--grpc_max_threads`).
        arguments: gRPC server arguments (TF Serving's `--grpc_channel_arguments`), over the
            defaults: messages of any size sent, at most `DEFAULT_MAX_RECEIVE_BYTES` received.

    Example:
    ```python
    server = GrpcServer(ModelRegistry("models"), port=0)
    server.start()
    server.stop(drain_seconds=10).wait()
    ```
    """

    def __init__(self, registry: ModelRegistry, host: str = "127.0.0.1", port: int = 8500,
                 max_workers: int = 8, arguments: dict[str, int | str] | None = None):
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1. Received: max_workers={max_workers}")
        options = {"grpc.max_send_message_length": -1,
                   "grpc.max_receive_message_length": DEFAULT_MAX_RECEIVE_BYTES,
                   **(arguments or {}), "grpc.so_reuseport": 0}
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=max_workers),
            options=list(options.items()),
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(registry), self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(registry),
                                                                  self._server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        try:
            self.port = self._server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise ValueError(f"Could not bind the gRPC port {host}:{port}: it is in use (or "
                             "not available on this host). Stop the other server or pick another "
                             "--port.")

    def start(self) -> None:
        self._server.start()
        for service in HEALTH_SERVICES:
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, drain_seconds: float = 0) -> threading.Event:
        """Refuses new calls at once and lets the calls in flight finish for up to
        `drain_seconds`, then cancels them; returns an event set when all have ended."""
        self._health.enter_graceful_shutdown()  # watchers learn NOT_SERVING
        return self._server.stop(drain_seconds)
