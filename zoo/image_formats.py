"""The image files captioners read, told apart by their first bytes without TensorFlow (so that
clients such as `seqzoo predict --image` check files before sending them)."""

from __future__ import annotations

import pathlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
# In-graph decoders run under the name scope DECODING_SCOPE + the input's name: a decoder's own
# error names only its node, and servers keep that node's location to name the input.
DECODING_SCOPE = "decoding_input_"


def is_jpeg_or_png(data: bytes) -> bool:
    """Whether `data` starts as a PNG or a JPEG file does."""
    return data.startswith(PNG_SIGNATURE) or data.startswith(JPEG_SIGNATURE)


def image_files(paths, option: str) -> list[pathlib.Path]:
    """The image files a command-line `option` (`--image`, `--frames`) names: files as given,
    directories as their JPEG and PNG files (by suffix) in name order. Every file is checked to
    start as a JPEG or PNG file does, so that a bad one is named, with all the others, before
    anything is sent."""
    files = []
    for given in map(str, paths):
        path = pathlib.Path(given)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{option} {given}: the directory holds no image file (accepted: "
                                 f"{', '.join(IMAGE_SUFFIXES)}).")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{option} {given}: no such file or directory; give a JPEG or PNG "
                             "file, or a directory of them.")
    bad = [str(path) for path in files if not is_jpeg_or_png(_head(path))]
    if bad:
        raise ValueError(f"{option} takes JPEG and PNG files; these are neither: {', '.join(bad)}")
    return files


def _head(path: pathlib.Path) -> bytes:
    with path.open("rb") as file:
        return file.read(len(PNG_SIGNATURE))
