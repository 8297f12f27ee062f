"""Convolutional image encoder that yields a grid of region features for visual attention."""

from __future__ import annotations

import keras
from keras import ops

from seqzoo.zoo._checks import check_one_of, check_positive_int

# Backbone name -> (keras.applications constructor, module holding its preprocess_input).
APPLICATIONS = {
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
    "mobilenet_v3_small": ("MobileNetV3Small", "mobilenet_v3"),
    "resnet50": ("ResNet50", "resnet"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet"),
}
BACKBONES = ("cnn",) + tuple(APPLICATIONS)


@keras.saving.register_keras_serializable(package="seqzoo")
class ImageEncoder(keras.layers.Layer):
    """Reads an image into a grid of region features, the memory a captioner attends over.

    A convolutional backbone maps the image to a feature map `[grid_h, grid_w, channels]`; the
    (row, column) coordinates of every cell, scaled to [-1, 1], are appended to its features
    so that the decoder knows where each region is, and a dense layer with ReLU projects each
    cell to `feature_dim`. The result is the sequence of `grid_h * grid_w` regions in reading
    order, as in Show, Attend and Tell.

    The default backbone `"cnn"` is small and trained from scratch: per entry of `filters`, a
    3x3 convolution with stride 2 and ReLU. The others are `keras.applications`
    networks without their classifier, built with random weights (`backbone_weights=None`) or
    loaded from a weights file the user supplies (nothing is downloaded at run time), and
    fine-tuned (`trainable_backbone=True`) or frozen. Frozen backbones always run in inference
    mode (batch normalization keeps its statistics).

    Args:
        image_size: positive int, side of the square input images in pixels.
        backbone: `"cnn"` (default), `"mobilenet_v2"`, `"mobilenet_v3_small"`, `"resnet50"` or
            `"efficientnet_b0"`.
        filters: tuple of positive ints, channels of each block of `"cnn"`; each halves the
            grid. Defaults to `(32, 64, 64)`.
        feature_dim: positive int, size of each region feature. Defaults to 128.
        backbone_weights: None (random initialization) or the path of a weights file of the
            `keras.applications` backbone without its top (e.g. a `*_no_top.h5` file).
        trainable_backbone: bool, whether the backbone's weights are trained. Defaults to True.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float images `[batch, image_size, image_size, 3]`, RGB values in [0, 255].
        training: Python bool, passed to a trainable backbone.

    Returns:
        Region features `[batch, grid_h * grid_w, feature_dim]`.

    Example:
        >>> encoder = ImageEncoder(32, filters=(8, 16), feature_dim=12)
        >>> encoder(np.zeros((2, 32, 32, 3), "float32")).shape, encoder.grid_shape
        ((2, 64, 12), (8, 8))
    """

    def __init__(self, image_size, backbone="cnn", filters=(32, 64, 64), feature_dim=128,
                 backbone_weights=None, trainable_backbone=True, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("image_size", image_size)
        check_one_of("backbone", backbone, BACKBONES)
        filters = tuple(filters)
        if not filters:
            raise ValueError("`filters` must hold at least one positive integer. Received: "
                             "filters=()")
        for value in filters:
            check_positive_int("filters", value)
        check_positive_int("feature_dim", feature_dim)
        if backbone_weights == "imagenet":
            raise ValueError(
                "Nothing is downloaded at run time: give backbone_weights as the path of a "
                "weights file (e.g. a copy of Keras' *_no_top.h5 ImageNet weights), or None for "
                "random weights. Received: backbone_weights='imagenet'"
            )
        if backbone_weights is not None and backbone == "cnn":
            raise ValueError("backbone_weights loads a keras.applications backbone; the 'cnn' "
                             f"backbone starts from random weights. Received: "
                             f"backbone_weights={backbone_weights!r}")
        self.image_size = image_size
        self.backbone = backbone
        self.filters = filters
        self.feature_dim = feature_dim
        self.backbone_weights = backbone_weights
        self.trainable_backbone = bool(trainable_backbone)

        if backbone == "cnn":
            # Strided convolutions rather than pooling: as accurate here, and several times
            # faster to train on CPU, where max-pooling's gradient is slow.
            self.features = keras.Sequential(
                [keras.layers.Conv2D(size, 3, strides=2, padding="same", activation="relu",
                                     dtype=self.dtype_policy, name=f"conv_{index}")
                 for index, size in enumerate(filters)], name="cnn")
            self._preprocess = None
        else:
            constructor, module = APPLICATIONS[backbone]
            self.features = getattr(keras.applications, constructor)(
                include_top=False, weights=backbone_weights,
                input_shape=(image_size, image_size, 3))
            self._preprocess = getattr(keras.applications, module).preprocess_input
        self.features.trainable = self.trainable_backbone
        self.projection = keras.layers.Dense(feature_dim, activation="relu",
                                             dtype=self.dtype_policy, name="projection")
        shape = self.features.compute_output_shape((None, image_size, image_size, 3))
        self.grid_shape = (int(shape[1]), int(shape[2]))
        self._channels = int(shape[3])

    def build(self, input_shape=None):
        input_shape = (None, self.image_size, self.image_size, 3)
        if not self.features.built:
            self.features.build(input_shape)
        self.projection.build((None, None, self._channels + 2))
        self.built = True

    def coordinates(self):
        """`[grid_h * grid_w, 2]` (row, column) of every region in reading order, in [-1, 1]."""
        rows, columns = self.grid_shape
        row = ops.repeat(ops.linspace(-1.0, 1.0, rows), columns)
        column = ops.tile(ops.linspace(-1.0, 1.0, columns), [rows])
        return ops.cast(ops.stack([row, column], axis=-1), self.compute_dtype)

    def call(self, inputs, training=None):
        images = ops.cast(inputs, self.compute_dtype)
        if self._preprocess is None:
            images = images / 255.0
        else:
            images = self._preprocess(images)
        grid = self.features(images, training=training if self.trainable_backbone else False)
        batch = ops.shape(grid)[0]
        regions = ops.reshape(grid, (batch, -1, self._channels))
        where = ops.broadcast_to(self.coordinates()[None], (batch, ops.shape(regions)[1], 2))
        return self.projection(ops.concatenate([regions, where], axis=-1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.grid_shape[0] * self.grid_shape[1], self.feature_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "image_size": self.image_size,
            "backbone": self.backbone,
            "filters": list(self.filters),
            "feature_dim": self.feature_dim,
            "backbone_weights": self.backbone_weights,
            "trainable_backbone": self.trainable_backbone,
        })
        return config
