"""`seqzoo attention RUN_OR_MODEL SOURCE`: draws a translation's or a caption's attention to a
PNG."""

from __future__ import annotations

import argparse
import pathlib


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "attention",
        help="draw a translation's or a caption's attention weights to a PNG",
        description="Translates SOURCE (a sentence) or captions it (a JPEG or PNG file) with a "
        "trained run or an exported translation or captioning model and draws the attention "
        "weights: for translation, the source tokens on the x axis and the translation's tokens "
        "on the y axis; for captioning, the image under one heat map per generated word (as in "
        "Show, Attend and Tell).",
    )
    parser.add_argument("model", metavar="RUN_OR_MODEL",
                        help="run directory, or exported model (models/NAME[/VERSION])")
    parser.add_argument("source", metavar="SOURCE",
                        help="the sentence to translate, or the image file to caption")
    parser.add_argument("--out", default="attention.png", metavar="FILE.png",
                        help="PNG file to write (default attention.png)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not pathlib.Path(args.model).is_dir():  # before TensorFlow loads
        raise ValueError(f"{args.model!r} is not a directory; give a run directory (runs/NAME) or "
                         "an exported model (models/NAME or models/NAME/VERSION).")
    from seqzoo.training.attention_weights import compute_attention

    result = compute_attention(args.model, args.source)
    if result["task"] == "captioning":
        from seqzoo.zoo.models.captioning.caption_attention_plot import plot_caption_attention

        text = result["caption"]
        path = plot_caption_attention(result["image"], result["tokens"], result["attention"],
                                      args.out, title=text)
    else:
        from seqzoo.zoo.models.translation.attention_plot import plot_attention

        text = result["translation"]
        path = plot_attention(result["source_tokens"], result["target_tokens"],
                              result["attention"], args.out,
                              title=f"{args.source}  \u2192  {text}")
    print(f"{text}\nAttention drawn to {path}")
    return 0
