"""In-graph image decoding: PNG and JPEG bytes to pixels, resizing, and the errors bad inputs get."""

import numpy as np
import pytest
import tensorflow as tf
from damaged_images import damaged_png

from seqzoo.zoo.image_preprocessing import (
    check_pixels,
    decode_images,
    resize_image,
)

PIXELS = np.random.default_rng(0).integers(0, 256, (24, 24, 3)).astype(np.uint8)


def png(pixels):
    return tf.io.encode_png(pixels).numpy()


def test_png_round_trip_is_exact_and_other_sizes_and_channels_are_resized():
    grey = np.full((40, 10, 1), 77, np.uint8)
    rgba = np.concatenate([np.full((8, 8, 3), 200, np.uint8), np.full((8, 8, 1), 255, np.uint8)],
                          axis=-1)
    jpeg = tf.io.encode_jpeg(np.full((30, 50, 3), [10, 120, 250], np.uint8), quality=95).numpy()
    images = decode_images(tf.constant([png(PIXELS), png(grey), png(rgba), jpeg]), 24).numpy()
    assert images.shape == (4, 24, 24, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(images[0], PIXELS)
    # A flat colour stays that colour at any size: grey becomes three equal channels.
    np.testing.assert_allclose(images[1], 77.0, atol=1e-3)
    np.testing.assert_allclose(images[2], 200.0, atol=1e-3)
    np.testing.assert_allclose(images[3].reshape(-1, 3).mean(0), [10, 120, 250], atol=3)


def test_resizing_shrinks_with_antialiasing():
    # One-pixel stripes shrunk by 3: plain bilinear sampling lands on pixel centres and sees
    # only black or white (aliasing); the antialiased resize sees the average grey.
    stripes = np.zeros((33, 33, 3), np.float32)
    stripes[:, ::2] = 255.0
    aliased = tf.image.resize(stripes, [11, 11], method="bilinear").numpy()
    assert set(np.unique(aliased[:, 1:-1])) == {0.0, 255.0}
    small = resize_image(stripes, 11).numpy()
    assert np.all(np.abs(small[:, 1:-1] - 127.5) < 45.0), small[0, :, 0]


@pytest.mark.parametrize("batch, message", [
    ([b""], r"Input image holds an empty string .* at batch positions\] \[0\]"),
    ([png(PIXELS), b"GIF89a not a png"], r"Input image accepts the bytes of JPEG or PNG .* \[1\]"),
    ([b"hello", png(PIXELS), b"\x00\x01"], r"these batch positions hold something else\] \[0 2\]"),
    # They begin as PNG and JPEG files do, but are cut short or garbage after that.
    ([png(PIXELS), png(PIXELS)[:40], png(PIXELS), b"\xff\xd8\xff" + b"x" * 30],
     r"Input image holds bytes that begin as a JPEG or PNG file but end before the image .* \[1 3\]"),
    # Complete, but damaged inside: only the decoder finds out, in a node named after the input.
    ([png(PIXELS), damaged_png(png(PIXELS))], r"Invalid PNG data(.|\n)*decoding_input_image/"),
])
def test_bad_bytes_fail_with_a_message_naming_the_input(batch, message):
    function = tf.function(lambda images: decode_images(images, 24),
                           input_signature=[tf.TensorSpec([None], tf.string)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        function(tf.constant(batch))


def test_pixels_are_checked_then_resized():
    pixels = np.stack([PIXELS, PIXELS]).astype(np.float32)
    np.testing.assert_array_equal(check_pixels(pixels, 24), pixels)
    assert check_pixels(np.zeros((1, 7, 9, 3), np.float32), 24).shape == (1, 24, 24, 3)
    function = tf.function(lambda x: check_pixels(x, 24),
                           input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    bad = pixels.copy()
    bad[1, 3, 3, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Input pixels accepts RGB values in \[0, 255\].*\] \[1\]"):
        function(bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0\]"):
        function(np.full((1, 4, 4, 3), 256.0, np.float32))
