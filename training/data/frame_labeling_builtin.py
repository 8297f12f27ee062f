"""Built-in frame-labeling dataset: short videos of a square whose action shows only in motion.

Every video shows one square (the actor) on a dark background of a random colour, plus a small
distractor blob that wanders at random, and pixel noise. The actor performs a sequence of
actions, each for a segment of 4 to 12 frames, never the same action twice in a row:

    still, left, right, up, down, grow, shrink

The label of frame t is the action that carries the actor from frame t to frame t + 1. A single
frame shows where the actor is and how big, never where it goes: its start position, size,
colour, speed (0.7 to 1.2 px per frame; 0.3 to 0.6 px of size for grow and shrink) and the
background change from video to video, and the squares are drawn with sub-pixel (area coverage)
edges so that slow motion shows as changes of edge intensity. A per-frame classifier is
therefore near chance, a causal (left-to-right) model sees a segment's motion one frame after
it starts, and a bidirectional model sees it on time.

Generation is deterministic for a seed; each split draws from its own seed, so no video is
shared between splits. Lengths vary from video to video.
"""

from __future__ import annotations

import dataclasses

import numpy as np

CLASS_NAMES = ("still", "left", "right", "up", "down", "grow", "shrink")
# Unit motion of each action: (dx, dy, dsize).
_MOTION = {
    "still": (0.0, 0.0, 0.0),
    "left": (-1.0, 0.0, 0.0),
    "right": (1.0, 0.0, 0.0),
    "up": (0.0, -1.0, 0.0),
    "down": (0.0, 1.0, 0.0),
    "grow": (0.0, 0.0, 1.0),
    "shrink": (0.0, 0.0, -1.0),
}
SPEED = (0.7, 1.2)
GROWTH = (0.3, 0.6)
SIZE = (3.0, 9.0)
SEGMENT_FRAMES = (4, 12)
DISTRACTOR_SIZE = 2.0
NOISE = 0.06
SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 2}


