"""NumPy arrays to `TensorProto` messages and back, as `tf.make_tensor_proto` and `tf.make_ndarray`
write and read them, without importing TensorFlow (for the gRPC client), and with NumPy's whole-array
conversions (for the gRPC server's Predict, where TensorFlow's converters cost more than the
model call of a small request)."""

from __future__ import annotations

import math

import numpy as np

from seqzoo.serving.data_type import DataType
from seqzoo.serving.serving_apis import message_class

# The repeated field holding each type's values when `tensor_content` is not used. TensorFlow
# writes `tensor_content` (raw little-endian bytes) for tensors of more than one element of the
# types in _CONTENT_TYPES and the typed field otherwise; a reader must accept both for every type.
_VALUE_FIELDS = {
    "float32": "float_val", "float64": "double_val", "int32": "int_val", "uint8": "int_val",
    "int16": "int_val", "int8": "int_val", "uint16": "int_val", "int64": "int64_val",
    "uint32": "uint32_val", "uint64": "uint64_val", "bool": "bool_val", "float16": "half_val",
    "complex64": "scomplex_val", "complex128": "dcomplex_val", "string": "string_val",
}
_CONTENT_TYPES = {"float16", "float32", "float64", "int32", "uint8", "int16", "int8", "int64",
                  "uint32", "uint64"}


def _string(item) -> bytes:
    return item if isinstance(item, bytes) else str(item).encode("utf-8")


def make_tensor_proto(values, dtype=None, proto=None):
    """A `tensorflow.TensorProto` of `values` (an array or nested lists).

    Args:
        values: the tensor's values; str items are sent as UTF-8.
        dtype: anything `DataType.of` reads; default: inferred from `values` (strings, bytes and
            object arrays become `string`).
        proto: an empty `TensorProto` to fill (e.g. a response's output field, of TensorFlow's
            own message class); default: a new one.

    Returns:
        The message, in TensorFlow's encoding of that type.
    """
    array = np.asarray(values)
    data_type = DataType.of(array.dtype if dtype is None else dtype)
    if proto is None:
        proto = message_class("tensorflow.TensorProto")()
    proto.dtype = data_type.enum
    proto.tensor_shape.SetInParent()  # present even for a scalar, as TensorFlow writes it
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    if data_type.is_string:
        proto.string_val.extend(_string(item) for item in array.ravel().tolist())
        return proto
    array = array.astype(data_type.as_numpy_dtype)
    if data_type.name in _CONTENT_TYPES and array.size > 1:
        proto.tensor_content = array.astype(array.dtype.newbyteorder("<")).tobytes()
    elif data_type.name == "float16":
        proto.half_val.extend(array.ravel().view(np.uint16).tolist())
    elif data_type.name.startswith("complex"):
        getattr(proto, _VALUE_FIELDS[data_type.name]).extend(
            array.ravel().view(array.real.dtype).tolist())
    else:
        getattr(proto, _VALUE_FIELDS[data_type.name]).extend(array.ravel().tolist())
    return proto


def make_ndarray(proto) -> np.ndarray:
    """The array of a `tensorflow.TensorProto` (strings as bytes in an object array).

    As in TensorFlow, a typed field with fewer values than the shape holds is padded with its
    last value (so one value fills the tensor), and an empty one gives zeros.
    """
    data_type = DataType.of(proto.dtype)
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    size = math.prod(shape)
    numpy_dtype = np.dtype(data_type.as_numpy_dtype)
    if proto.tensor_content:
        return (np.frombuffer(proto.tensor_content, dtype=numpy_dtype.newbyteorder("<"))
                .astype(numpy_dtype).reshape(shape))
    field = getattr(proto, _VALUE_FIELDS[data_type.name])
    if data_type.is_string:
        values = list(field)
        values.extend([values[-1] if values else b""] * (size - len(values)))
        return np.array(values, dtype=object).reshape(shape)
    if data_type.name == "float16":
        values = np.array(field, dtype=np.uint16).view(np.float16)
    elif data_type.name.startswith("complex"):
        values = np.array(field, dtype=numpy_dtype.type(0).real.dtype).view(numpy_dtype)
    else:
        values = np.array(field, dtype=numpy_dtype)
    if values.size == 0:
        return np.zeros(shape, numpy_dtype)
    if values.size < size:
        values = np.pad(values, (0, size - values.size), mode="edge")
    return values[:size].reshape(shape)
