"""`seqzoo predict NAME --frames ...`: one video of image files sent to a frame-labeling model's
`encoded` signature, and the segments of its answer. Without TensorFlow: the files' bytes go
as they are (base64 over REST), the model decodes them in its graph."""

from __future__ import annotations

import itertools

from seqzoo.zoo.image_formats import image_files

ENCODED_SIGNATURE = "encoded"


def video_inputs(paths) -> dict:
    """The `encoded` signature's inputs for one video of the frames in `paths`: `encoded_frames`
    (the files' bytes, `[1, time]`) and `lengths` (`[1]`). Files that are not PNG or JPEG are
    named, all of them, before anything is sent."""
    import numpy as np

    frames = [path.read_bytes() for path in image_files(paths, "--frames")]
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