@dataclasses.dataclass
class Videos:
    """A batch of videos, right padded to the longest one.

    Attributes:
        frames: uint8 `[videos, max_frames, size, size, 3]`, zeros after each video's end.
        labels: int32 `[videos, max_frames]`, indices into `CLASS_NAMES`; 0 after the end.
        lengths: int32 `[videos]`, frames of each video.
    """

    frames: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)

    def video(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The frames `[T, size, size, 3]` and labels `[T]` of one video, without padding."""
        length = self.lengths[index]
        return self.frames[index, :length], self.labels[index, :length]


def _coverage(low: np.ndarray, high: np.ndarray, size: int) -> np.ndarray:
    """Fraction of each pixel column in [low, high): `[frames] x2 -> [frames, size]`."""
    pixels = np.arange(size, dtype=np.float32)
    return np.clip(np.minimum(high[:, None], pixels + 1) - np.maximum(low[:, None], pixels), 0, 1)


def _square(x: np.ndarray, y: np.ndarray, side: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased squares centred at (x, y): `[frames, size, size]` coverage in [0, 1]."""
    half = side / 2
    rows = _coverage(y - half, y + half, size)
    columns = _coverage(x - half, x + half, size)
    return rows[:, :, None] * columns[:, None, :]


def _room(name: str, x: float, y: float, side: float, size: int) -> float:
    """How far (px of motion, or of size) action `name` can go from state (x, y, side) before
    the actor leaves the frame or its size range."""
    half = side / 2
    if name == "grow":
        return min(SIZE[1] - side, 2 * (x - half), 2 * (size - x - half), 2 * (y - half),
                   2 * (size - y - half))
    return {"still": np.inf, "left": x - half, "right": size - x - half, "up": y - half,
            "down": size - y - half, "shrink": side - SIZE[0]}[name]


def _actions(rng: np.random.Generator, length: int, size: int):
    """Per-frame action indices and the actor's state `(x, y, side)` at each of the frames."""
    labels = np.empty(length, np.int32)
    states = np.empty((length + 1, 3), np.float32)
    side = rng.uniform(4.0, 7.0)
    x, y = (rng.uniform(side / 2 + 1, size - side / 2 - 1) for _ in range(2))
    states[0] = (x, y, side)
    t, previous = 0, None
    while t < length:
        options = []
        for index, name in enumerate(CLASS_NAMES):
            rate = rng.uniform(*(GROWTH if _MOTION[name][2] else SPEED))
            longest = min(SEGMENT_FRAMES[1], _room(name, *states[t], size) // rate)
            if index != previous and longest >= SEGMENT_FRAMES[0]:
                options.append((index, rate, int(longest)))
        index, rate, longest = options[rng.integers(len(options))]
        frames = min(int(rng.integers(SEGMENT_FRAMES[0], longest + 1)), length - t)
        steps = np.arange(1, frames + 1, dtype=np.float32)[:, None]
        states[t + 1:t + frames + 1] = states[t] + steps * rate * np.array(
            _MOTION[CLASS_NAMES[index]], np.float32)
        labels[t:t + frames] = index
        previous, t = index, t + frames
    return labels, states[:length]


def _render(rng: np.random.Generator, states: np.ndarray, size: int) -> np.ndarray:
    """Frames `[T, size, size, 3]` in [0, 1] of the actor at `states`, a distractor and noise."""
    length = len(states)
    background = rng.uniform(0.0, 0.35, 3).astype(np.float32)
    actor_colour = rng.uniform(0.55, 1.0, 3).astype(np.float32)
    distractor_colour = rng.uniform(0.3, 1.0, 3).astype(np.float32)
    walk = np.cumsum(rng.normal(0.0, 0.7, (length, 2)), axis=0) + rng.uniform(2, size - 2, 2)
    walk = (np.abs((walk - 1) % (2 * (size - 2)) - (size - 2)) + 1).astype(np.float32)  # reflected
    distractor = _square(walk[:, 0], walk[:, 1], np.full(length, DISTRACTOR_SIZE, np.float32), size)
    actor = _square(states[:, 0], states[:, 1], states[:, 2], size)
    # Channels first while mixing: NumPy broadcasts over a last axis of 3 slowly.
    channels = background[:, None, None, None]
    channels = channels + distractor * (distractor_colour[:, None, None, None] - channels)
    channels = channels + actor * (actor_colour[:, None, None, None] - channels)
    frames = np.moveaxis(channels, 0, -1)
    return frames + NOISE * rng.standard_normal(frames.shape, dtype=np.float32)


def generate(num_videos: int, seed: int = 0, min_frames: int = 40, max_frames: int = 80,
             frame_size: int = 24) -> Videos:
    """`num_videos` videos of `min_frames` to `max_frames` frames of `frame_size` pixels square.

    Args:
        num_videos: positive int.
        seed: the videos are a function of the seed alone.
        min_frames, max_frames: range of video lengths (both included), at least 1.
        frame_size: height and width of the frames in pixels, at least 16.

    Returns:
        `Videos` padded to the longest video.
    """
    if num_videos < 1 or not 1 <= min_frames <= max_frames or frame_size < 16:
        raise ValueError(
            "generate needs num_videos >= 1, 1 <= min_frames <= max_frames and frame_size >= 16. "
            f"Received: num_videos={num_videos}, min_frames={min_frames}, "
            f"max_frames={max_frames}, frame_size={frame_size}"
        )
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_frames, max_frames + 1, num_videos).astype(np.int32)
    longest = int(lengths.max())
    frames = np.zeros((num_videos, longest, frame_size, frame_size, 3), np.uint8)
    labels = np.zeros((num_videos, longest), np.int32)
    for index, length in enumerate(lengths):
        video_rng = np.random.default_rng([seed, index])
        labels[index, :length], states = _actions(video_rng, int(length), frame_size)
        pixels = _render(video_rng, states, frame_size)
        frames[index, :length] = np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)
    return Videos(frames, labels, lengths)


def load(num_train: int, num_validation: int, seed: int = 0, **video_settings) -> dict[str, Videos]:
    """The train, validation and test splits (`num_validation` videos each for the held-out
    ones), every split from its own seed derived from `seed`; `video_settings` go to
    `generate`."""
    sizes = {"train": num_train, "validation": num_validation, "test": num_validation}
    return {split: generate(count, seed=seed * 10 + SPLIT_SEEDS[split], **video_settings)
            for split, count in sizes.items()}
