"""Drawing per-frame labels as coloured bars over time, as action-segmentation papers do."""

from __future__ import annotations

import pathlib

from seqzoo.zoo.models.frame_labeling.segment_metrics import segments


def plot_timeline(rows, out, class_names=None, title=None) -> pathlib.Path:
    """Saves one bar per labelling (e.g. ground truth, then predictions) to the PNG file `out`.

    Each row is a sequence of per-frame labels; every segment is drawn in its label's colour,
    the same colour in every row, with a legend of the labels. Empty labels (`""`, padding)
    are left blank.

    Args:
        rows: dict mapping a row name (e.g. "ground truth", "prediction") to its per-frame
            labels, top row first.
        out: path of the PNG to write (parent directories are created).
        class_names: optional list fixing the order of the colours and the legend; by default
            the labels in order of first appearance.
        title: optional title.

    Returns:
        The path written.

    Example:
        >>> plot_timeline({"ground truth": ["a", "a", "b"], "prediction": ["a", "b", "b"]},
        ...               "timeline.png")
        PosixPath('timeline.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = {name: [str(label) for label in labels] for name, labels in rows.items()}
    if not rows or not any(rows.values()):
        raise ValueError("Nothing to draw: give at least one row with labels.")
    names = [str(name) for name in class_names] if class_names is not None else []
    for labels in rows.values():
        names.extend(label for label in labels if label and label not in names)
    palette = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colours = {name: palette(index % palette.N) for index, name in enumerate(names)}
    length = max(len(labels) for labels in rows.values())

    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(min(4 + length * 0.08, 16), 0.9 + 0.55 * len(rows)))
    for position, (name, labels) in enumerate(rows.items()):
        bars = [(start, end - start, label) for label, start, end in segments(labels, [""])]
        axes.broken_barh([(start, width) for start, width, _ in bars],
                         (len(rows) - 1 - position + 0.1, 0.8),
                         facecolors=[colours[label] for _, _, label in bars],
                         edgecolor="white", linewidth=0.5)
    axes.set_yticks([position + 0.5 for position in range(len(rows))], list(rows)[::-1])
    axes.set_xlim(0, length)
    axes.set_ylim(0, len(rows))
    axes.set_xlabel("frame")
    axes.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    shown = [name for name in names if any(name in labels for labels in rows.values())]
    axes.legend(handles=[Patch(color=colours[name], label=name) for name in shown],
                loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(shown), 8),
                frameon=False, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return out
