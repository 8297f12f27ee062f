"""The line naming the kernel each recurrent layer trains with. There is no GPU here, so the GPU
decision is tested against the settings Keras's TensorFlow backend checks before it picks cuDNN;
the CPU line is also checked on `seqzoo train`'s output (test_run_directory.py)."""

import keras

from seqzoo.training.recurrent_kernels import kernel_report, recurrent_kernels
from seqzoo.zoo.layers import GRU, LSTM
from seqzoo.zoo.layers.elman_cell import ElmanCell


def _model():
    inputs = keras.Input((5, 3))
    x = keras.layers.Bidirectional(LSTM(4, return_sequences=True, name="lstm"),
                                   name="encoder")(inputs)
    x = keras.layers.GRU(4, return_sequences=True, name="keras_gru")(x)
    x = GRU(4, reset_after=False, return_sequences=True, name="gru_v1")(x)
    x = LSTM(4, recurrent_dropout=0.2, activation="relu", return_sequences=True,
             name="dropped")(x)
    x = GRU(4, use_cudnn=False, return_sequences=True, name="plain")(x)
    x = keras.layers.RNN(ElmanCell(4), name="elman")(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def test_each_recurrent_layer_gets_the_kernel_it_trains_with():
    model = _model()
    assert recurrent_kernels(model, gpus=1) == {
        "forward_lstm": "cuDNN",
        "backward_lstm": "cuDNN",
        "keras_gru": "cuDNN",
        "gru_v1": "Keras generic (reset_after=False)",
        "dropped": "Keras generic (activation=relu, recurrent_dropout=0.2)",
        "plain": "hoisted",  # the zoo's kernel still runs where cuDNN is refused
        "elman": "Keras generic (ElmanCell)",
    }
    assert recurrent_kernels(model, gpus=0) == {
        "forward_lstm": "hoisted",
        "backward_lstm": "hoisted",
        "keras_gru": "Keras generic (keras.layers.GRU)",
        "gru_v1": "Keras generic (reset_after=False)",
        "dropped": "Keras generic (activation=relu, recurrent_dropout=0.2)",
        "plain": "hoisted",
        "elman": "Keras generic (ElmanCell)",
    }


def test_the_report_is_one_line_grouped_by_kernel_and_nothing_without_recurrent_layers():
    model = _model()
    assert kernel_report(model, gpus=0) == (
        "Recurrent kernels on the CPU: hoisted for backward_lstm, forward_lstm, plain; Keras "
        "generic for keras_gru (keras.layers.GRU), gru_v1 (reset_after=False), dropped "
        "(activation=relu, recurrent_dropout=0.2), elman (ElmanCell).")
    assert kernel_report(model, gpus=2).startswith(
        "Recurrent kernels on 2 GPUs: cuDNN for backward_lstm, forward_lstm, keras_gru; Keras "
        "generic for gru_v1 (reset_after=False), ")
    assert kernel_report(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]), 1) is None


def _traced(model, shape, reported_by):
    """What the recurrent layers of `model` report while a train step on inputs of `shape`
    traces (in a fresh record of what was logged: the layers log each kernel once per
    process)."""
    import tensorflow as tf

    from seqzoo.training.recurrent_kernels import reported_kernels
    from seqzoo.zoo.layers import hoisted_recurrence

    reported_by.setattr(hoisted_recurrence, "_LOGGED", set())
    with reported_kernels() as reported:
        tf.function(lambda x: model(x, training=True)).get_concrete_function(
            tf.TensorSpec(shape, tf.float32))
    return reported


def test_the_report_names_the_hoisted_variant_the_layers_trace(monkeypatch):
    # Training on batches of a static shape runs the hoisted loops XLA-compiled (the static time
    # axis passes through the layers below "plain"); a time axis of varying length keeps the
    # standard-op loops everywhere. The words are the layers' own.
    model = _model()
    static = _traced(model, (2, 5, 3), monkeypatch)
    assert static["LSTM"] == {"hoisted-projection CPU, XLA-compiled loops",
                              "Keras generic (activation=relu, recurrent_dropout=0.2)"}
    generic = ("Keras generic for keras_gru (keras.layers.GRU), gru_v1 (reset_after=False), "
               "dropped (activation=relu, recurrent_dropout=0.2), elman (ElmanCell)")
    assert kernel_report(model, gpus=0, reported=static) == (
        "Recurrent kernels on the CPU: hoisted-projection CPU, XLA-compiled loops for "
        f"backward_lstm, forward_lstm, plain; {generic}.")
    varying = _traced(model, (2, None, 3), monkeypatch)
    assert kernel_report(model, gpus=0, reported=varying) == (
        "Recurrent kernels on the CPU: hoisted-projection CPU for backward_lstm, forward_lstm, "
        f"plain; {generic}.")
    # Nothing logged by the layers (already logged in this process): the kernel's family name.
    assert recurrent_kernels(model, gpus=0, reported={})["plain"] == "hoisted"
