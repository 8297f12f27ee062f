"""Per-frame labels of one video from trained runs or exported frame-labeling models, for
`seqzoo timeline` (ground truth against predictions, drawn as coloured bars)."""

from __future__ import annotations

import pathlib

import numpy as np


def saved_model_dir(path: pathlib.Path) -> pathlib.Path | None:
    """The SavedModel of a version directory, or the latest version of a model directory."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def _labeler(path: pathlib.Path):
    """`(kind, label)` of an exported model or a run: `kind` is the input it reads ("frames"
    or "features") and `label(values)` gives the labels of a batch of one video `[1, T, ...]`
    through its `serving_default` signature."""
    import tensorflow as tf

    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a directory; give a run directory or a model "
                         "directory (models/NAME or models/NAME/VERSION).")
    saved = saved_model_dir(path)
    if saved is not None:
        function = tf.saved_model.load(str(saved)).signatures["serving_default"]
        inputs = function.structured_input_signature[1]
        kind = next((name for name in ("frames", "features") if name in inputs), None)
        if kind is None or "lengths" not in inputs:
            raise ValueError(f"The model at {str(saved)!r} takes {sorted(inputs)}, not frames or "
                             "features and lengths; is it a frame-labeling model?")
        dtype = inputs[kind].dtype
        return kind, lambda values: function(**{kind: tf.constant(values, dtype),
                                                "lengths": [values.shape[1]]})["labels"]
    if (path / "config.yaml").is_file():
        from seqzoo.training import run_directory

        task, model = run_directory.restore(path)
        if task.name != "frame_labeling":
            raise ValueError(f"{str(path)!r} holds a {task.name!r} run, not a frame_labeling run.")
        module = task.export_module(model)
        dtype = tf.uint8 if task.input_kind == "frames" else tf.float32
        return task.input_kind, lambda values: module.serve(
            tf.constant(values, dtype), tf.constant([values.shape[1]]))["labels"]
    raise ValueError(f"{str(path)!r} is neither a run directory (no config.yaml) nor a model "
                     "directory (no saved_model.pb in it or in a numbered version).")


def held_out_video(run_dir, index: int) -> dict:
    """Video `index` of a run's held-out (validation) split with its ground truth:
    `{"frames" or "features": array [T, ...], "truth": [str]}`."""
    from seqzoo.training import config as run_config
    from seqzoo.training.data.mstcn_files import load_features
    from seqzoo.training.tasks import build_task

    task = build_task(run_config.load(run_dir), run_dir)
    task.prepare()
    videos = task.splits["validation"]
    if not 0 <= index < len(videos):
        raise ValueError(f"--video {index} is out of range: the held-out split of "
                         f"{str(run_dir)!r} has videos 0 to {len(videos) - 1}.")
    if task.input_kind == "frames":
        frames, labels = videos.video(index)
        video = {"frames": frames}
    else:
        video = {"features": load_features(videos[index])}
        labels = videos[index].labels
    return {**video, "truth": [task.class_names[label] for label in labels]}


def read_frames(paths) -> np.ndarray:
    """uint8 frames `[T, H, W, 3]` from image files (JPEG, PNG) and directories of them (their
    images in name order), in the order given; every frame is resized to the first one's size."""
    import tensorflow as tf

    from seqzoo.zoo.image_formats import image_files

    frames = []
    for path in image_files(paths, "--frames"):
        try:
            image = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError:
            raise ValueError(
                f"--frames {str(path)!r} is not a readable JPEG or PNG image.") from None
        if frames and image.shape != frames[0].shape:
            image = tf.cast(tf.round(tf.image.resize(image, frames[0].shape[:2])), tf.uint8)
        frames.append(image.numpy())
    return np.stack(frames)


def label_video(run_or_model, video: dict) -> list[str]:
    """The per-frame labels a run or an exported model gives `video` (`{"frames": uint8
    [T, H, W, 3]}` or `{"features": float [T, D]}`), through its `serving_default` signature."""
    kind, label = _labeler(pathlib.Path(run_or_model))
    if kind not in video:
        raise ValueError(f"{str(run_or_model)!r} labels {kind}, but the video given has "
                         f"{' and '.join(name for name in video if name != 'truth')}.")
    labels = label(np.asarray(video[kind])[None]).numpy()[0]
    return [value.decode("utf-8") for value in labels]
