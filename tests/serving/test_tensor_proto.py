"""The TensorFlow-free messages and tensor conversion (of the client, and of the gRPC server's
Predict), against TensorFlow's own."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from seqzoo.serving import grpc_server
from seqzoo.serving.data_type import DataType
from seqzoo.serving.serving_apis import message_class
from seqzoo.serving.tensor_proto import make_ndarray, make_tensor_proto

ARRAYS = [
    np.array([[1.5, -2.0], [0.25, 3.0]], np.float32),
    np.array(3.5, np.float32),
    np.zeros((0, 3), np.float32),
    np.array([1e300, -1.0], np.float64),
    np.array([[1, -2, 3]], np.int32),
    np.array([2**40, -5], np.int64),
    np.array([0, 255], np.uint8),
    np.array([-3, 4], np.int8),
    np.array([-300, 4], np.int16),
    np.array([60000, 1], np.uint16),
    np.array([2**32 - 1, 0], np.uint32),
    np.array([2**64 - 1, 0], np.uint64),
    np.array([True, False, True]),
    np.array([1.5, -0.25], np.float16),
    np.array([0.5], np.float16),
    np.array([1 + 2j, -3j], np.complex64),
    np.array([1 + 2j], np.complex128),
    np.array([b"a", b"\x00\xff"], dtype=object),
    np.array([["\u00e9t\u00e9"], ["b"]], dtype=object),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_same_bytes_as_tensorflow_and_the_same_array_back(array):
    ours = make_tensor_proto(array)
    theirs = tf.make_tensor_proto(array)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True)
    back = make_ndarray(message_class("tensorflow.TensorProto").FromString(
        theirs.SerializeToString()))
    expected = tf.make_ndarray(theirs)
    assert back.dtype == expected.dtype and back.shape == expected.shape
    np.testing.assert_array_equal(back, expected)


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_the_server_fills_tensorflows_own_messages_with_tensorflows_bytes(array):
    # The gRPC server writes each output into its response's field (TensorFlow's class) and
    # reads requests with these converters, falling back to TensorFlow's for other types.
    response = predict_pb2.PredictResponse()
    make_tensor_proto(array, proto=response.outputs["y"])
    assert response.outputs["y"].SerializeToString(deterministic=True) == (
        tf.make_tensor_proto(array).SerializeToString(deterministic=True))
    filled = tensor_pb2.TensorProto()
    grpc_server._fill_tensor_proto(filled, array)
    assert filled == response.outputs["y"]
    back, expected = grpc_server._ndarray(filled), tf.make_ndarray(filled)
    assert back.dtype == expected.dtype and back.shape == expected.shape
    np.testing.assert_array_equal(back, expected)


def test_the_server_converts_types_without_a_numpy_equivalent_with_tensorflow():
    array = np.array([1.5, -2.0], dtype=tf.bfloat16.as_numpy_dtype)
    proto = tensor_pb2.TensorProto()
    grpc_server._fill_tensor_proto(proto, array)
    assert proto == tf.make_tensor_proto(array)
    back = grpc_server._ndarray(proto)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back.astype(np.float32), [1.5, -2.0])


def test_short_typed_fields_are_padded_with_their_last_value_as_tensorflow_does():
    TensorProto = message_class("tensorflow.TensorProto")
    for dtype, field, values in [("DT_FLOAT", "float_val", [2.5]), ("DT_INT64", "int64_val", []),
                                 ("DT_STRING", "string_val", [b"x", b"y"])]:
        proto = TensorProto(dtype=DataType.of(dtype).enum)
        for size in (2, 3):
            proto.tensor_shape.dim.add().size = size
        getattr(proto, field).extend(values)
        expected = tf.make_ndarray(tensor_pb2.TensorProto.FromString(proto.SerializeToString()))
        np.testing.assert_array_equal(make_ndarray(proto), expected)


def test_requested_dtype_converts_the_values():
    proto = make_tensor_proto([[1, 2]], "DT_FLOAT")
    assert proto.dtype == 1
    np.testing.assert_array_equal(make_ndarray(proto), np.array([[1.0, 2.0]], np.float32))
    with pytest.raises(ValueError, match="Unsupported tensor type 'DT_BFLOAT16'; accepted: "
                                         "float32, float64"):
        make_tensor_proto([1.0], "DT_BFLOAT16")


@pytest.mark.parametrize("module, name", [
    (predict_pb2, "PredictRequest"), (predict_pb2, "PredictResponse"),
    (get_model_metadata_pb2, "GetModelMetadataResponse"),
    (get_model_metadata_pb2, "SignatureDefMap"),
    (get_model_status_pb2, "GetModelStatusResponse"),
])
def test_messages_are_the_installed_tensorflow_serving_apis(module, name):
    ours = message_class(f"tensorflow.serving.{name}").DESCRIPTOR
    theirs = getattr(module, name).DESCRIPTOR
    assert ours.file.serialized_pb == theirs.file.serialized_pb
    assert ours is not theirs  # a private pool: no clash with TensorFlow's classes


def test_a_request_built_without_tensorflow_reads_back_in_tensorflow_serving_apis():
    request = message_class("tensorflow.serving.PredictRequest")()
    request.model_spec.name = "m"
    request.model_spec.version.value = 3
    request.inputs["x"].CopyFrom(make_tensor_proto(np.array([[1.0, 2.0]], np.float32)))
    parsed = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert (parsed.model_spec.name, parsed.model_spec.version.value) == ("m", 3)
    np.testing.assert_array_equal(tf.make_ndarray(parsed.inputs["x"]), [[1.0, 2.0]])
