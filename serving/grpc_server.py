"""The gRPC half of the model server: TF Serving's PredictionService and ModelService."""

from __future__ import annotations

import concurrent.futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from seqzoo.serving.model_registry import ModelRegistry
from seqzoo.serving.serving_error import ServingError


def _requested(spec):
    return (spec.name, spec.version.value if spec.HasField("version") else None,
            spec.version_label or None)


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


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    @_abort_on_error
    def Predict(self, request, context):
        name, version, label = _requested(request.model_spec)
        servable = self.registry.get(name, version, label)
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        outputs = servable.predict(request.model_spec.signature_name, inputs,
                                   request.output_filter)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
        for key, array in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(array))
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


class GrpcServer:
    """Serves a `ModelRegistry` over TF Serving's gRPC API.

    `PredictionService.Predict` and `.GetModelMetadata`, `ModelService.GetModelStatus`; errors
    are gRPC statuses (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION) as TF Serving gives them.

    Args:
        registry: the models to serve.
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it back from `.port`).
        max_workers: threads answering requests concurrently.

    Example:
    ```python
    server = GrpcServer(ModelRegistry("models"), port=0)
    server.start()
    server.stop()
    ```
    """

    def __init__(self, registry: ModelRegistry, host: str = "127.0.0.1", port: int = 8500,
                 max_workers: int = 8):
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1. Received: max_workers={max_workers}")
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=max_workers),
            options=[("grpc.max_send_message_length", -1),
                     ("grpc.max_receive_message_length", -1)],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(registry), self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(registry),
                                                                  self._server)
        try:
            self.port = self._server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise ValueError(f"Could not bind the gRPC port {host}:{port}; is it in use?")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 1.0) -> None:
        self._server.stop(grace).wait()
