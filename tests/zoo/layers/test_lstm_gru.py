"""The zoo's LSTM and GRU against Keras's own on the same weights: outputs, final states and
every gradient, for every mask pattern and direction, with the standard-op loops and with the
XLA-compiled loops training runs; plus the layer contract, checkpoint compatibility with Keras's
layers and the kernel choice (XLA compiles the whole layer in tests/test_bench.py's quick run of
`bench recurrent`)."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_contract import run_layer_contract

from seqzoo.zoo.layers import GRU, LSTM, BidirectionalEncoder, hoisted_recurrence

ZOO = {"lstm": LSTM, "gru": GRU}
KERAS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
BATCH, TIME, FEATURES, UNITS = 4, 6, 3, 5
MASKS = {
    "none": None,
    # Lengths 6, 3, 1, 0: the usual right padding, including an empty sequence.
    "right": np.arange(TIME)[None, :] < np.array([[6], [3], [1], [0]]),
    # Keras accepts any pattern: holes, left padding.
    "holes": np.array([[1, 0, 1, 1, 0, 1], [0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0],
                       [0, 1, 0, 1, 0, 1]], bool),
}


def _random_weights(layer, seed):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0.0, 0.5, w.shape).astype("float32")
                       for w in layer.get_weights()])


def _pair(cell, **kwargs):
    """The zoo's layer and Keras's, built, with the same random weights."""
    zoo, reference = ZOO[cell](UNITS, **kwargs), KERAS[cell](UNITS, **kwargs)
    for layer in (zoo, reference):
        layer.build((None, None, FEATURES))
    _random_weights(zoo, seed=1)
    reference.set_weights(zoo.get_weights())
    return zoo, reference


def _outputs_and_gradients(layer, x, mask, initial_state, directions, training=None):
    """Outputs, and gradients of a fixed random projection of all of them with respect to
    the inputs, the initial states and every weight."""
    x = tf.constant(x)
    initial_state = [tf.constant(s) for s in initial_state]
    with tf.GradientTape() as tape:
        tape.watch([x, *initial_state])
        outputs = layer(x, mask=mask, initial_state=initial_state or None, training=training)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = tf.add_n([tf.reduce_sum(o * d) for o, d in zip(outputs, directions)])
    gradients = tape.gradient(loss, [x, *initial_state, *layer.trainable_weights])
    return [o.numpy() for o in outputs], [g.numpy() for g in gradients]


def _assert_equal_to_keras(cell, mask_name, go_backwards, training=None):
    """The zoo's layer and Keras's (run without `training`) give the same outputs, states
    and gradients."""
    zoo, reference = _pair(cell, return_sequences=True, return_state=True,
                           go_backwards=go_backwards)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    states = [rng.normal(size=(BATCH, UNITS)).astype("float32")
              for _ in range(2 if cell == "lstm" else 1)]
    directions = [rng.normal(size=(BATCH, TIME, UNITS))] + [
        rng.normal(size=(BATCH, UNITS)) for _ in states]
    directions = [tf.constant(d, tf.float32) for d in directions]
    mask = MASKS[mask_name]
    actual = _outputs_and_gradients(zoo, x, mask, states, directions, training)
    expected = _outputs_and_gradients(reference, x, mask, states, directions)
    for kind, mine, theirs in zip(("output", "gradient"), actual, expected):
        assert len(mine) == len(theirs)
        for index, (a, e) in enumerate(zip(mine, theirs)):
            np.testing.assert_allclose(a, e, atol=1e-5, rtol=0, err_msg=f"{kind} {index}")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_equals_keras_outputs_states_and_gradients(cell, mask_name, go_backwards):
    _assert_equal_to_keras(cell, mask_name, go_backwards)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("training", [None, True])
def test_gradients_equal_keras_when_only_the_output_sequence_is_used(cell, training):
    """No gradient reaches the final states (the usual case), so the backward pass gets none
    for the LSTM's carry states and skips them; the gradients still equal Keras's."""
    zoo, reference = _pair(cell, return_sequences=True)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    direction = tf.constant(rng.normal(size=(BATCH, TIME, UNITS)), tf.float32)
    actual = _outputs_and_gradients(zoo, x, None, [], [direction], training)
    expected = _outputs_and_gradients(reference, x, None, [], [direction])
    for mine, theirs in zip(actual[0] + actual[1], expected[0] + expected[1]):
        np.testing.assert_allclose(mine, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell, mask_name, go_backwards, cores", [("lstm", "holes", True, 3),
                                                               ("gru", "right", False, 1)])
def test_training_runs_xla_compiled_loops_equal_to_keras(cell, mask_name, go_backwards, cores,
                                                         caplog, monkeypatch):
    """On 3 cores, 3 chains of compiled loops over uneven batch slices (2, 1 and 1 examples,
    sequences of different lengths); on 1 core, one chain."""
    monkeypatch.setattr(hoisted_recurrence, "_LOGGED", set())
    monkeypatch.setattr(hoisted_recurrence, "MIN_SLICE", 1)
    monkeypatch.setattr(hoisted_recurrence, "_cores", lambda: cores)
    caplog.set_level(logging.INFO, logger="seqzoo.zoo.layers.hoisted_recurrence")
    _assert_equal_to_keras(cell, mask_name, go_backwards, training=True)
    assert (f"seqzoo {ZOO[cell].__name__} runs the hoisted-projection CPU, XLA-compiled loops "
            "kernel.") in [r.getMessage() for r in caplog.records]
    assert _compiled_loops(ZOO[cell](UNITS), cell) == ["backward"] * cores + ["forward"] * cores


def _compiled_loops(layer, cell):
    """The XLA-compiled functions a train step of `layer` calls, sorted: "forward" and
    "backward" once per chain."""

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            outputs = tf.nest.flatten(layer(x, training=True))
            loss = tf.add_n([tf.reduce_sum(output) for output in outputs])
        return tape.gradient(loss, layer.trainable_weights)

    graph = step.get_concrete_function(tf.zeros([BATCH, TIME, FEATURES])).graph
    return sorted(op.get_attr("f").name.split(f"_{cell}_")[1].split("_")[0]
                  for op in graph.get_operations()
                  if op.type == "PartitionedCall" and op.get_attr("_XlaMustCompile"))


def test_training_on_a_time_axis_of_varying_length_keeps_the_standard_op_loops(caplog,
                                                                              monkeypatch):
    """XLA compiles once per shape, so a step traced for any length does not compile."""
    monkeypatch.setattr(hoisted_recurrence, "_LOGGED", set())
    caplog.set_level(logging.INFO, logger="seqzoo.zoo.layers.hoisted_recurrence")
    layer = LSTM(UNITS)
    step = tf.function(lambda x: layer(x, training=True),
                       input_signature=[tf.TensorSpec([BATCH, None, FEATURES])])
    step(np.zeros((BATCH, TIME, FEATURES), "float32"))
    assert [r.getMessage() for r in caplog.records] == [
        "seqzoo LSTM runs the hoisted-projection CPU kernel."]


def test_bidirectional_levels_run_compiled_slices_equal_to_the_standard_op_loops(monkeypatch):
    """Each direction slices its batch, one chain per thread, at every level of a stack (a
    level above the first once lost its static time axis and ran the standard-op loops); the
    gradients equal those of the standard-op loops."""
    monkeypatch.setattr(hoisted_recurrence, "MIN_SLICE", 1)
    for cores, per_direction in ((1, 1), (2, 2)):
        monkeypatch.setattr(hoisted_recurrence, "_cores", lambda: cores)
        encoder = BidirectionalEncoder(UNITS, cell="lstm", num_layers=2)
        assert _compiled_loops(encoder, "lstm") == (["backward"] * 4 * per_direction
                                                    + ["forward"] * 4 * per_direction), cores
    x = tf.constant(np.random.default_rng(10).normal(size=(BATCH, TIME, FEATURES)), tf.float32)
    mask = tf.constant(MASKS["right"])

    @tf.function
    def gradients(training):
        with tf.GradientTape() as tape:
            outputs, states = encoder(x, mask=mask, training=training)
            loss = tf.reduce_sum(tf.square(outputs)) + tf.add_n([tf.reduce_sum(s) for s in states])
        return tape.gradient(loss, encoder.trainable_weights)

    for compiled, standard in zip(gradients(True), gradients(False)):
        np.testing.assert_allclose(compiled, standard, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_equals_keras_last_output_and_zero_output_for_mask(cell):
    x = np.random.default_rng(3).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    for kwargs in ({}, {"return_sequences": True, "zero_output_for_mask": True},
                   {"zero_output_for_mask": True, "go_backwards": True}):
        zoo, reference = _pair(cell, **kwargs)
        mask = MASKS["holes"]
        np.testing.assert_allclose(zoo(x, mask=mask), reference(x, mask=mask), atol=1e-5,
                                   err_msg=str(kwargs))


def test_bidirectional_train_step_equals_keras():
    """`keras.layers.Bidirectional` over either LSTM: same loss and gradients in a traced
    train step (the function the training loop compiles), on right-padded sequences."""
    x = np.random.default_rng(4).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    mask = tf.constant(MASKS["right"])
    results = []
    for classes in (ZOO, KERAS):
        layer = keras.layers.Bidirectional(classes["lstm"](UNITS, return_sequences=True))
        layer.build((None, None, FEATURES))
        _random_weights(layer, seed=5)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(layer(x, mask=mask) - 0.5))
            return loss, tape.gradient(loss, layer.trainable_weights)

        results.append(step())
    (loss, gradients), (expected_loss, expected_gradients) = results
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    for mine, theirs in zip(gradients, expected_gradients):
        np.testing.assert_allclose(mine, theirs, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_layer_contract(cell, tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    n_states = 2 if cell == "lstm" else 1
    run_layer_contract(
        lambda: ZOO[cell](UNITS, return_sequences=True, return_state=True),
        x, mask=MASKS["right"],
        expected_output_shapes=[(BATCH, TIME, UNITS)] + [(BATCH, UNITS)] * n_states,
        expected_num_trainable_weights=3,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_keras_checkpoints_and_configs_load_into_the_zoo_layer(cell, tmp_path):
    x = np.random.default_rng(7).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    reference = KERAS[cell](UNITS, return_sequences=True, name="rnn")
    reference.build((None, None, FEATURES))
    _random_weights(reference, seed=8)
    path = tf.train.Checkpoint(layer=reference).write(str(tmp_path / "keras"))
    zoo = ZOO[cell].from_config(reference.get_config())
    zoo.build((None, None, FEATURES))
    tf.train.Checkpoint(layer=zoo).read(path).assert_consumed()
    assert [w.path for w in zoo.weights] == [w.path for w in reference.weights]
    assert zoo.get_config() == reference.get_config()
    np.testing.assert_allclose(zoo(x), reference(x), atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_logs_the_kernel_once_and_falls_back_to_keras_for_other_arguments(cell, caplog,
                                                                          monkeypatch):
    monkeypatch.setattr(hoisted_recurrence, "_LOGGED", set())  # as in a fresh process
    x = np.random.default_rng(9).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    caplog.set_level(logging.INFO, logger="seqzoo.zoo.layers.hoisted_recurrence")
    zoo, reference = _pair(cell, activation="relu", return_sequences=True)
    np.testing.assert_allclose(zoo(x), reference(x), atol=1e-5)
    zoo(x)
    name = ZOO[cell].__name__
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count(f"seqzoo {name} runs the Keras generic (activation=relu) "
                          "kernel.") == 1
    _pair(cell)[0](x)
    assert f"seqzoo {name} runs the hoisted-projection CPU kernel." in [
        r.getMessage() for r in caplog.records]


def test_batch_slices_one_per_thread_of_at_least_min_slice_examples(monkeypatch):
    monkeypatch.setattr(hoisted_recurrence, "_cores", lambda: 2)
    minimum = hoisted_recurrence.MIN_SLICE
    assert hoisted_recurrence.batch_slices(2 * minimum) == [minimum, minimum]
    assert hoisted_recurrence.batch_slices(2 * minimum + 1) == [minimum + 1, minimum]
    assert hoisted_recurrence.batch_slices(2 * minimum - 1) == [2 * minimum - 1]
    monkeypatch.setattr(hoisted_recurrence, "_cores", lambda: 1)
    assert hoisted_recurrence.batch_slices(8 * minimum) == [8 * minimum]
