"""Reading frame-labeling data in the MS-TCN layout: splits, labels, and every problem of every
video reported in one error."""

import numpy as np
import pytest
from mstcn_layout import LABELS, video_labels, write_mstcn

from seqzoo.training.data.mstcn_files import load_features, load_mstcn, read_mapping


def test_bundles_choose_the_split_and_labels_follow_mapping(tmp_path):
    videos = {f"v{i}": video_labels(10 + i, i) for i in range(5)}
    root = write_mstcn(tmp_path, videos, splits={
        "train.split1.bundle": ["v0", "v1", "v2"], "test.split1.bundle": ["v3", "v4"],
        "train.split2.bundle": ["v3", "v4"], "test.split2.bundle": ["v0"]})
    splits, names = load_mstcn(root, split=1)
    assert names == LABELS
    assert [v.name for v in splits["train"]] == ["v0", "v1", "v2"]
    assert [v.name for v in splits["validation"]] == ["v3", "v4"]
    v3 = splits["validation"][0]
    assert [LABELS[i] for i in v3.labels] == videos["v3"]
    features = load_features(v3)
    np.testing.assert_array_equal(features, np.load(root / "features" / "v3.npy").T)
    assert load_features(v3, sample_rate=2).shape == (7, 5)
    splits, _ = load_mstcn(root, split=2)
    assert [v.name for v in splits["validation"]] == ["v0"]


def test_without_splits_videos_are_held_out_by_seed(tmp_path):
    root = write_mstcn(tmp_path, {f"v{i}": video_labels(8, i) for i in range(10)})
    splits, _ = load_mstcn(root, seed=0)
    train = {v.name for v in splits["train"]}
    held_out = {v.name for v in splits["validation"]}
    assert len(train) == 8 and len(held_out) == 2 and not train & held_out
    again, _ = load_mstcn(root, seed=0)
    assert {v.name for v in again["validation"]} == held_out


def test_every_bad_video_is_reported_in_one_error(tmp_path):
    videos = {f"v{i}": video_labels(12, i) for i in range(5)}
    root = write_mstcn(tmp_path, videos)
    (root / "features" / "v1.npy").unlink()
    (root / "groundTruth" / "v2.txt").write_text("take\nstir\nflip\n" + "take\n" * 9)
    np.save(root / "features" / "v3.npy", np.zeros((5, 11), np.float32))
    np.save(root / "features" / "v4.npy", np.zeros((5, 12, 1), np.float32))
    with pytest.raises(ValueError) as info:
        load_mstcn(root)
    message = str(info.value)
    assert "has 4 problem(s)" in message
    assert "v1: missing features/v1.npy" in message
    assert "v2: labels not in mapping.txt: 'flip', 'stir'" in message
    assert "v3: features/v3.npy has 11 frames but groundTruth/v3.txt has 12 labels" in message
    assert "v4: features/v4.npy has shape [5, 12, 1]; expected [D, T]" in message


def test_differing_feature_sizes_and_missing_bundles_are_reported(tmp_path):
    root = write_mstcn(tmp_path, {"a": video_labels(6, 0), "b": video_labels(6, 1)})
    np.save(root / "features" / "b.npy", np.zeros((7, 6), np.float32))
    with pytest.raises(ValueError, match=r"feature sizes differ between videos: \[5, 7\]"):
        load_mstcn(root)
    (root / "splits").mkdir()
    with pytest.raises(ValueError, match="Split file .*train.split1.bundle.* is missing"):
        load_mstcn(root)


@pytest.mark.parametrize("mapping, message", [
    ("0 a\n0 b\n", "expected 'index label' with a new integer index"),
    ("0 a\n2 b\n", "must number at least two classes 0, 1, ... without gaps"),
    ("0 a\n1 a\n", "names a label twice"),
    ("zero a\n", "expected 'index label'"),
])
def test_bad_mapping_files(tmp_path, mapping, message):
    (tmp_path / "mapping.txt").write_text(mapping)
    with pytest.raises(ValueError, match=message):
        read_mapping(tmp_path / "mapping.txt")


def test_missing_directory_and_mapping(tmp_path):
    with pytest.raises(ValueError, match="does not exist; file:DIR expects the MS-TCN layout"):
        load_mstcn(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="mapping.txt.* is missing"):
        load_mstcn(tmp_path)
