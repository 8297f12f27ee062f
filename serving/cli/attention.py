"""`seqzoo attention RUN_OR_MODEL "source text"`: draws a translation's attention to a PNG."""

from __future__ import annotations

import argparse
import pathlib


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not pathlib.Path(args.model).is_dir():  # before TensorFlow loads
        raise ValueError(f"{args.model!r} is not a directory; give a run directory (runs/NAME) or "
                         "an exported model (models/NAME or models/NAME/VERSION).")
    from seqzoo.training.attention_weights import compute_attention
    from seqzoo.zoo.models.translation.attention_plot import plot_attention

    result = compute_attention(args.model, args.text)
    path = plot_attention(result["source_tokens"], result["target_tokens"], result["attention"],
                          args.out, title=f"{args.text}  \u2192  {result['translation']}")
    print(f"{result['translation']}\nAttention drawn to {path}")
    return 0
