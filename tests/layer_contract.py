"""The contract every seqzoo layer test runs: shapes, masking, config, .keras and SavedModel.

Usage in a test (tests/ is on sys.path through pyproject's `pythonpath`):

    from layer_contract import run_layer_contract

    outputs = run_layer_contract(
        lambda: BidirectionalEncoder(4), x, mask=mask,
        expected_output_shapes=((2, 5, 8), [(2, 4)] * 4), expected_num_trainable_weights=6,
        tmp_path=tmp_path,
    )
"""

from __future__ import annotations

import json

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(
        d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool)) for d in value
    )


def _flatten_shapes(expected) -> list[tuple]:
    """Flattens a nested structure of shapes in the order `keras.tree.flatten` uses for outputs."""
    if _is_shape(expected):
        return [tuple(expected)]
    if isinstance(expected, dict):
        return [s for key in sorted(expected) for s in _flatten_shapes(expected[key])]
    return [s for item in expected for s in _flatten_shapes(item)]


def _call(layer, inputs, mask, call_kwargs):
    kwargs = dict(call_kwargs)
    if mask is not None:
        kwargs["mask"] = mask
    return layer(inputs, **kwargs)


def _to_numpy(outputs):
    return [np.asarray(keras.ops.convert_to_numpy(o)) for o in keras.tree.flatten(outputs)]


def _assert_all_close(actual, expected, atol, what):
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, expected {len(expected)}"
    for index, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(a, e, atol=atol, rtol=0, err_msg=f"{what}: output {index}")


def _perturb_padding(flat_inputs, mask, rng):
    """Replaces every input value at masked (padded) steps, leaving valid steps untouched."""
    padded = ~np.asarray(mask, bool)
    changed = []
    for array in flat_inputs:
        array = np.array(array, copy=True)
        if array.ndim >= 2 and array.shape[:2] == padded.shape:
            if np.issubdtype(array.dtype, np.floating):
                noise = rng.normal(0.0, 3.0, size=array.shape).astype(array.dtype)
            else:
                noise = rng.integers(1, max(int(array.max()), 1) + 1, size=array.shape)
                noise = noise.astype(array.dtype)
            index = padded.reshape(padded.shape + (1,) * (array.ndim - 2))
            array = np.where(index, noise, array)
        changed.append(array)
    return changed


def _graph_op_types(graph_def) -> set[str]:
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types.update(node.op for node in function.node_def)
    return types


