"""A client of TF Serving's REST and gRPC APIs (works against TF Serving and our ModelServer)."""

from __future__ import annotations

import http.client
import json
import threading

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from seqzoo.serving import json_tensors
from seqzoo.serving.serving_error import ServingError

TRANSPORTS = ("rest", "grpc")


class Client:
    """Talks to a model server over REST or gRPC and gives back NumPy arrays.

    Inputs are converted to the dtypes the signature declares (read once from the model's
    metadata and cached), so `{"text": ["a", "b"]}` or `{"x": [[1, 2]]}` just work. String outputs
    come back as object arrays of Python `str` (outputs named `*_bytes` as `bytes`) by both
    transports. Errors raise `ServingError` with the server's status code and message.

    Args:
        host: server host.
        rest_port: REST port of the server.
        grpc_port: gRPC port of the server.
        timeout: seconds to wait for each call.

    Example:
    ```python
    client = Client(rest_port=8501, grpc_port=8500)
    client.predict("sentiment", {"text": ["a fine film"]}, via="grpc")
    # {"label": array(["positive"], dtype=object), "probability": array([0.93], dtype=float32)}
    ```
    """

    def __init__(self, host: str = "127.0.0.1", rest_port: int = 8501, grpc_port: int = 8500,
                 timeout: float = 30):
        if timeout <= 0:
            raise ValueError(f"timeout must be positive. Received: timeout={timeout}")
        self.host = host
        self.rest_port = rest_port
        self.grpc_port = grpc_port
        self.timeout = timeout
        self._local = threading.local()
        self._channel = None
        self._signatures: dict[tuple, get_model_metadata_pb2.SignatureDefMap] = {}

    # --- transports -------------------------------------------------------------------------

    def _check_via(self, via: str) -> None:
        if via not in TRANSPORTS:
            raise ValueError(f"Unknown transport {via!r}; accepted: {', '.join(TRANSPORTS)}.")

    def _rest(self, method: str, path: str, body: dict | None = None) -> dict:
        # One keep-alive connection per thread: http.client connections are not thread safe.
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.rest_port, timeout=self.timeout)
            self._local.connection = connection
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (ConnectionError, http.client.HTTPException, OSError) as err:
            connection.close()
            self._local.connection = None
            raise ServingError(grpc.StatusCode.UNAVAILABLE,
                               f"REST server {self.host}:{self.rest_port} unreachable: {err}") from None
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = {"error": raw.decode("utf-8", errors="replace")}
        if response.status != 200:
            raise ServingError.from_http_status(response.status, payload.get("error", str(payload)))
        return payload

    def _stub(self, kind):
        if self._channel is None:
            self._channel = grpc.insecure_channel(
                f"{self.host}:{self.grpc_port}",
                options=[("grpc.max_send_message_length", -1),
                         ("grpc.max_receive_message_length", -1)],
            )
        return kind(self._channel)

    def _grpc(self, stub_kind, method: str, request):
        try:
            return getattr(self._stub(stub_kind), method)(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise ServingError(err.code(), err.details() or str(err)) from None

    @staticmethod
    def _path(model: str, version: int | None) -> str:
        return f"/v1/models/{model}" + (f"/versions/{int(version)}" if version is not None else "")

    @staticmethod
    def _spec(spec, model: str, version: int | None, signature_name: str = "") -> None:
        spec.name = model
        if version is not None:
            spec.version.value = int(version)
        if signature_name:
            spec.signature_name = signature_name

    # --- API ----------------------------------------------------------------------------------

    def status(self, model: str, version: int | None = None, *, via: str = "rest") -> dict:
        """The model's status as TF Serving's JSON (`{"model_version_status": [...]}`)."""
        self._check_via(via)
        if via == "rest":
            return self._rest("GET", self._path(model, version))
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version)
        response = self._grpc(model_service_pb2_grpc.ModelServiceStub, "GetModelStatus", request)
        return json_format.MessageToDict(response, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)

    def metadata(self, model: str, version: int | None = None, *,
                 via: str = "rest") -> get_model_metadata_pb2.SignatureDefMap:
        """The model's signature defs (a `SignatureDefMap` proto), by either transport."""
        self._check_via(via)
        result = get_model_metadata_pb2.SignatureDefMap()
        if via == "rest":
            payload = self._rest("GET", self._path(model, version) + "/metadata")
            json_format.ParseDict(payload["metadata"]["signature_def"], result)
        else:
            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
            self._spec(request.model_spec, model, version)
            response = self._grpc(prediction_service_pb2_grpc.PredictionServiceStub,
                                  "GetModelMetadata", request)
            response.metadata["signature_def"].Unpack(result)
        self._signatures[(model, version)] = result
        return result

    def signature(self, model: str, signature_name: str = "serving_default",
                  version: int | None = None):
        """A signature's `SignatureDef` (cached after the first metadata call)."""
        signatures = self._signatures.get((model, version)) or self.metadata(model, version)
        if signature_name not in signatures.signature_def:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Serving signature key \"{signature_name}\" not found; model {model} has "
                f"{', '.join(sorted(signatures.signature_def))}.",
            )
        return signatures.signature_def[signature_name]

    def predict(self, model: str, inputs: dict, *, signature_name: str = "serving_default",
                version: int | None = None, via: str = "rest") -> dict[str, np.ndarray]:
        """Runs a signature on `inputs` (arrays or nested lists by input name).

        Returns:
            The outputs by name as NumPy arrays.
        """
        self._check_via(via)
        signature = self.signature(model, signature_name, version)
        arrays = {}
        for name, value in inputs.items():
            info = signature.inputs.get(name)
            dtype = tf.as_dtype(info.dtype) if info is not None else None
            arrays[name] = (np.asarray(value, dtype=object) if dtype == tf.string
                            else np.asarray(value, dtype=dtype.as_numpy_dtype if dtype else None))
        if via == "rest":
            body = {"signature_name": signature_name,
                    "inputs": {name: json_tensors.to_json_input(a) for name, a in arrays.items()}}
            outputs = self._rest("POST", self._path(model, version) + ":predict", body)["outputs"]
            if len(signature.outputs) == 1:
                outputs = {next(iter(signature.outputs)): outputs}
            return {name: json_tensors.from_json(value, tf.as_dtype(signature.outputs[name].dtype),
                                                 name)
                    for name, value in outputs.items()}
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, signature_name)
        for name, array in arrays.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
        response = self._grpc(prediction_service_pb2_grpc.PredictionServiceStub, "Predict", request)
        return {name: _decoded(name, tf.make_ndarray(proto))
                for name, proto in response.outputs.items()}

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def _decoded(name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind not in "OS" or name.endswith("_bytes"):
        return array
    flat = [item.decode("utf-8", errors="replace") for item in array.ravel().tolist()]
    return np.array(flat, dtype=object).reshape(array.shape)
