"""TF Serving's REST JSON mapping of the Classify and Regress APIs: request bodies to `Input`
protos of `tf.Example`s, results to response bodies.

A request is `{"signature_name": ..., "context": {FEATURE: VALUE|LIST}, "examples": [{FEATURE:
VALUE|LIST}, ...]}`. A JSON string becomes a bytes feature (as does `{"b64": ...}`), a whole
number an int64 feature (booleans too, as 0/1), a decimal a float feature; one feature's values
must all be of one kind. Answers are `{"results": [[[label, score], ...], ...]}` for classify and
`{"results": [value, ...]}` for regress.
"""

from __future__ import annotations

import base64
import binascii

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

from seqzoo.serving.json_tensors import float32_json, is_b64
from seqzoo.serving.serving_error import ServingError

_INT64 = np.iinfo(np.int64)
_KIND_NAMES = {"bytes_list": "strings", "int64_list": "whole numbers", "float_list": "decimals"}


def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _value_kind(value, feature: str) -> tuple[str, object]:
    if isinstance(value, bool):
        return "int64_list", int(value)
    if isinstance(value, int):
        if not _INT64.min <= value <= _INT64.max:
            raise _invalid(f"Feature: {feature} has a value out of the int64 range: {value}.")
        return "int64_list", value
    if isinstance(value, float):
        return "float_list", value
    if isinstance(value, str):
        return "bytes_list", value.encode("utf-8")
    if is_b64(value) and isinstance(value["b64"], str):
        try:
            return "bytes_list", base64.b64decode(value["b64"], validate=True)
        except binascii.Error:
            raise _invalid(f"Feature: {feature} holds invalid base64 in {value!r}.") from None
    raise _invalid(
        f"Feature: {feature} has an element of unexpected JSON type: {value!r}. Accepted: a "
        "string, a number, a boolean, {\"b64\": ...}, or a flat list of one of these kinds."
    )


def _feature(values, feature: str) -> tf.train.Feature:
    kinds = [_value_kind(value, feature) for value in (values if isinstance(values, list)
                                                        else [values])]
    names = {kind for kind, _ in kinds}
    if len(names) > 1:
        raise _invalid(f"Feature: {feature} mixes {' and '.join(sorted(_KIND_NAMES[n] for n in names))}"
                       "; the values of one feature must all be strings, all whole numbers or all "
                       "decimals.")
    result = tf.train.Feature()
    if names:
        getattr(result, names.pop()).value.extend(value for _, value in kinds)
    return result


def _example(obj, where: str) -> tf.train.Example:
    if not isinstance(obj, dict) or is_b64(obj):
        raise _invalid(f"{where} must be a JSON object of features; received {obj!r}.")
    return tf.train.Example(features=tf.train.Features(
        feature={name: _feature(values, name) for name, values in obj.items()}))


def parse_request(body) -> tuple[str, input_pb2.Input]:
    """Reads a classify/regress request body: `(signature_name, Input)`."""
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object with 'examples'.")
    signature_name = body.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise _invalid(f"'signature_name' must be a string; received {signature_name!r}.")
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise _invalid("'examples' must be a non-empty list of objects (feature name to value or "
                       f"list of values); received {examples!r}.")
    request_input = input_pb2.Input()
    if "context" in body:
        with_context = request_input.example_list_with_context
        with_context.context.CopyFrom(_example(body["context"], "'context'"))
        target = with_context.examples
    else:
        target = request_input.example_list.examples
    for index, obj in enumerate(examples):
        target.add().CopyFrom(_example(obj, f"Example {index}"))
    return signature_name, request_input


def format_classification(result: classification_pb2.ClassificationResult) -> dict:
    return {"results": [[[entry.label, float32_json(entry.score)] for entry in item.classes]
                        for item in result.classifications]}


def format_regression(result: regression_pb2.RegressionResult) -> dict:
    return {"results": [float32_json(entry.value) for entry in result.regressions]}
