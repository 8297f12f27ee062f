"""TF Serving's REST JSON mapping of tensors: request bodies to arrays, arrays to response bodies.

Row form (`instances`, answered with `predictions`) and columnar form (`inputs`, answered with
`outputs`); `{"b64": ...}` for binary strings; string outputs as UTF-8 text unless the output's
name ends in `_bytes`, which are sent back base64 encoded, as TF Serving does.

Element types are read through the attributes `tf.DType` and the client's TensorFlow-free
`seqzoo.serving.data_type.DataType` share (`name`, `is_bool`, `is_integer`, `as_numpy_dtype`), so
the server and the client use the same conversions and only the server imports TensorFlow.
"""

from __future__ import annotations

import base64
import binascii
import itertools

import grpc
import numpy as np

from seqzoo.serving.serving_error import ServingError

# Most dimensions a JSON tensor may have (NumPy's own limit): deeper nesting is refused before
# it can exhaust the stack.
MAX_RANK = 64


def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _shape_and_leaves(value, where: str, depth: int = 0) -> tuple[tuple[int, ...], list]:
    if not isinstance(value, list):
        return (), [value]
    if depth == MAX_RANK:
        raise _invalid(f"{where} nests lists deeper than {MAX_RANK} levels; a tensor has at most "
                       f"{MAX_RANK} dimensions.")
    if not value:
        return (0,), []
    shape, leaves = _shape_and_leaves(value[0], where, depth + 1)
    for item in value[1:]:
        item_shape, item_leaves = _shape_and_leaves(item, where, depth + 1)
        if item_shape != shape:
            raise _invalid(
                f"{where} is ragged: nested lists of lengths {list(shape)} and {list(item_shape)} at "
                "the same depth; a tensor needs lists of equal length at each depth."
            )
        leaves.extend(item_leaves)
    return (len(value),) + shape, leaves


def _string_leaf(value, where: str) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which JSON text can hold ("\\ud800")
            raise _invalid(f"{where} holds text that is not valid Unicode: {value!r}.") from None
    if is_b64(value) and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error:
            raise _invalid(f"{where} holds invalid base64 in {value!r}.") from None
    raise _invalid(f"{where} expects strings (or {{\"b64\": ...}} objects); received {value!r}.")


def _check_leaf(value, dtype, where: str):
    is_bool = isinstance(value, bool)
    if dtype.is_bool:
        ok = is_bool
    elif dtype.is_integer:
        ok = isinstance(value, int) and not is_bool
    else:
        ok = isinstance(value, (int, float)) and not is_bool
    if not ok:
        raise _invalid(f"{where} expects {dtype.name} values; received {value!r}.")
    return value


def _whole_shape_and_leaves(value) -> tuple[tuple[int, ...], list] | None:
    """`_shape_and_leaves` one depth at a time with C-speed built-ins (no Python call per value);
    None when the lists are ragged or too deep, for `_shape_and_leaves` to explain."""
    shape, level = [], [value]
    while True:
        kinds = set(map(type, level))
        if list not in kinds:
            return tuple(shape), level
        lengths = set(map(len, level)) if kinds == {list} else None
        if lengths is None or len(lengths) != 1 or len(shape) == MAX_RANK:
            return None
        shape.append(lengths.pop())
        level = list(itertools.chain.from_iterable(level))


# The JSON value types a tensor of each kind takes whole (bool is an int subclass, and an int
# where a bool is expected is refused, so these are exact types, not isinstance).
_NUMBER_TYPES = {"bool": {bool}, "integer": {int}, "float": {int, float}}


