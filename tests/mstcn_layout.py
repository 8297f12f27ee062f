"""Writes small datasets in the MS-TCN layout (features/, groundTruth/, mapping.txt, splits/)
for the tests of the file reader and of the frame-labeling task."""

import numpy as np

LABELS = ["background", "take", "pour"]


def write_mstcn(root, videos, feature_dim=5, splits=None, seed=0):
    """Writes an MS-TCN directory: `videos` maps a name to its label list."""
    rng = np.random.default_rng(seed)
    (root / "features").mkdir(parents=True)
    (root / "groundTruth").mkdir()
    (root / "mapping.txt").write_text("".join(f"{i} {label}\n" for i, label in enumerate(LABELS)))
    for name, labels in videos.items():
        features = rng.normal(size=(feature_dim, len(labels))).astype(np.float32)
        np.save(root / "features" / f"{name}.npy", features)
        (root / "groundTruth" / f"{name}.txt").write_text("".join(f"{x}\n" for x in labels))
    if splits:
        (root / "splits").mkdir()
        for split_name, names in splits.items():
            (root / "splits" / split_name).write_text("".join(f"{n}.txt\n" for n in names))
    return root


def video_labels(length, seed):
    """Labels of a video of `length` frames in segments of 4 frames, by seed."""
    rng = np.random.default_rng(seed)
    return [LABELS[i] for i in np.repeat(rng.integers(0, 3, 8), 4)[:length]]
