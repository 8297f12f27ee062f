"""The line naming the recurrent kernels a GPU run trains with. There is no GPU here, so the
decision is tested against the settings Keras's TensorFlow backend checks before it picks cuDNN;
that a GPU run prints the line is not exercised."""

import keras

from seqzoo.training.recurrent_kernels import kernel_report, recurrent_kernels


def _model():
    inputs = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True, name="lstm"),
                                   name="encoder")(inputs)
    x = keras.layers.GRU(4, reset_after=False, return_sequences=True, name="gru_v1")(x)
    x = keras.layers.LSTM(4, recurrent_dropout=0.2, activation="relu", return_sequences=True,
                          name="dropped")(x)
    x = keras.layers.GRU(4, use_cudnn=False, name="plain")(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def test_each_recurrent_layer_gets_the_kernel_keras_picks():
    assert recurrent_kernels(_model()) == {
        "forward_lstm": "cuDNN",
        "backward_lstm": "cuDNN",
        "gru_v1": "generic (reset_after=False)",
        "dropped": "generic (activation=relu, recurrent_dropout=0.2)",
        "plain": "generic (use_cudnn=False)",
    }


def test_the_report_is_one_line_on_a_gpu_and_nothing_without():
    model = _model()
    assert kernel_report(model, gpus=1) == (
        "Recurrent kernels on the GPU: cuDNN for backward_lstm, forward_lstm; generic for "
        "gru_v1 (reset_after=False), dropped (activation=relu, recurrent_dropout=0.2), plain "
        "(use_cudnn=False).")
    assert kernel_report(model, gpus=0) is None
    assert kernel_report(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]), 1) is None