def _whole_array(value, dtype) -> np.ndarray | None:
    """The array of a JSON value converted whole (NumPy on the flat values, after one type check
    of them all), or None when some value needs looking at one by one: ragged lists, a value of
    the wrong type, `{"b64": ...}` objects mixed with text. Whatever it returns,
    `_value_by_value` returns too."""
    found = _whole_shape_and_leaves(value)
    if found is None:
        return None
    shape, leaves = found
    kinds = set(map(type, leaves))
    if dtype.name == "string":
        if kinds <= {str}:
            # Encoding can fail (a lone surrogate): the value-by-value path says where.
            try:
                flat = list(map(str.encode, leaves))
            except UnicodeEncodeError:
                return None
        elif kinds == {dict} and all(map(is_b64, leaves)):
            try:
                flat = [base64.b64decode(leaf["b64"], validate=True) for leaf in leaves]
            except (binascii.Error, TypeError, ValueError):
                return None
        else:
            return None
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    kind = "bool" if dtype.is_bool else "integer" if dtype.is_integer else "float"
    if not kinds <= _NUMBER_TYPES[kind]:
        return None
    try:
        return np.array(leaves, dtype=dtype.as_numpy_dtype).reshape(shape)
    except OverflowError:
        return None


def _value_by_value(value, dtype, where: str) -> np.ndarray:
    """`to_array` checking every value on its own: slow, but it names the value at fault."""
    shape, leaves = _shape_and_leaves(value, where)
    if dtype.name == "string":
        return np.array([_string_leaf(leaf, where) for leaf in leaves], dtype=object).reshape(shape)
    try:
        flat = np.array([_check_leaf(leaf, dtype, where) for leaf in leaves],
                        dtype=dtype.as_numpy_dtype)
    except OverflowError:
        raise _invalid(f"{where} holds a value out of the range of {dtype.name}.") from None
    return flat.reshape(shape)


def to_array(value, dtype, where: str) -> np.ndarray:
    """Converts a JSON value (scalar or nested lists) to an array of `dtype`: whole when it can,
    value by value when a value must be explained (INVALID_ARGUMENT naming it)."""
    array = _whole_array(value, dtype)
    return array if array is not None else _value_by_value(value, dtype, where)


def parse_predict_request(body, input_specs: dict,
                          max_elements: int | None = None) -> tuple[dict, bool]:
    """Reads the tensors of a predict request body, given each input's spec (with a `dtype`).

    Returns `(inputs, row_format)`: arrays by input name, and whether the body used `instances`.
    More than `max_elements` values in all (when given) is INVALID_ARGUMENT.
    """
    inputs, row_format = _parse_predict_request(body, input_specs)
    count = sum(array.size for array in inputs.values())
    if max_elements is not None and count > max_elements:
        raise _invalid(f"The request holds {count} tensor elements, more than the limit of "
                       f"{max_elements} (--rest_api_max_elements); send fewer examples per "
                       "request.")
    return inputs, row_format


def _parse_predict_request(body, input_specs: dict) -> tuple[dict, bool]:
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object with 'instances' or 'inputs'.")
    if ("instances" in body) == ("inputs" in body):
        raise _invalid(
            "The request body must hold exactly one of 'instances' (row format) or 'inputs' "
            f"(columnar format); received keys {sorted(body)}."
        )
    names = list(input_specs)
    if "instances" in body:
        return _parse_rows(body["instances"], input_specs, names), True
    columns = body["inputs"]
    if isinstance(columns, dict) and not is_b64(columns):
        unknown = sorted(set(columns) - set(names))
        if unknown:
            raise _invalid(
                f"input tensor alias not found in signature: {', '.join(unknown)}. "
                f"Inputs expected to be in the set {{{', '.join(sorted(names))}}}."
            )
        return {name: to_array(value, input_specs[name].dtype, f"Input {name!r}")
                for name, value in columns.items()}, False
    if len(names) != 1:
        raise _invalid(
            f"'inputs' must be an object naming each of the signature's inputs "
            f"{sorted(names)} when there is more than one."
        )
    return {names[0]: to_array(columns, input_specs[names[0]].dtype, f"Input {names[0]!r}")}, False


