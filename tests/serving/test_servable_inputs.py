"""The servable's input checks, made in NumPy's terms at every request, against TensorFlow's own
TensorShape and DType rules."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from seqzoo.serving.servable import _accepted, _checked_array
from seqzoo.serving.serving_error import ServingError

SHAPES = [None, [], [None], [3], [None, 3], [2, None], [None, None, 4]]
ARRAYS = [np.zeros(shape, np.float32) for shape in [(), (3,), (5,), (2, 3), (5, 3), (2, 7),
                                                     (1, 2, 4), (1, 2, 5)]]


@pytest.mark.parametrize("shape, array", list(itertools.product(SHAPES, ARRAYS)),
                         ids=lambda value: str(getattr(value, "shape", value)))
def test_a_shape_is_accepted_exactly_when_tensorflow_calls_it_compatible(shape, array):
    spec = tf.TensorSpec(shape, tf.float32)
    compatible = spec.shape.is_compatible_with(array.shape)
    try:
        _checked_array("x", array, spec, *_accepted(spec))
        accepted = True
    except ServingError as err:
        assert f"has shape {list(array.shape)}" in err.message
        accepted = False
    assert accepted == compatible


@pytest.mark.parametrize("dtype, array, ok", [
    (tf.float32, np.zeros(2, np.float32), True),
    (tf.float32, np.zeros(2, np.float64), False),
    (tf.int64, np.zeros(2, np.int32), False),
    (tf.bool, np.zeros(2, bool), True),
    (tf.bfloat16, np.zeros(2, tf.bfloat16.as_numpy_dtype), True),
    (tf.string, np.array([b"a"], dtype=object), True),
    (tf.string, np.array(["\u00e9"]), True),
    (tf.string, np.zeros(2, np.float32), False),
])
def test_a_dtype_is_accepted_as_tensorflow_feeds_it(dtype, array, ok):
    spec = tf.TensorSpec([None], dtype)
    if not ok:
        with pytest.raises(ServingError, match=f"expects {dtype.name} values; received "
                                               f"{array.dtype.name}"):
            _checked_array("x", array, spec, *_accepted(spec))
        return
    fed = _checked_array("x", array, spec, *_accepted(spec))
    if dtype == tf.string:
        assert fed.dtype == object and fed.tolist() == [item.encode() if isinstance(item, str)
                                                        else item for item in array.tolist()]
