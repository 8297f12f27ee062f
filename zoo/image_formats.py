"""The image files captioners read, told apart by their first bytes without TensorFlow (so that
clients such as `seqzoo predict --image` check files before sending them)."""

from __future__ import annotations

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
# In-graph decoders run under the name scope DECODING_SCOPE + the input's name: a decoder's own
# error names only its node, and servers keep that node's location to name the input.
DECODING_SCOPE = "decoding_input_"


def is_jpeg_or_png(data: bytes) -> bool:
    """Whether `data` starts as a PNG or a JPEG file does."""
    return data.startswith(PNG_SIGNATURE) or data.startswith(JPEG_SIGNATURE)
