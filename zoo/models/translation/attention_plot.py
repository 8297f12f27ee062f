"""Drawing an attention matrix with its source and target tokens on the axes."""

from __future__ import annotations

import pathlib

import numpy as np


def _label(token: str) -> str:
    # A lone space (a character-level token) would be an invisible tick label.
    return "\u2423" if token == " " else token


def plot_attention(source_tokens, target_tokens, weights, out, title=None) -> pathlib.Path:
    """Saves a heat map of `weights` [target, source] to the PNG file `out`.

    Padding tokens (`""`) are dropped from both axes; the target axis ends at the end token.

    Args:
        source_tokens: sequence of str, the source tokens (columns).
        target_tokens: sequence of str, the generated tokens (rows).
        weights: array-like `[len(target_tokens), len(source_tokens)]`.
        out: path of the PNG to write (parent directories are created).
        title: optional title, e.g. the source sentence and its translation.

    Returns:
        The path written.

    Example:
        >>> plot_attention(["a", "b"], ["X", "</s>"], [[0.9, 0.1], [0.2, 0.8]], "att.png")
        PosixPath('att.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype=float)
    columns = [i for i, t in enumerate(source_tokens) if t != ""]
    rows = [i for i, t in enumerate(target_tokens) if t != ""]
    if not columns or not rows:
        raise ValueError("Nothing to draw: the source or the translation has no tokens.")
    matrix = weights[np.ix_(rows, columns)]
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(1.0 + 0.3 * len(columns), 1.2 + 0.3 * len(rows)))
    image = axes.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    labels = [_label(source_tokens[i]) for i in columns]
    axes.set_xticks(range(len(columns)), labels,
                    rotation=90 if max(len(label) for label in labels) > 2 else 0)
    axes.set_yticks(range(len(rows)), [_label(target_tokens[i]) for i in rows])
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    if title:
        axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
