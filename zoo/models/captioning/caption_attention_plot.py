"""Drawing a caption's attention over its image: one panel per word (Show, Attend and Tell)."""

from __future__ import annotations

import math
import pathlib

import numpy as np


def plot_caption_attention(image, tokens, weights, out, title=None, columns=5) -> pathlib.Path:
    """Saves the image and, for every generated word, the image under a heat map of the
    attention that wrote it, to the PNG file `out`.

    The weights of each word are drawn over the whole picture, smoothly upsampled from the
    region grid (each grid cell covers its share of the picture), so bright areas show where
    the decoder looked when it wrote the word. Padding tokens (`""`) are dropped; the end token
    `</s>` gets a panel too (where the model looked when it decided to stop).

    Args:
        image: pixels `[height, width, 3]` (uint8, or floats in [0, 255]), as the model saw it.
        tokens: sequence of str, the caption's tokens.
        weights: array-like `[len(tokens), grid_h, grid_w]`, each word's weights over the grid.
        out: path of the PNG to write (parent directories are created).
        title: optional title, e.g. the caption.
        columns: panels per row.

    Returns:
        The path written.

    Example:
        >>> plot_caption_attention(pixels, ["a", "red", "circle", "</s>"], weights, "att.png")
        PosixPath('att.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = np.clip(np.asarray(image, dtype=float), 0, 255) / 255.0
    weights = np.asarray(weights, dtype=float)
    words = [(token, weights[index]) for index, token in enumerate(tokens) if token != ""]
    if not words:
        raise ValueError("Nothing to draw: the caption has no tokens.")
    panels = len(words) + 1
    rows = math.ceil(panels / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows + 0.4),
                                squeeze=False)
    height, width = image.shape[:2]
    extent = (0, width, height, 0)
    for axis in axes.flat:
        axis.axis("off")
    axes.flat[0].imshow(image, extent=extent)
    axes.flat[0].set_title("image", fontsize=10)
    for axis, (token, grid) in zip(axes.flat[1:], words):
        axis.imshow(image, extent=extent)
        # Scaled to this word's strongest region, so each panel shows where the word looked.
        axis.imshow(grid / max(grid.max(), 1e-12), cmap="inferno", alpha=0.6,
                    interpolation="bilinear", extent=extent, vmin=0.0, vmax=1.0)
        axis.set_title(token, fontsize=11)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
