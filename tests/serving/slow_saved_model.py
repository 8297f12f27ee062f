"""A SavedModel whose one signature takes as long as asked and counts its calls, built without
the zoo: `serving_default(micros: int64 [None]) -> calls`, which sleeps the largest `micros`
(a tf.data sleep, a graph op the session loader runs without Python) and returns how many calls
the version has computed, this one included."""

import tensorflow as tf
from tensorflow.python.data.experimental.ops import testing


class SlowModule(tf.Module):
    def __init__(self):
        super().__init__()
        self.calls = tf.Variable(0, dtype=tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="micros")])
    def wait(self, micros):
        longest = tf.reduce_max(micros)
        slept = tf.data.Dataset.from_tensors(longest).apply(testing.sleep(longest)).reduce(
            tf.constant(0, tf.int64), lambda total, value: total + value)
        with tf.control_dependencies([slept]):
            calls = self.calls.assign_add(1)
        return {"calls": tf.fill(tf.shape(micros), calls)}


def save_slow(path) -> None:
    module = SlowModule()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.wait})
