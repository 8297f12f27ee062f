"""One loaded version of one SavedModel: its signatures, checked calls and warmup replay."""

from __future__ import annotations

import pathlib

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_log_pb2

from seqzoo.serving.serving_error import ServingError

WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"
DEFAULT_SIGNATURE = "serving_default"


def read_signature_defs(path: pathlib.Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs a SavedModel declares, read from its `saved_model.pb`."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    return dict(saved_model.meta_graphs[0].signature_def)


class Servable:
    """A SavedModel version loaded for serving.

    Calls are thread safe: concrete functions of a loaded SavedModel may run concurrently, and a
    `Servable` holds no mutable state after construction.

    Args:
        name: the model name requests use.
        version: the version number (the name of its directory).
        path: the version directory (holding `saved_model.pb`).

    Example:
    ```python
    servable = Servable("sentiment", 1, "models/sentiment/1")
    servable.predict("serving_default", {"text": np.array([b"great film"], dtype=object)})
    ```
    """

    def __init__(self, name: str, version: int, path: str | pathlib.Path):
        self.name = name
        self.version = int(version)
        self.path = pathlib.Path(path)
        self.signature_defs = read_signature_defs(self.path)
        self._model = tf.saved_model.load(str(self.path))
        self._functions = dict(self._model.signatures)
        self._input_specs = {
            key: dict(fn.structured_input_signature[1]) for key, fn in self._functions.items()
        }

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        """The SignatureDefs of the SavedModel, as TF Serving's model metadata gives them."""
        result = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in self.signature_defs.items():
            result.signature_def[key].CopyFrom(signature)
        return result

    @property
    def signature_names(self) -> list[str]:
        return sorted(self._functions)

    def input_specs(self, signature_name: str = "") -> dict[str, tf.TensorSpec]:
        """The inputs of a signature by name; an unknown signature is FAILED_PRECONDITION."""
        key = signature_name or DEFAULT_SIGNATURE
        if key not in self._input_specs:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Serving signature key \"{key}\" not found. Signatures of model {self.name} "
                f"version {self.version}: {', '.join(self.signature_names)}.",
            )
        return self._input_specs[key]

    def predict(self, signature_name: str, inputs: dict[str, np.ndarray],
                output_filter=()) -> dict[str, np.ndarray]:
        """Runs a signature on `inputs` after checking names, dtypes and shapes.

        Returns the outputs by name (only those in `output_filter` when it is not empty).
        """
        specs = self.input_specs(signature_name)
        unknown = sorted(set(inputs) - set(specs))
        if unknown:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input tensor alias not found in signature: {', '.join(unknown)}. "
                f"Inputs expected to be in the set {{{', '.join(sorted(specs))}}}.",
            )
        missing = sorted(set(specs) - set(inputs))
        if missing:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Missing input(s) {', '.join(missing)}; the signature expects "
                f"{{{', '.join(sorted(specs))}}}.",
            )
        tensors = {name: self._checked_tensor(name, np.asarray(inputs[name]), specs[name])
                   for name in specs}
        function = self._functions[signature_name or DEFAULT_SIGNATURE]
        wanted = list(output_filter)
        unknown = sorted(set(wanted) - set(function.structured_outputs))
        if unknown:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"output tensor alias not found in signature: {', '.join(unknown)}. Outputs "
                f"expected to be in the set {{{', '.join(sorted(function.structured_outputs))}}}.",
            )
        try:
            outputs = function(**tensors)
        except tf.errors.OpError as err:
            raise ServingError.from_tf_error(err) from None
        # np.asarray: a scalar string output's .numpy() is plain bytes, not an array.
        return {name: np.asarray(value.numpy()) for name, value in outputs.items()
                if not wanted or name in wanted}

    @staticmethod
    def _checked_tensor(name: str, array: np.ndarray, spec: tf.TensorSpec) -> tf.Tensor:
        if spec.dtype == tf.string:
            ok = array.dtype.kind in "OSU"
        else:
            ok = array.dtype == spec.dtype.as_numpy_dtype
        if not ok:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Input {name!r} expects {spec.dtype.name} values; received {array.dtype.name}.",
            )
        if not spec.shape.is_compatible_with(array.shape):
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Input {name!r} has shape {list(array.shape)}, which does not match the "
                f"signature's shape {spec.shape.as_list() if spec.shape.rank is not None else '?'} "
                "(-1/None is any size).",
            )
        return tf.constant(array, dtype=spec.dtype)

    def warmup(self) -> int:
        """Replays `assets.extra/tf_serving_warmup_requests` (as TF Serving does on load).

        Returns the number of requests replayed; a failing request raises `ServingError`.
        """
        path = self.path / WARMUP_FILE
        if not path.is_file():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)):
            entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if entry.WhichOneof("log_type") != "predict_log":
                continue
            request = entry.predict_log.request
            inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
            self.predict(request.model_spec.signature_name, inputs)
            count += 1
        return count
