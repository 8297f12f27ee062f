"""A translation's attention weights for one sentence, from a trained run or an exported model."""

from __future__ import annotations

import pathlib


def _saved_model_dir(path: pathlib.Path) -> pathlib.Path | None:
    """The SavedModel of a version directory, or the latest version of a model directory."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def compute_attention(run_or_model, text: str) -> dict:
    """The `attention` signature's outputs for one sentence, as Python values.

    Args:
        run_or_model: a translation run directory (holding `config.yaml` and checkpoints), an
            exported model directory (`models/NAME`, latest version) or a version directory
            (`models/NAME/VERSION`).
        text: the source sentence.

    Returns:
        `{"translation": str, "source_tokens": [str], "target_tokens": [str],
        "attention": ndarray [target, source]}`.
    """
    import tensorflow as tf

    path = pathlib.Path(run_or_model)
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a directory; give a run directory or a model "
                         "directory (models/NAME or models/NAME/VERSION).")
    batch = tf.constant([text], tf.string)
    saved = _saved_model_dir(path)
    if saved is not None:
        loaded = tf.saved_model.load(str(saved))
        if "attention" not in loaded.signatures:
            raise ValueError(f"The model at {str(saved)!r} has no 'attention' signature "
                             f"(it has {sorted(loaded.signatures)}); is it a translation model?")
        outputs = loaded.signatures["attention"](text=batch)
    elif (path / "config.yaml").is_file():
        from seqzoo.training import run_directory

        task, model = run_directory.restore(path)
        if task.name != "translation":
            raise ValueError(f"{str(path)!r} holds a {task.name!r} run, not a translation run.")
        outputs = task.export_module(model).attention(batch)
    else:
        raise ValueError(f"{str(path)!r} is neither a run directory (no config.yaml) nor a model "
                         "directory (no saved_model.pb in it or in a numbered version).")

    def strings(tensor):
        return [t.decode("utf-8") for t in tensor.numpy()[0]]

    return {
        "translation": outputs["translation"].numpy()[0].decode("utf-8"),
        "source_tokens": strings(outputs["source_tokens"]),
        "target_tokens": strings(outputs["target_tokens"]),
        "attention": outputs["attention"].numpy()[0],
    }
