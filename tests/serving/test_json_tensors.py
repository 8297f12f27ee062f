"""Whole-array JSON conversion gives what checking value by value gives, and leaves every
refusal, with its message, to the value-by-value path."""

import json

import numpy as np
import pytest

from seqzoo.serving import json_tensors
from seqzoo.serving.data_type import DataType
from seqzoo.serving.serving_error import ServingError

ACCEPTED = [
    ("float32", "[[1, 2.5], [-3, 0.1]]"),
    ("float32", "3"),
    ("float32", "[]"),
    ("float32", "[[], []]"),
    ("float64", "[[[1e300]], [[-2]]]"),
    ("complex64", "[1, 2.5]"),
    ("int32", "[[1, 2], [3, -4]]"),
    ("int64", "[4611686018427387904]"),
    ("uint8", "[[[0, 255], [7, 8]]]"),
    ("bool", "[[true, false]]"),
    ("string", '["a", "\\u00e9t\\u00e9"]'),
    ("string", '[["a", "b"], ["c", "d"]]'),
    ("string", '[{"b64": "aGk="}, {"b64": ""}]'),
    ("string", '"one"'),
    ("string", "[]"),
]
# Refused whole (a value must be looked at); the value-by-value path then accepts or explains.
ONE_BY_ONE = [
    ("string", '["a", {"b64": "aGk="}]', None),
    ("int32", "[1, 1.5]", "expects int32 values; received 1.5"),
    ("int32", "[1, true]", "expects int32 values; received True"),
    ("float32", '[1, "2"]', "expects float32 values; received '2'"),
    ("bool", "[true, 1]", "expects bool values; received 1"),
    ("uint8", "[255, 256]", "holds a value out of the range of uint8"),
    ("int32", "[[1, 2], [3]]", "is ragged: nested lists of lengths [2] and [1]"),
    ("float32", "[1, [2]]", "is ragged"),
    ("string", "[1]", "expects strings (or {\"b64\": ...} objects); received 1"),
    ("string", '[{"b64": "not base64!"}]', "holds invalid base64"),
    ("string", '["\\ud800"]', "holds text that is not valid Unicode"),
    ("float32", "[" * 65 + "1" + "]" * 65, "nests lists deeper than 64 levels"),
]


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()


@pytest.mark.parametrize("dtype,text", ACCEPTED)
def test_whole_arrays_equal_value_by_value_results(dtype, text):
    value, data_type = json.loads(text), DataType.of(dtype)
    whole = json_tensors._whole_array(value, data_type)
    assert whole is not None
    assert same(whole, json_tensors._value_by_value(value, data_type, "Input 'x'"))
    assert same(json_tensors.to_array(value, data_type, "Input 'x'"), whole)


@pytest.mark.parametrize("dtype,text,error", ONE_BY_ONE)
def test_values_that_need_a_look_go_one_by_one(dtype, text, error):
    value, data_type = json.loads(text), DataType.of(dtype)
    assert json_tensors._whole_array(value, data_type) is None
    if error is None:
        assert same(json_tensors.to_array(value, data_type, "Input 'x'"),
                     json_tensors._value_by_value(value, data_type, "Input 'x'"))
    else:
        with pytest.raises(ServingError, match="INVALID_ARGUMENT") as caught:
            json_tensors.to_array(value, data_type, "Input 'x'")
        assert caught.value.message.startswith("Input 'x' ")
        assert error in caught.value.message


def test_a_frames_request_converts_whole():
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 4, 3), dtype=np.uint8)
    body = json.loads(json.dumps({"inputs": {"frames": frames.tolist(), "lengths": [5, 3]}}))
    specs = {"frames": type("Spec", (), {"dtype": DataType.of("uint8")}),
             "lengths": type("Spec", (), {"dtype": DataType.of("int32")})}
    inputs, row_format = json_tensors.parse_predict_request(body, specs, max_elements=1000)
    assert not row_format
    assert inputs["frames"].dtype == np.uint8 and np.array_equal(inputs["frames"], frames)
    assert inputs["lengths"].dtype == np.int32 and inputs["lengths"].tolist() == [5, 3]
