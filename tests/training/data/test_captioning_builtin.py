"""Built-in captioning pictures: captions by hand, pixels read back independently, determinism."""

import numpy as np
import pytest

from seqzoo.training.data import captioning_builtin
from seqzoo.training.data.captioning_builtin import ShapeObject

# Independent reading of a pixel: the canonical colours, far apart from each other and from the
# dark background even with the generator's colour jitter and noise.
HUES = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 90, 230),
        "yellow": (230, 210, 40)}


def test_captions_by_hand():
    objects = [ShapeObject("triangle", "green", "large", 1, 1),
               ShapeObject("circle", "red", "small", 0, 0),
               ShapeObject("square", "blue", "medium", 0, 2)]
    assert captioning_builtin.caption(objects) == (
        "a small red circle left of a blue square above a large green triangle")
    assert captioning_builtin.caption([ShapeObject("square", "yellow", "medium", 2, 2)]) == (
        "a yellow square")
    column = [ShapeObject("circle", "blue", "large", row, 0) for row in (2, 0, 1)]
    assert captioning_builtin.caption(column) == (
        "a large blue circle above a large blue circle above a large blue circle")


def _read_cells(image):
    """(colour, pixel count) of the object in each cell, in reading order, from pixels alone."""
    cell = image.shape[0] // 3
    found = []
    for row in range(3):
        for column in range(3):
            patch = image[row * cell:(row + 1) * cell, column * cell:(column + 1) * cell]
            patch = patch.reshape(-1, 3).astype(float)
            distances = {name: np.linalg.norm(patch - hue, axis=1) for name, hue in HUES.items()}
            near = {name: int((d < 100).sum()) for name, d in distances.items()}
            colour = max(near, key=near.get)
            if near[colour] >= 8:
                found.append((colour, near[colour], row))
    return found


def test_pixels_show_the_objects_the_caption_names():
    (images, captions, counts), _ = captioning_builtin.generate(60, 1, image_size=48, seed=3)
    areas = {}
    for image, caption, count in zip(images, captions, counts):
        found = _read_cells(image)
        assert len(found) == count, caption
        phrases = caption.replace(" left of ", " | ").replace(" above ", " | ").split(" | ")
        for phrase, (colour, area, _) in zip(phrases, found):
            words = phrase.split()
            assert words[-2] == colour, (caption, found)
            size = words[1] if len(words) == 4 else "medium"
            areas.setdefault((words[-1], size), []).append(area)
        links = [w for w in caption.split() if w in ("left", "above")]
        rows = [row for _, _, row in found]
        assert links == ["left" if b == a else "above" for a, b in zip(rows, rows[1:])]
    # Sizes are told apart by area: every small circle is smaller than every medium one, ...
    for shape in captioning_builtin.SHAPES:
        small, medium, large = (areas[(shape, size)] for size in ("small", "medium", "large"))
        assert max(small) < min(medium) and max(medium) < min(large), (shape, areas)


def test_generation_is_deterministic_and_splits_differ():
    first = captioning_builtin.generate(20, 10, image_size=32, seed=5)
    again = captioning_builtin.generate(20, 10, image_size=32, seed=5)
    other = captioning_builtin.generate(20, 10, image_size=32, seed=6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1]
    assert not np.array_equal(first[0][0], other[0][0])
    train, validation = first
    assert train[0].shape == (20, 32, 32, 3) and train[0].dtype == np.uint8
    assert validation[0].shape == (10, 32, 32, 3)
    assert not any(np.array_equal(v, t) for v in validation[0] for t in train[0])
    assert set(train[2]) <= {1, 2, 3, 4, 5}
    assert [len(c.split()) for c in train[1]] != [len(train[1][0].split())] * 20


def test_too_small_pictures_are_refused():
    with pytest.raises(ValueError, match="image_size >= 24"):
        captioning_builtin.generate(1, 1, image_size=16)
