"""`seqzoo attention RUN_OR_MODEL "source text"`: draws a translation's attention to a PNG."""

from __future__ import annotations

import argparse
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


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "attention",
        help="draw a translation model's attention matrix for one sentence to a PNG",
        description="Translates SOURCE_TEXT with a trained run or an exported translation model "
        "and draws the attention weights, with the source tokens on the x axis and the "
        "translation's tokens on the y axis.",
    )
    parser.add_argument("model", metavar="RUN_OR_MODEL",
                        help="run directory, or exported model (models/NAME[/VERSION])")
    parser.add_argument("text", metavar="SOURCE_TEXT", help="the sentence to translate")
    parser.add_argument("--out", default="attention.png", metavar="FILE.png",
                        help="PNG file to write (default attention.png)")
    parser.set_defaults(func=_attention)


def _attention(args: argparse.Namespace) -> int:
    from seqzoo.zoo.models.translation.attention_plot import plot_attention

    result = compute_attention(args.model, args.text)
    path = plot_attention(result["source_tokens"], result["target_tokens"], result["attention"],
                          args.out, title=f"{args.text}  \u2192  {result['translation']}")
    print(f"{result['translation']}\nAttention drawn to {path}")
    return 0