def run_layer_contract(layer_factory, inputs, *, mask=None, call_kwargs=None,
                       expected_output_shapes=None, expected_num_trainable_weights,
                       expected_num_non_trainable_weights=0, tmp_path, atol=1e-5):
    """Runs the shared layer contract and returns the layer's outputs (NumPy, same structure).

    Args:
        layer_factory: zero-argument callable returning a fresh, unbuilt layer.
        inputs: a NumPy array, or a list/dict of arrays, passed as the layer's first argument.
        mask: optional boolean array `[batch, time]` passed as `mask=`; then outputs at valid
            steps (and outputs without a time axis, such as final states) must not change when
            the inputs' values at padded steps change.
        call_kwargs: extra keyword arguments of every call (e.g. `{"training": False}`).
        expected_output_shapes: a shape tuple, or a nested list/tuple/dict of them matching the
            outputs' structure; checked when given.
        expected_num_trainable_weights: how many trainable weights the built layer has.
        expected_num_non_trainable_weights: how many non-trainable weights it has (default 0).
        tmp_path: directory for the `.keras` file and the SavedModel.
        atol: absolute tolerance of every output comparison.

    Checks, in order: output shapes and weight counts; masking; `from_config(get_config())` and a JSON
    serialize/deserialize round trip give equal outputs once weights are copied; a fresh layer
    restored from a `tf.train.Checkpoint` of it (as the training loop saves) gives equal outputs,
    so no weight escapes checkpoint tracking (Keras layers kept in Python lists do); a functional
    model wrapping the layer saves to `.keras` and reloads with equal outputs; a `tf.Module`
    with a traced `tf.function` saves as a SavedModel without CudnnRNN ops (portable to CPU)
    and reloads with equal outputs; and one training step in a `tf.function`, as the training
    loop takes it: every trainable weight gets a finite gradient, and a small SGD step against
    that gradient lowers the loss (a fixed random projection of the outputs).
    """
    call_kwargs = dict(call_kwargs or {})
    rng = np.random.default_rng(0)
    flat_inputs = [np.asarray(x) for x in keras.tree.flatten(inputs)]
    layer = layer_factory()
    outputs = _call(layer, inputs, mask, call_kwargs)
    reference = _to_numpy(outputs)

    if expected_output_shapes is not None:
        expected = _flatten_shapes(expected_output_shapes)
        actual = [tuple(o.shape) for o in reference]
        assert actual == expected, f"output shapes {actual}, expected {expected}"
    weights = {"trainable": (layer.trainable_weights, expected_num_trainable_weights),
               "non-trainable": (layer.non_trainable_weights, expected_num_non_trainable_weights)}
    for kind, (found, count) in weights.items():
        assert len(found) == count, (
            f"{len(found)} {kind} weights {[w.path for w in found]}, expected {count}")

    if mask is not None:
        perturbed = keras.tree.pack_sequence_as(inputs, _perturb_padding(flat_inputs, mask, rng))
        changed = _to_numpy(_call(layer, perturbed, mask, call_kwargs))
        valid = np.asarray(mask, bool)
        for index, (before, after) in enumerate(zip(reference, changed)):
            if before.ndim >= 2 and before.shape[:2] == valid.shape:
                before, after = before[valid], after[valid]
            np.testing.assert_allclose(
                after, before, atol=atol, rtol=0,
                err_msg=f"masking: output {index} depends on padded input values",
            )

    clone = layer.__class__.from_config(layer.get_config())
    _call(clone, inputs, mask, call_kwargs)
    clone.set_weights(layer.get_weights())
    _assert_all_close(_to_numpy(_call(clone, inputs, mask, call_kwargs)), reference, atol,
                      "from_config(get_config())")

    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(layer), f"JSON round trip gave {type(revived).__name__}"
    _call(revived, inputs, mask, call_kwargs)
    revived.set_weights(layer.get_weights())
    _assert_all_close(_to_numpy(_call(revived, inputs, mask, call_kwargs)), reference, atol,
                      "JSON config round trip")

    checkpoint_layer = layer_factory()
    _call(checkpoint_layer, inputs, mask, call_kwargs)
    saved = tf.train.Checkpoint(layer=layer).write(str(tmp_path / "layer_contract_ckpt"))
    tf.train.Checkpoint(layer=checkpoint_layer).read(saved).assert_consumed()
    lost = [mine.path for mine, theirs in zip(checkpoint_layer.weights, layer.weights)
            if not np.array_equal(keras.ops.convert_to_numpy(mine),
                                  keras.ops.convert_to_numpy(theirs))]
    assert not lost, (
        f"tf.train.Checkpoint (used by training/checkpoints.py) does not save weight(s) {lost}: "
        "sublayers kept in a Python list or dict are invisible to it in Keras 3; assign each "
        "sublayer to its own attribute (e.g. setattr(self, f'cell_{i}', cell))."
    )
    _assert_all_close(_to_numpy(_call(checkpoint_layer, inputs, mask, call_kwargs)), reference,
                      atol, "tf.train.Checkpoint write and read (as the training loop does)")

    symbolic = [keras.Input(shape=x.shape[1:], dtype=str(x.dtype)) for x in flat_inputs]
    model_inputs = list(symbolic)
    mask_input = None
    if mask is not None:
        mask_input = keras.Input(shape=np.shape(mask)[1:], dtype="bool")
        model_inputs.append(mask_input)
    model_outputs = keras.tree.flatten(_call(
        layer, keras.tree.pack_sequence_as(inputs, symbolic), mask_input, call_kwargs
    ))
    model = keras.Model(model_inputs, model_outputs)
    feed = flat_inputs + ([np.asarray(mask, bool)] if mask is not None else [])
    _assert_all_close(_to_numpy(model(feed)), reference, atol, "functional model")
    path = tmp_path / "layer_contract.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    _assert_all_close(_to_numpy(reloaded(feed)), reference, atol, ".keras save and reload")

    module = tf.Module()
    module.layer = layer
    specs = [tf.TensorSpec((None,) + x.shape[1:], tf.as_dtype(x.dtype)) for x in feed]

    @tf.function(input_signature=specs)
    def serve(*tensors):
        structured = keras.tree.pack_sequence_as(inputs, list(tensors[:len(flat_inputs)]))
        masked = tensors[len(flat_inputs)] if mask is not None else None
        return keras.tree.flatten(_call(module.layer, structured, masked, call_kwargs))

    module.serve = serve
    export_dir = tmp_path / "layer_contract_savedmodel"
    tf.saved_model.save(module, str(export_dir))
    saved = saved_model_pb2.SavedModel.FromString((export_dir / "saved_model.pb").read_bytes())
    cudnn = sorted(t for t in _graph_op_types(saved.meta_graphs[0].graph_def)
                   if "cudnn" in t.lower())
    assert not cudnn, f"the SavedModel holds non-portable cuDNN ops {cudnn}"
    loaded = tf.saved_model.load(str(export_dir))
    _assert_all_close(_to_numpy(loaded.serve(*feed)), reference, atol,
                      "SavedModel export and reload")

    if checkpoint_layer.trainable_weights:
        # On the copy restored from the checkpoint: callers read the layer's weights afterwards.
        _check_training_step(checkpoint_layer, inputs, mask, call_kwargs, reference, rng)
    return keras.tree.pack_sequence_as(outputs, reference)


def _check_training_step(layer, inputs, mask, call_kwargs, reference, rng):
    """One SGD step on `sum(outputs * fixed random directions)`, traced as the loop traces it."""
    directions = [tf.constant(rng.normal(size=o.shape), tf.float32)
                  for o in reference if np.issubdtype(o.dtype, np.floating)]
    variables = layer.trainable_variables

    @tf.function
    def loss_and_gradients():
        with tf.GradientTape() as tape:
            outputs = [o for o in keras.tree.flatten(_call(layer, inputs, mask, call_kwargs))
                       if o.dtype.is_floating]
            loss = tf.add_n([tf.reduce_sum(tf.cast(o, tf.float32) * d)
                             for o, d in zip(outputs, directions)])
        return loss, tape.gradient(loss, variables)

    loss, gradients = loss_and_gradients()
    missing = [v.path for v, g in zip(variables, gradients) if g is None]
    assert not missing, f"trainable weight(s) {missing} get no gradient from the outputs"
    gradients = [tf.convert_to_tensor(g) for g in gradients]
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients), "non-finite gradients"
    norm = float(tf.linalg.global_norm(gradients))
    assert norm > 0, "the outputs do not depend on the trainable weights"
    # A step of length 1e-3 along the gradient lowers the loss by about 1e-3 * norm.
    keras.optimizers.SGD(learning_rate=1e-3 / norm).apply_gradients(zip(gradients, variables))
    after, _ = loss_and_gradients()
    assert float(after) < float(loss), (
        f"one SGD step did not lower the loss ({float(loss)} -> {float(after)})")
