"""A Keras model inside a `tf.Module`, saved with plain `tf.saved_model.save`: the SavedModel that
`tf.saved_model.load` serves and TF Serving's loader cannot (keras-team/keras#20095)."""

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from seqzoo.serving.servable import WARMUP_FILE

X = np.float32([[1.0, -2.0, 0.5]])


class KerasInModule(tf.Module):
    """`serving_default(x: float32 [None, 3]) -> y`, one Dense layer."""

    def __init__(self):
        super().__init__()
        self.model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        self.serve = tf.function(lambda x: {"y": self.model(x)},
                                 input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])

    @property
    def signatures(self):
        return {"serving_default": self.serve}


def save_plainly(module: KerasInModule, path) -> None:
    """Saves `module` as most Keras 3 code does, with one warmup record of `X`."""
    tf.saved_model.save(module, str(path), signatures=module.signatures)
    request = predict_pb2.PredictRequest()
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(X))
    (path / WARMUP_FILE).parent.mkdir()
    with tf.io.TFRecordWriter(str(path / WARMUP_FILE)) as writer:
        writer.write(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)).SerializeToString())
