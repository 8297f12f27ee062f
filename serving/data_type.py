"""TensorFlow's tensor element types without TensorFlow: what a client needs to read a signature."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class DataType:
    """A tensor element type as TF Serving's messages name it, with its NumPy equivalent.

    A stand-in for `tf.DType` where importing TensorFlow would cost seconds (the client, `seqzoo
    predict`): it has the attributes of `tf.DType` that reading and writing tensors needs, so
    code written against either works with both. Only the types with a NumPy equivalent are
    known (not bfloat16, quantized, resource or variant tensors).

    Args:
        enum: the `DataType` number of TensorFlow's types.proto (`DT_FLOAT` is 1).
        proto_name: the enum's name, as the REST metadata JSON gives it ("DT_FLOAT").
        name: TensorFlow's name of the type ("float32", "string").
        as_numpy_dtype: the NumPy type of an element (`object` for strings, as in TensorFlow).

    Example:
    ```python
    DataType.of("DT_INT64").as_numpy_dtype   # numpy.int64
    DataType.of(7).name                      # "string"
    ```
    """

    enum: int
    proto_name: str
    name: str
    as_numpy_dtype: type

    @property
    def is_bool(self) -> bool:
        return self.name == "bool"

    @property
    def is_integer(self) -> bool:
        return np.issubdtype(self.as_numpy_dtype, np.integer)

    @property
    def is_string(self) -> bool:
        return self.name == "string"

    @classmethod
    def of(cls, value) -> "DataType":
        """The type of an enum number, a proto name ("DT_FLOAT"), a TF name ("float32"), a
        `tf.DType`, a NumPy dtype or a `DataType`."""
        if isinstance(value, DataType):
            return value
        key = getattr(value, "as_datatype_enum", value)
        if isinstance(key, (str, int)) and not isinstance(key, bool) and key in _BY_KEY:
            return _BY_KEY[key]
        try:
            numpy_dtype = np.dtype(value)
        except TypeError:
            numpy_dtype = None
        if numpy_dtype is not None and numpy_dtype.kind in "OSU":
            return _BY_KEY["string"]
        if numpy_dtype is not None and numpy_dtype.type in _BY_KEY:
            return _BY_KEY[numpy_dtype.type]
        raise ValueError(
            f"Unsupported tensor type {value!r}; accepted: {', '.join(t.name for t in TYPES)} "
            f"(or their enum names {', '.join(t.proto_name for t in TYPES)})."
        )


TYPES = tuple(DataType(*entry) for entry in (
    (1, "DT_FLOAT", "float32", np.float32),
    (2, "DT_DOUBLE", "float64", np.float64),
    (3, "DT_INT32", "int32", np.int32),
    (4, "DT_UINT8", "uint8", np.uint8),
    (5, "DT_INT16", "int16", np.int16),
    (6, "DT_INT8", "int8", np.int8),
    (7, "DT_STRING", "string", object),
    (8, "DT_COMPLEX64", "complex64", np.complex64),
    (9, "DT_INT64", "int64", np.int64),
    (10, "DT_BOOL", "bool", np.bool_),
    (17, "DT_UINT16", "uint16", np.uint16),
    (18, "DT_COMPLEX128", "complex128", np.complex128),
    (19, "DT_HALF", "float16", np.float16),
    (22, "DT_UINT32", "uint32", np.uint32),
    (23, "DT_UINT64", "uint64", np.uint64),
))
_BY_KEY = {key: data_type for data_type in TYPES
           for key in (data_type.enum, data_type.proto_name, data_type.name)}
_BY_KEY.update({data_type.as_numpy_dtype: data_type for data_type in TYPES
                if data_type.as_numpy_dtype is not object})
