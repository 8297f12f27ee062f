"""A client of TF Serving's REST and gRPC APIs (works against TF Serving and our ModelServer).

It never imports TensorFlow, so a script or `seqzoo predict` answers in a fraction of a second:
REST needs only JSON, and gRPC uses TF Serving's messages built by `seqzoo.serving.serving_apis`
from the installed tensorflow-serving-api without loading TensorFlow.
"""

from __future__ import annotations

import http.client
import json
import threading

import grpc
import numpy as np

from seqzoo.serving import json_tensors
from seqzoo.serving.data_type import DataType
from seqzoo.serving.serving_error import ServingError

TRANSPORTS = ("rest", "grpc")


class Client:
    """Talks to a model server over REST or gRPC and gives back NumPy arrays.

    Each transport works alone: a client of a gRPC-only server reads the signatures over gRPC
    too. Inputs are converted to the dtypes the signature declares (read once from the model's
    metadata and cached), so `{"text": ["a", "b"]}` or `{"x": [[1, 2]]}` just work. String
    outputs come back as object arrays of Python `str` (outputs named `*_bytes` as `bytes`) by
    both transports. Errors raise `ServingError` with the server's status code and message.

    Args:
        host: server host.
        rest_port: REST port of the server.
        grpc_port: gRPC port of the server.
        timeout: seconds to wait for each call.

    Example:
    ```python
    with Client(rest_port=8501, grpc_port=8500) as client:
        client.predict("sentiment", {"text": ["a fine film"]}, via="grpc")
    # {"label": array(["positive"], dtype=object), "probabilities": array([[0.07, 0.93]], ...)}
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
        self._signatures: dict[tuple, dict] = {}

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- transports -------------------------------------------------------------------------

    @staticmethod
    def _check_via(via: str) -> None:
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

    def _grpc(self, service: str, method: str, request, response_name: str):
        from seqzoo.serving.serving_apis import message_class

        if self._channel is None:
            self._channel = grpc.insecure_channel(
                f"{self.host}:{self.grpc_port}",
                options=[("grpc.max_send_message_length", -1),
                         ("grpc.max_receive_message_length", -1)],
            )
        call = self._channel.unary_unary(
            service + method, request_serializer=type(request).SerializeToString,
            response_deserializer=message_class(response_name).FromString)
        try:
            return call(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise ServingError(err.code(), err.details() or str(err)) from None

    @staticmethod
    def _request(name: str, model: str, version: int | None, signature_name: str = ""):
        """A request message of TF Serving's API with its `model_spec` filled in."""
        from seqzoo.serving.serving_apis import message_class

        request = message_class(f"tensorflow.serving.{name}")()
        request.model_spec.name = model
        if version is not None:
            request.model_spec.version.value = int(version)
        if signature_name:
            request.model_spec.signature_name = signature_name
        return request

    @staticmethod
    def _path(model: str, version: int | None) -> str:
        return f"/v1/models/{model}" + (f"/versions/{int(version)}" if version is not None else "")

    @staticmethod
    def _as_json(message) -> dict:
        # The options of TF Serving's REST API, so both transports give the same dicts.
        from google.protobuf import json_format

        return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)

    # --- API ----------------------------------------------------------------------------------

    def status(self, model: str, version: int | None = None, *, via: str = "rest") -> dict:
        """The model's status as TF Serving's JSON (`{"model_version_status": [...]}`)."""
        self._check_via(via)
        if via == "rest":
            return self._rest("GET", self._path(model, version))
        from seqzoo.serving.serving_apis import MODEL_SERVICE

        request = self._request("GetModelStatusRequest", model, version)
        return self._as_json(self._grpc(MODEL_SERVICE, "GetModelStatus", request,
                                        "tensorflow.serving.GetModelStatusResponse"))

    def metadata(self, model: str, version: int | None = None, *, via: str = "rest") -> dict:
        """The model's signature defs as TF Serving's REST API gives them, by either transport:
        `{"signature_def": {NAME: {"inputs": {ALIAS: {"dtype": "DT_FLOAT", "tensor_shape":
        ...}}, "outputs": ..., "method_name": ...}}}`."""
        self._check_via(via)
        if via == "rest":
            result = self._rest("GET", self._path(model, version) + "/metadata")
            result = result["metadata"]["signature_def"]
        else:
            from seqzoo.serving.serving_apis import PREDICTION_SERVICE, message_class

            request = self._request("GetModelMetadataRequest", model, version)
            request.metadata_field.append("signature_def")
            response = self._grpc(PREDICTION_SERVICE, "GetModelMetadata", request,
                                  "tensorflow.serving.GetModelMetadataResponse")
            signatures = message_class("tensorflow.serving.SignatureDefMap")()
            signatures.ParseFromString(response.metadata["signature_def"].value)
            result = self._as_json(signatures)
        self._signatures[(model, version)] = result
        return result

    def signature(self, model: str, signature_name: str = "serving_default",
                  version: int | None = None, *, via: str = "rest") -> dict:
        """A signature's def as a dict (see `metadata`), cached after the first metadata call."""
        signatures = self._signatures.get((model, version)) or self.metadata(model, version,
                                                                            via=via)
        if signature_name not in signatures["signature_def"]:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Serving signature key \"{signature_name}\" not found; model {model} has "
                f"{', '.join(sorted(signatures['signature_def']))}.",
            )
        return signatures["signature_def"][signature_name]

    def predict(self, model: str, inputs: dict, *, signature_name: str = "serving_default",
                version: int | None = None, via: str = "rest") -> dict[str, np.ndarray]:
        """Runs a signature on `inputs` (arrays or nested lists by input name).

        Returns:
            The outputs by name as NumPy arrays.
        """
        self._check_via(via)
        signature = self.signature(model, signature_name, version, via=via)
        arrays = {}
        for name, value in inputs.items():
            info = signature["inputs"].get(name)
            dtype = DataType.of(info["dtype"]).as_numpy_dtype if info is not None else None
            arrays[name] = np.asarray(value, dtype=dtype)
        if via == "rest":
            body = {"signature_name": signature_name,
                    "inputs": {name: json_tensors.to_json_input(a) for name, a in arrays.items()}}
            outputs = self._rest("POST", self._path(model, version) + ":predict", body)["outputs"]
            if len(signature["outputs"]) == 1:
                outputs = {next(iter(signature["outputs"])): outputs}
            return {name: json_tensors.from_json(
                        value, DataType.of(signature["outputs"][name]["dtype"]), name)
                    for name, value in outputs.items()}
        from seqzoo.serving.serving_apis import PREDICTION_SERVICE
        from seqzoo.serving.tensor_proto import make_ndarray, make_tensor_proto

        request = self._request("PredictRequest", model, version, signature_name)
        for name, array in arrays.items():
            info = signature["inputs"].get(name)
            request.inputs[name].CopyFrom(make_tensor_proto(array, info and info["dtype"]))
        response = self._grpc(PREDICTION_SERVICE, "Predict", request,
                              "tensorflow.serving.PredictResponse")
        return {name: _decoded(name, make_ndarray(proto))
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
