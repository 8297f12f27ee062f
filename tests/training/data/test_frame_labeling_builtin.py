"""The built-in frame-labeling videos: deterministic, varied, and labelled by the motion that
follows each frame."""

import numpy as np
import pytest

from seqzoo.training.data import frame_labeling_builtin as builtin


@pytest.fixture(scope="module")
def videos():
    return builtin.generate(40, seed=3, min_frames=30, max_frames=50)


def test_deterministic_by_seed_and_splits_differ(videos):
    again = builtin.generate(40, seed=3, min_frames=30, max_frames=50)
    np.testing.assert_array_equal(again.frames, videos.frames)
    np.testing.assert_array_equal(again.labels, videos.labels)
    splits = builtin.load(5, 5, seed=3, min_frames=30, max_frames=50)
    assert {len(v) for v in splits.values()} == {5}
    first = {name: split.video(0)[0][:30].tobytes() for name, split in splits.items()}
    assert len(set(first.values())) == 3


def test_lengths_padding_and_shapes(videos):
    assert videos.frames.shape == (40, videos.lengths.max(), 24, 24, 3)
    assert videos.frames.dtype == np.uint8
    assert 30 <= videos.lengths.min() and videos.lengths.max() <= 50
    assert len(set(videos.lengths.tolist())) > 5
    for index in range(len(videos)):
        length = videos.lengths[index]
        assert not videos.frames[index, length:].any() and not videos.labels[index, length:].any()
        frames, labels = videos.video(index)
        assert len(frames) == len(labels) == length


def test_segments_vary_in_length_and_never_repeat_an_action(videos):
    segment_lengths, classes = [], set()
    for index in range(len(videos)):
        labels = videos.video(index)[1]
        starts = np.flatnonzero(np.diff(labels)) + 1
        bounds = np.r_[0, starts, len(labels)]
        runs = np.diff(bounds)
        # The last segment may be cut by the end of the video.
        segment_lengths.extend(runs[:-1])
        classes.update(labels.tolist())
        assert np.all(labels[bounds[1:-1]] != labels[bounds[1:-1] - 1])
    assert classes == set(range(len(builtin.CLASS_NAMES)))
    assert min(segment_lengths) >= builtin.SEGMENT_FRAMES[0]
    assert max(segment_lengths) <= builtin.SEGMENT_FRAMES[1]
    assert len(set(segment_lengths)) >= 6


def test_each_label_is_the_motion_to_the_next_frame():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels, states = builtin._actions(rng, 60, 24)
        change = np.diff(states, axis=0)  # state t+1 - state t, labelled by labels[t]
        for t, label in enumerate(labels[:-1]):
            name = builtin.CLASS_NAMES[label]
            dx, dy, dsize = change[t]
            expected = np.array(builtin._MOTION[name])
            rate = np.abs(change[t]).max()
            np.testing.assert_allclose(change[t], expected * rate, atol=1e-5)
            if name != "still":
                low, high = builtin.GROWTH if dsize else builtin.SPEED
                assert low - 1e-5 <= rate <= high + 1e-5
        half = states[:, 2] / 2
        assert np.all(states[:, 0] - half >= -1e-4) and np.all(states[:, 0] + half <= 24 + 1e-4)
        assert np.all(states[:, 1] - half >= -1e-4) and np.all(states[:, 1] + half <= 24 + 1e-4)
        assert np.all(states[:, 2] >= builtin.SIZE[0] - 1e-4)
        assert np.all(states[:, 2] <= builtin.SIZE[1] + 1e-4)


def _nearest_centroid_accuracy(features, labels):
    centroids = np.stack([features[labels == c].mean(0) for c in range(len(builtin.CLASS_NAMES))])
    distances = (((features[:, None] - centroids[None]) / features.std(0)) ** 2).sum(-1)
    return float(np.mean(distances.argmin(1) == labels))


def test_motion_gives_the_label_away_but_a_single_frame_does_not(videos):
    """The actor's brightness-weighted centre and brightness (its size) in one frame say little
    about the action; their change to the next frame says much more, even with the distractor
    and the noise in the way."""
    states, motions, labels = [], [], []
    ys, xs = np.mgrid[:24, :24]
    for index in range(len(videos)):
        frames, video_labels = videos.video(index)
        grey = frames.astype(np.float32).mean(-1)
        weights = np.maximum(grey - np.median(grey, axis=(1, 2), keepdims=True), 0)
        total = weights.sum((1, 2)) + 1e-6
        state = np.stack([(weights * xs).sum((1, 2)) / total, (weights * ys).sum((1, 2)) / total,
                          total], axis=1)
        states.append(state[:-1])
        motions.append(np.diff(state, axis=0))
        labels.append(video_labels[:-1])
    states, motions, labels = map(np.concatenate, (states, motions, labels))
    assert _nearest_centroid_accuracy(states, labels) < 0.3
    assert _nearest_centroid_accuracy(motions, labels) > 0.6


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="min_frames <= max_frames"):
        builtin.generate(2, min_frames=10, max_frames=5)
    with pytest.raises(ValueError, match="frame_size >= 16"):
        builtin.generate(2, frame_size=8)
