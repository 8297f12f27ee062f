"""Images into a captioner's input, in graph: encoded bytes or pixels, checked, resized.

Training data and serving signatures both go through `resize_image`, so a picture is seen the
same way in both. Inputs users can get wrong fail with `InvalidArgumentError` (TF Serving's
INVALID_ARGUMENT, HTTP 400) and a message naming the input and what it accepts.
"""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.image_formats import JPEG_SIGNATURE, PNG_SIGNATURE


def resize_image(image, image_size):
    """Pixels `[..., height, width, 3]` (any size, any real dtype) resized to
    `[..., image_size, image_size, 3]` float32 in [0, 255], bilinear with antialiasing (so
    large photos shrink without aliasing; a picture already of that size is unchanged)."""
    image = tf.cast(image, tf.float32)
    return tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)


def _checked(inputs, condition, message, positions):
    """`inputs` once `condition` holds; else an InvalidArgumentError with `message` and the
    failing batch positions. (TF escapes quotes in the message, so messages have none.)"""
    check = tf.debugging.Assert(condition, [message, positions], summarize=20)
    with tf.control_dependencies([check]):
        return tf.identity(inputs)


def decode_images(images, image_size, name="image"):
    """Decodes a batch of JPEG or PNG bytes into `[batch, image_size, image_size, 3]` pixels.

    Grey-scale and RGBA images become RGB; every image is resized with `resize_image`.

    Args:
        images: string tensor `[batch]` of encoded images.
        image_size: side of the square output in pixels.
        name: the input's name in error messages.

    Returns:
        float32 `[batch, image_size, image_size, 3]`, values in [0, 255].

    Raises:
        tf.errors.InvalidArgumentError (when run): an empty string, bytes that are neither
        JPEG nor PNG, or bytes that do not decode, with the positions of the bad elements in
        the batch.

    Example:
        >>> png = tf.io.encode_png(tf.zeros([10, 20, 3], tf.uint8))
        >>> decode_images(tf.stack([png]), 32).shape
        TensorShape([1, 32, 32, 3])
    """
    images = tf.convert_to_tensor(images, tf.string)
    empty = tf.equal(tf.strings.length(images), 0)
    images = _checked(images, tf.logical_not(tf.reduce_any(empty)),
                      f"Input {name} holds an empty string (expected the bytes of a JPEG or PNG "
                      "file) at batch positions", tf.where(empty)[:, 0])
    known = tf.logical_or(tf.equal(tf.strings.substr(images, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE),
                          tf.equal(tf.strings.substr(images, 0, len(JPEG_SIGNATURE)),
                                   JPEG_SIGNATURE))
    images = _checked(images, tf.reduce_all(known),
                      f"Input {name} accepts the bytes of JPEG or PNG files (over REST base64 "
                      "encoded in a b64 object); these batch positions hold something else",
                      tf.where(tf.logical_not(known))[:, 0])

    def decode_one(position, encoded):
        pixels = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return position, resize_image(pixels, image_size)

    # Bytes that start as a JPEG or PNG file may still not decode (a truncated or corrupt file),
    # and a decoder's own error names no input. tf.data drops the images that fail, so those
    # are found by their positions and reported here as the other bad inputs are.
    count = tf.shape(images, out_type=tf.int32)[0]
    decoded = (tf.data.Dataset.from_tensor_slices((tf.range(count), images))
               .map(decode_one).ignore_errors().batch(tf.cast(tf.maximum(count, 1), tf.int64)))
    nothing = (tf.zeros([0], tf.int32), tf.zeros([0, image_size, image_size, 3], tf.float32))
    positions, pixels = decoded.reduce(nothing, _second)
    failed = tf.tensor_scatter_nd_update(tf.ones([count], tf.bool), positions[:, None],
                                         tf.zeros_like(positions, tf.bool))
    return _checked(pixels, tf.logical_not(tf.reduce_any(failed)),
                    f"Input {name} holds bytes that begin as a JPEG or PNG file but do not decode "
                    "(a truncated or corrupt file?) at batch positions", tf.where(failed)[:, 0])


def _second(_, batch):
    return batch


def check_pixels(pixels, image_size, name="pixels"):
    """Resizes already decoded RGB pixels `[batch, height, width, 3]` with `resize_image`
    after checking that every value is finite and in [0, 255].

    Raises:
        tf.errors.InvalidArgumentError (when run): NaN, infinite or out-of-range values, with
        the batch positions holding them.
    """
    pixels = tf.convert_to_tensor(pixels, tf.float32)
    valid = tf.logical_and(tf.math.is_finite(pixels),
                           tf.logical_and(pixels >= 0.0, pixels <= 255.0))
    valid_rows = tf.reduce_all(valid, axis=[1, 2, 3])
    pixels = _checked(pixels, tf.reduce_all(valid_rows),
                      f"Input {name} accepts RGB values in [0, 255]; NaN, infinite or "
                      "out-of-range values at batch positions", tf.where(~valid_rows)[:, 0])
    return resize_image(pixels, image_size)
