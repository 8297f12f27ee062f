"""`seqzoo predict NAME --frames ...`: one video of image files sent to a frame-labeling model's
`encoded` signature, and the segments of its answer. Without TensorFlow: the files' bytes go
as they are (base64 over REST), the model decodes them in its graph."""

from __future__ import annotations

import itertools
import pathlib

from seqzoo.zoo.image_formats import IMAGE_SUFFIXES, is_jpeg_or_png

ENCODED_SIGNATURE = "encoded"


def frame_files(paths) -> list[pathlib.Path]:
    """The image files of `--frames`: files as given, directories as their .png/.jpg/.jpeg
    files in name order (frame_0001.png, frame_0002.png, ...)."""
    files = []
    for path in map(pathlib.Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"--frames {str(path)!r} is neither an image file nor a directory.")
    if not files:
        raise ValueError(f"--frames found no image ({', '.join(IMAGE_SUFFIXES)}) in "
                         f"{', '.join(map(str, paths))}.")
    return files


def video_inputs(paths) -> dict:
    """The `encoded` signature's inputs for one video of the frames in `paths`: `encoded_frames`
    (the files' bytes, `[1, time]`) and `lengths` (`[1]`). Files that are not PNG or JPEG are
    named, all of them, before anything is sent."""
    import numpy as np

    files = frame_files(paths)
    frames = [path.read_bytes() for path in files]
    bad = [str(path) for path, data in zip(files, frames) if not is_jpeg_or_png(data)]
    if bad:
        raise ValueError(f"--frames: not a PNG or JPEG image: {', '.join(bad)}.")
    encoded = np.empty((1, len(frames)), dtype=object)
    encoded[0, :] = frames
    return {"encoded_frames": encoded, "lengths": np.array([len(frames)], np.int32)}


def segment_lines(labels) -> list[str]:
    """The segments (maximal runs of one label) of per-frame `labels` as `start end label`
    lines, frames counted from 0 and `end` inclusive; empty labels (padding) are left out."""
    lines, start = [], 0
    for label, run in itertools.groupby(labels):
        length = len(list(run))
        if label:
            lines.append(f"{start:>6} {start + length - 1:>6}  {label}")
        start += length
    return lines


def format_segments(outputs: dict) -> str:
    """The printout of a frame-labeling answer: each video's segments under a header."""
    import numpy as np

    labels = np.asarray(outputs["labels"])
    if labels.ndim != 2:
        raise ValueError(f"The model answered labels of shape {list(labels.shape)}, not one "
                         "label per frame [batch, time]; is it a frame-labeling model?")
    lines = []
    for index, row in enumerate(labels):
        row = [value.decode("utf-8") if isinstance(value, bytes) else str(value)
               for value in row]
        if len(labels) > 1:
            lines.append(f"video {index}")
        lines.append(f"{'start':>6} {'end':>6}  label")
        lines.extend(segment_lines(row))
    return "\n".join(lines)
