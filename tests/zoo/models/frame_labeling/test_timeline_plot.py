"""plot_timeline draws each label in its own colour, the same in every row, and only the labels
the rows hold."""

import matplotlib.image
import numpy as np
import pytest

from seqzoo.zoo.models.frame_labeling.timeline_plot import plot_timeline

CLASSES = ["still", "left", "right", "up"]


def _colours(path):
    image = (matplotlib.image.imread(path)[..., :3] * 255).round().astype(int)
    return {tuple(pixel) for pixel in image.reshape(-1, 3)}


def _tab10(index):
    return tuple(int(round(c * 255)) for c in matplotlib.colormaps["tab10"](index)[:3])


def test_each_label_has_its_class_colour_and_absent_labels_none(tmp_path):
    truth = ["still"] * 20 + ["left"] * 15 + ["right"] * 25
    predicted = ["still"] * 22 + ["left"] * 13 + [""] * 25  # padding after the end is blank
    path = plot_timeline({"ground truth": truth, "prediction": predicted}, tmp_path / "t.png",
                         class_names=CLASSES, title="video 3")
    colours = _colours(path)
    for index in range(3):
        assert _tab10(index) in colours, CLASSES[index]
    assert _tab10(CLASSES.index("up")) not in colours  # neither in a bar nor in the legend


def test_empty_rows_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Nothing to draw"):
        plot_timeline({"prediction": []}, tmp_path / "t.png")
    assert not np.any([p.exists() for p in tmp_path.iterdir()])