def _parse_rows(instances, input_specs, names) -> dict:
    if not isinstance(instances, list) or not instances:
        raise _invalid("'instances' must be a non-empty list, one element per example.")
    named = [isinstance(row, dict) and not is_b64(row) for row in instances]
    if not any(named):
        if len(names) != 1:
            raise _invalid(
                f"Each element of 'instances' must be an object naming the signature's inputs "
                f"{sorted(names)}, since there is more than one."
            )
        return {names[0]: to_array(instances, input_specs[names[0]].dtype, f"Input {names[0]!r}")}
    if not all(named):
        raise _invalid("Elements of 'instances' must all be objects or all be values, not a mix.")
    keys = set(instances[0])
    for index, row in enumerate(instances):
        if set(row) != keys:
            raise _invalid(
                f"Every element of 'instances' must name the same inputs; element 0 has "
                f"{sorted(keys)} and element {index} has {sorted(row)}."
            )
    unknown = sorted(keys - set(names))
    if unknown:
        raise _invalid(
            f"input tensor alias not found in signature: {', '.join(unknown)}. "
            f"Inputs expected to be in the set {{{', '.join(sorted(names))}}}."
        )
    return {name: to_array([row[name] for row in instances], input_specs[name].dtype,
                           f"Input {name!r}") for name in keys}


def _json_strings(array: np.ndarray, binary: bool):
    def encode(item):
        data = item if isinstance(item, bytes) else str(item).encode("utf-8")
        if binary:
            return {"b64": base64.b64encode(data).decode("ascii")}
        return data.decode("utf-8", errors="replace")

    flat = [encode(item) for item in array.ravel().tolist()]
    if array.ndim == 0:
        return flat[0]
    return np.array(flat, dtype=object).reshape(array.shape).tolist()


def float32_json(value) -> float:
    """The shortest decimal that reads back to the same float32 (or float16) value (0.1, not
    0.10000000149...), as TF Serving writes them."""
    return float(str(value if isinstance(value, np.floating) else np.float32(value)))


def to_json(name: str, array: np.ndarray):
    """One output tensor as JSON: numbers and booleans as they are, strings as text or b64."""
    if array.dtype.kind in "OSU":
        return _json_strings(array, binary=name.endswith("_bytes"))
    if array.dtype in (np.float32, np.float16):
        flat = [float32_json(value) for value in array.ravel()]
        return np.array(flat, dtype=np.float64).reshape(array.shape).tolist()
    return array.tolist()


def format_predict_response(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    """The response body: `predictions` rows for a row request, `outputs` columns otherwise.

    A single output is given without its name (a list, not an object), as TF Serving does.
    """
    if not row_format:
        if len(outputs) == 1:
            (name, array), = outputs.items()
            return {"outputs": to_json(name, array)}
        return {"outputs": {name: to_json(name, array) for name, array in outputs.items()}}
    batch_sizes = {name: (array.shape[0] if array.ndim else None) for name, array in outputs.items()}
    if None in batch_sizes.values() or len(set(batch_sizes.values())) > 1:
        raise _invalid(
            f"The outputs' batch sizes {batch_sizes} differ (or an output is a scalar), so they "
            "cannot be given as rows; send the request in columnar form ('inputs')."
        )
    columns = {name: to_json(name, array) for name, array in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    size = next(iter(batch_sizes.values()))
    return {"predictions": [{name: column[i] for name, column in columns.items()}
                            for i in range(size)]}


def from_json(value, dtype, name: str) -> np.ndarray:
    """Reads an output tensor of a response back into an array (strings become Python str,
    `_bytes` outputs bytes)."""
    if dtype.name != "string":
        return np.asarray(value, dtype=dtype.as_numpy_dtype)
    shape, leaves = _shape_and_leaves(value, f"Output {name!r}")
    decoded = [base64.b64decode(leaf["b64"]) if is_b64(leaf) else leaf for leaf in leaves]
    return np.array(decoded, dtype=object).reshape(shape)


def to_json_input(array) -> object:
    """An input array as a request's JSON value: bytes as `{"b64": ...}`, str as text."""
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        flat = []
        for item in array.ravel().tolist():
            if isinstance(item, bytes):
                flat.append({"b64": base64.b64encode(item).decode("ascii")})
            else:
                flat.append(str(item))
        if array.ndim == 0:
            return flat[0]
        return np.array(flat, dtype=object).reshape(array.shape).tolist()
    return array.tolist()
