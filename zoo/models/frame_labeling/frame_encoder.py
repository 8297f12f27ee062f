"""A small CNN applied to every frame of a video."""

from __future__ import annotations

import keras
from keras import ops

from seqzoo.zoo._checks import check_positive_int


@keras.saving.register_keras_serializable(package="seqzoo")
class FrameEncoder(keras.layers.Layer):
    """Encodes each frame of a video into a vector with a small convolutional network.

    Every frame goes through the same stack: for each entry of `filters`, a 3x3 convolution
    with stride 2 and ReLU; then the feature map is flattened and a `Dense(output_dim, relu)`
    layer gives the frame's vector. Flattening, unlike global pooling, keeps where things are in
    the frame, which motion needs. Integer frames (`uint8`, 0 to 255) are scaled to [0, 1];
    float frames are used as they are.

    Args:
        frame_size: `(height, width)` of the frames, positive ints; fixed because the dense
            layer reads the flattened feature map.
        filters: tuple of positive ints, the channels of each convolution. Defaults to
            `(16, 32)`.
        output_dim: positive int, size of each frame's vector. Defaults to 64.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: tensor `[batch, time, height, width, channels]`.
        mask: optional boolean tensor `[batch, time]`; frames are encoded independently, so the
            mask is only passed on.

    Returns:
        float tensor `[batch, time, output_dim]`.

    Example:

    >>> encoder = FrameEncoder((24, 24), filters=(8, 16), output_dim=32)
    >>> frames = np.zeros((2, 5, 24, 24, 3), "uint8")
    >>> encoder(frames).shape
    TensorShape([2, 5, 32])
    """

    def __init__(self, frame_size, filters=(16, 32), output_dim=64, **kwargs):
        super().__init__(**kwargs)
        frame_size = tuple(frame_size)
        filters = tuple(filters)
        if len(frame_size) != 2 or not filters:
            raise ValueError(
                "`frame_size` must be (height, width) and `filters` must not be empty. "
                f"Received: frame_size={frame_size}, filters={filters}"
            )
        for index, value in enumerate(frame_size):
            check_positive_int(f"frame_size[{index}]", value)
        for index, value in enumerate(filters):
            check_positive_int(f"filters[{index}]", value)
        check_positive_int("output_dim", output_dim)
        self.frame_size = frame_size
        self.filters = filters
        self.output_dim = output_dim
        self.supports_masking = True

        # One attribute per sublayer: tf.train.Checkpoint does not track layers kept in a list.
        for index, channels in enumerate(filters):
            setattr(self, f"conv{index}", keras.layers.Conv2D(
                channels, 3, strides=2, padding="same", activation="relu",
                dtype=self.dtype_policy, name=f"conv{index}"))
        self.flatten = keras.layers.Flatten(dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(output_dim, activation="relu", dtype=self.dtype_policy,
                                        name="dense")

    @property
    def convolutions(self):
        return [getattr(self, f"conv{index}") for index in range(len(self.filters))]

    def build(self, input_shape):
        shape = (None, *self.frame_size, input_shape[-1])
        for conv in self.convolutions:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.dense.build((None, shape[1] * shape[2] * shape[3]))

    def call(self, inputs, mask=None):
        if "int" in str(inputs.dtype):
            inputs = ops.cast(inputs, self.compute_dtype) / 255.0
        else:
            inputs = ops.cast(inputs, self.compute_dtype)
        shape = ops.shape(inputs)
        frames = ops.reshape(inputs, (-1, *self.frame_size, inputs.shape[-1]))
        for conv in self.convolutions:
            frames = conv(frames)
        vectors = self.dense(self.flatten(frames))
        return ops.reshape(vectors, (shape[0], shape[1], self.output_dim))

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"frame_size": list(self.frame_size), "filters": list(self.filters),
                       "output_dim": self.output_dim})
        return config
