"""Images into a model's input, in graph: encoded bytes or pixels, checked, resized.

The captioner's training data and serving signatures both go through `resize_image`, so a
picture is seen the same way in both; frame labelers decode their encoded frames here too.
Inputs users can get wrong fail with `InvalidArgumentError` (TF Serving's
INVALID_ARGUMENT, HTTP 400) and a message naming the input and what it accepts.
"""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.image_formats import DECODING_SCOPE, JPEG_SIGNATURE, PNG_SIGNATURE


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
        tf.errors.InvalidArgumentError (when run): see `decode_each`.

    Example:
        >>> png = tf.io.encode_png(tf.zeros([10, 20, 3], tf.uint8))
        >>> decode_images(tf.stack([png]), 32).shape
        TensorShape([1, 32, 32, 3])
    """
    return decode_each(images, lambda pixels: resize_image(pixels, image_size),
                       tf.TensorSpec([image_size, image_size, 3], tf.float32), name)


def decode_each(images, fit, fitted_spec, name, positions=None, where="batch positions"):
    """Checks a vector of JPEG or PNG bytes, then decodes each to RGB and passes it to `fit`.

    Args:
        images: string tensor `[n]` of encoded images.
        fit: maps one decoded image, uint8 `[height, width, 3]`, to a tensor of `fitted_spec`.
        fitted_spec: `tf.TensorSpec` of what `fit` returns.
        name: the input's name in error messages.
        positions: maps int64 indices into `images` to what the error reports for them (for
            example `[video, frame]` pairs); by default the indices themselves.
        where: what the reported positions are, for the error message.

    Returns:
        `[n, *fitted_spec.shape]` of `fitted_spec.dtype`.

    Raises:
        tf.errors.InvalidArgumentError (when run), naming the input and the bad positions: an
        empty string, bytes that are neither JPEG nor PNG, or a JPEG or PNG file cut short.
        Damage inside a complete file is found only by the decoder, whose error names its node;
        that node is placed under `DECODING_SCOPE + name` so the message still names the input.
    """
    images = tf.convert_to_tensor(images, tf.string)
    located = positions or (lambda indices: indices)
    empty = tf.equal(tf.strings.length(images), 0)
    images = _checked(images, tf.logical_not(tf.reduce_any(empty)),
                      f"Input {name} holds an empty string (expected the bytes of a JPEG or PNG "
                      f"file) at {where}", located(tf.where(empty)[:, 0]))
    known = tf.logical_or(tf.equal(tf.strings.substr(images, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE),
                          tf.equal(tf.strings.substr(images, 0, len(JPEG_SIGNATURE)),
                                   JPEG_SIGNATURE))
    images = _checked(images, tf.reduce_all(known),
                      f"Input {name} accepts the bytes of JPEG or PNG files (over REST base64 "
                      f"encoded in a b64 object); these {where} hold something else",
                      located(tf.where(tf.logical_not(known))[:, 0]))

    complete = _complete(images)
    images = _checked(images, tf.reduce_all(complete),
                      f"Input {name} holds bytes that begin as a JPEG or PNG file but end before "
                      f"the image does (a truncated or corrupt file?) at {where}",
                      located(tf.where(tf.logical_not(complete))[:, 0]))

    def decode_one(encoded):
        with tf.name_scope(DECODING_SCOPE + name):
            pixels = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return fit(pixels)

    return tf.map_fn(decode_one, images, fn_output_signature=fitted_spec)


def _complete(images):
    """Whether the bytes of each JPEG or PNG file run to the end of its image, so that a file cut
    short (or garbage after the first bytes) is told from one the decoder reads: bool `[batch]`.

    A PNG file must hold its IEND chunk. A JPEG file's marker segments are followed, each by its
    length, from the start of the file to the first start of scan, past the metadata (whose
    EXIF thumbnail has an end of image of its own), and an end-of-image marker must follow."""
    png = tf.equal(tf.strings.substr(images, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE)
    complete = tf.strings.split(images, sep=b"IEND").row_lengths() > 1
    jpegs = tf.where(tf.logical_not(png))[:, 0]
    jpeg_complete = tf.map_fn(_jpeg_complete, tf.gather(images, jpegs),
                              fn_output_signature=tf.bool)
    return tf.tensor_scatter_nd_update(complete, jpegs[:, None], jpeg_complete)


def _jpeg_complete(encoded):
    size = tf.strings.length(encoded, unit="BYTE")

    def reads(position, at_scan, valid):
        return tf.logical_and(valid, tf.logical_not(at_scan))

    def next_segment(position, at_scan, valid):
        header = tf.io.decode_raw(tf.strings.substr(encoded, tf.minimum(position, size), 4),
                                  tf.uint8)
        header = tf.cast(tf.pad(header, [[0, 4 - tf.size(header)]]), tf.int32)
        marker = header[1]
        fill = tf.equal(marker, 0xFF)
        alone = tf.logical_or(tf.logical_and(marker >= 0xD0, marker <= 0xD7),
                              tf.equal(marker, 0x01))
        length = header[2] * 256 + header[3]
        step = tf.where(fill, 1, tf.where(alone, 2, 2 + length))
        valid = tf.logical_and(position + 4 <= size, tf.equal(header[0], 0xFF))
        valid = tf.logical_and(valid, tf.logical_or(tf.logical_or(fill, alone), length >= 2))
        return position + step, tf.equal(marker, 0xDA), valid

    # The first segment follows the start-of-image marker, FF D8.
    position, _, valid = tf.while_loop(reads, next_segment, (tf.constant(2), False, True))
    scan = tf.strings.substr(encoded, tf.minimum(position, size), size)
    return tf.logical_and(valid, tf.size(tf.strings.split(scan, sep=b"\xff\xd9")) > 1)


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
