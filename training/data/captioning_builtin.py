"""Built-in captioning dataset: pictures of shapes whose caption says what is where.

Every picture is a noisy square canvas cut into a 3 x 3 grid of cells. One to five objects sit
in distinct cells, each with a shape (circle, square, triangle), a colour (red, green, blue,
yellow) and a size (small, medium or large; the radius varies within each size), placed with a
random offset inside its cell. The caption names the objects in reading order (rows top to
bottom, left to right inside a row) and links each to the next by where that one is:
"left of" when it is in the same row, "above" when it is in a lower row. Medium objects get no
size word, as people leave the ordinary unsaid:

    "a small red circle left of a blue square above a large green triangle"

So the caption depends on what is there (shape, colour, size) and where (order and relations),
and its length varies with the number of objects (5 to 28 words). Colours vary around their
hue, the background is a random dark grey with Gaussian pixel noise, so no two pictures are
alike. Generation is deterministic for a seed; the validation pictures come from a separate
random stream, so they are never among the training pictures.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SHAPES = ("circle", "square", "triangle")
COLORS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 90, 230),
          "yellow": (230, 210, 40)}
# Radius ranges as fractions of a cell's side; the gaps between them keep sizes unambiguous.
SIZES = {"small": (0.22, 0.26), "medium": (0.31, 0.35), "large": (0.40, 0.45)}
SIZE_WORDS = {"small": "small ", "medium": "", "large": "large "}
GRID = 3
MAX_OBJECTS = 5
MIN_IMAGE_SIZE = 24


@dataclasses.dataclass(frozen=True)
class ShapeObject:
    """One object of a picture: what it is and the grid cell it sits in."""

    shape: str
    color: str
    size: str
    row: int
    column: int

    @property
    def phrase(self) -> str:
        return f"a {SIZE_WORDS[self.size]}{self.color} {self.shape}"


def caption(objects) -> str:
    """The caption of a picture's objects: reading order, "left of" within a row, "above"
    towards a lower row."""
    ordered = sorted(objects, key=lambda o: (o.row, o.column))
    words = [ordered[0].phrase]
    for previous, current in zip(ordered, ordered[1:]):
        words.append("left of" if current.row == previous.row else "above")
        words.append(current.phrase)
    return " ".join(words)


def _mask(shape, dx, dy, radius):
    """Pixels covered by `shape` centred at offsets (dx, dy) from every pixel, of `radius`."""
    if shape == "circle":
        return dx**2 + dy**2 <= radius**2
    if shape == "square":
        # As wide as the circle: at a few pixels, the corners are what tells them apart.
        return (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    # Upward triangle: apex above the centre, base below it, as wide as it is high.
    top, bottom = -radius, 0.8 * radius
    height = bottom - top
    return (dy >= top) & (dy <= bottom) & (np.abs(dx) <= (dy - top) / height * radius * 1.1)


def draw(canvas, objects, rng: np.random.Generator) -> None:
    """Draws `objects` onto `canvas` (float32 `[size, size, 3]`, modified in place)."""
    cell = canvas.shape[0] / GRID
    for obj in objects:
        radius = rng.uniform(*SIZES[obj.size]) * cell
        slack = max(cell / 2 - radius - 1, 0.0)
        cx = (obj.column + 0.5) * cell + rng.uniform(-slack, slack)
        cy = (obj.row + 0.5) * cell + rng.uniform(-slack, slack)
        color = np.clip(np.array(COLORS[obj.color]) + rng.integers(-25, 26, 3), 0, 255)
        # An object stays inside its own cell: only that part of the canvas is drawn on.
        top, left = int(obj.row * cell), int(obj.column * cell)
        bottom, right = int(np.ceil((obj.row + 1) * cell)), int(np.ceil((obj.column + 1) * cell))
        ys = np.arange(top, bottom, dtype=np.float32)[:, None] + 0.5
        xs = np.arange(left, right, dtype=np.float32)[None, :] + 0.5
        patch = canvas[top:bottom, left:right]
        patch[_mask(obj.shape, xs - cx, ys - cy, radius)] = color


def random_objects(rng: np.random.Generator, num_objects: int) -> list[ShapeObject]:
    cells = rng.choice(GRID * GRID, size=num_objects, replace=False)
    return [ShapeObject(shape=SHAPES[rng.integers(len(SHAPES))],
                        color=list(COLORS)[rng.integers(len(COLORS))],
                        size=list(SIZES)[rng.integers(len(SIZES))],
                        row=int(cell) // GRID, column=int(cell) % GRID)
            for cell in cells]


def generate_split(count: int, image_size: int, rng: np.random.Generator, chunk: int = 1000):
    """`count` pictures with 1 to 5 objects (uniformly many).

    Returns `(images uint8 [count, size, size, 3], captions list[str], object_counts int [count])`.
    """
    images = np.empty((count, image_size, image_size, 3), np.uint8)
    captions, counts = [], np.empty(count, np.int32)
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        canvas = np.empty((size, image_size, image_size, 3), np.float32)
        canvas[:] = rng.uniform(0, 60, (size, 1, 1, 1))
        for index in range(size):
            objects = random_objects(rng, int(rng.integers(1, MAX_OBJECTS + 1)))
            draw(canvas[index], objects, rng)
            captions.append(caption(objects))
            counts[start + index] = len(objects)
        canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * 10
        images[start:start + size] = np.clip(np.round(canvas), 0, 255)
    return images, captions, counts


def generate(num_train: int, num_validation: int, image_size: int = 48, seed: int = 0):
    """Training and validation pictures of the shapes dataset.

    Args:
        num_train: training pictures.
        num_validation: validation pictures.
        image_size: side of the square pictures in pixels (at least 24).
        seed: the same seed gives the same pictures and captions.

    Returns:
        `(train, validation)`, each `(images, captions, object_counts)` as `generate_split`
        returns them.
    """
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"Built-in captioning pictures need image_size >= {MIN_IMAGE_SIZE} "
                         f"so that small shapes stay recognisable. Received: {image_size}")
    train_rng, validation_rng = (np.random.default_rng([seed, stream]) for stream in (0, 1))
    return (generate_split(num_train, image_size, train_rng),
            generate_split(num_validation, image_size, validation_rng))
