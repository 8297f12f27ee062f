"""The attention weights of one translation or one caption, from a trained run or an exported
model: what `seqzoo attention` draws."""

from __future__ import annotations

import pathlib

# The attention signature's input -> the task whose export has it.
ATTENTION_TASKS = {"text": "translation", "image": "captioning"}


def _saved_model_dir(path: pathlib.Path) -> pathlib.Path | None:
    """The SavedModel of a version directory, or the latest version of a model directory."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def _attention_signature(path: pathlib.Path):
    """`(task name, function)`: the `attention` signature of the model at `path`, called on a
    batch of one input (a sentence, or an image file's bytes)."""
    saved = _saved_model_dir(path)
    if saved is not None:
        import tensorflow as tf

        loaded = tf.saved_model.load(str(saved))
        signature = loaded.signatures.get("attention")
        input_names = list(signature.structured_input_signature[1]) if signature else []
        if len(input_names) != 1 or input_names[0] not in ATTENTION_TASKS:
            raise ValueError(f"The model at {str(saved)!r} has no 'attention' signature of a "
                             f"translation or captioning model (its signatures: "
                             f"{sorted(loaded.signatures)}).")
        (input_name,) = input_names
        return ATTENTION_TASKS[input_name], lambda batch: signature(**{input_name: batch})
    if (path / "config.yaml").is_file():
        from seqzoo.training import run_directory

        task, model = run_directory.restore(path)
        if task.name not in ATTENTION_TASKS.values():
            raise ValueError(f"{str(path)!r} holds a {task.name!r} run, not a translation or "
                             "captioning run.")
        return task.name, task.export_module(model).attention
    raise ValueError(f"{str(path)!r} is neither a run directory (no config.yaml) nor a model "
                     "directory (no saved_model.pb in it or in a numbered version).")


def _image_bytes(source: str) -> bytes:
    from seqzoo.zoo.image_formats import is_jpeg_or_png

    path = pathlib.Path(source)
    if not path.is_file():
        raise ValueError(f"A captioning model draws its attention over an image: give the path "
                         f"of a JPEG or PNG file. Received: {source!r}")
    data = path.read_bytes()
    if not is_jpeg_or_png(data):
        raise ValueError(f"{source!r} is not a JPEG or PNG file.")
    return data


def compute_attention(run_or_model, source: str) -> dict:
    """The `attention` signature's outputs for one sentence or one image, as Python values.

    Args:
        run_or_model: a translation or captioning run directory (holding `config.yaml` and
            checkpoints), an exported model directory (`models/NAME`, latest version) or a
            version directory (`models/NAME/VERSION`).
        source: for translation, the source sentence; for captioning, the path of a JPEG or
            PNG file.

    Returns:
        For translation, `{"task": "translation", "translation": str, "source_tokens": [str],
        "target_tokens": [str], "attention": ndarray [target, source]}`; for captioning,
        `{"task": "captioning", "caption": str, "tokens": [str], "attention": ndarray
        [tokens, grid_h, grid_w], "image": uint8 ndarray [height, width, 3]}` (the file's
        pixels, at its own size).
    """
    import tensorflow as tf

    path = pathlib.Path(run_or_model)
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a directory; give a run directory or a model "
                         "directory (models/NAME or models/NAME/VERSION).")
    task, attention = _attention_signature(path)

    def strings(tensor):
        return [t.decode("utf-8") for t in tensor.numpy()[0]]

    if task == "translation":
        outputs = attention(tf.constant([source], tf.string))
        return {
            "task": task,
            "translation": outputs["translation"].numpy()[0].decode("utf-8"),
            "source_tokens": strings(outputs["source_tokens"]),
            "target_tokens": strings(outputs["target_tokens"]),
            "attention": outputs["attention"].numpy()[0],
        }
    data = _image_bytes(source)
    outputs = attention(tf.constant([data], tf.string))
    return {
        "task": task,
        "caption": outputs["caption"].numpy()[0].decode("utf-8"),
        "tokens": strings(outputs["tokens"]),
        "attention": outputs["attention"].numpy()[0],
        "image": tf.io.decode_image(data, channels=3, expand_animations=False).numpy(),
    }
