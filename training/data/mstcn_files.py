"""Frame-labeling data in the MS-TCN layout, as Breakfast, 50Salads and GTEA are distributed:

    DIR/mapping.txt              one "index label" per line (e.g. "0 take"), indices 0..C-1
    DIR/features/NAME.npy        float features [D, T] of video NAME (e.g. I3D, D = 2048)
    DIR/groundTruth/NAME.txt     one label per line, one line per frame (T lines)
    DIR/splits/train.splitN.bundle, DIR/splits/test.splitN.bundle   (optional)
                                 the videos of each split, one "NAME.txt" per line

Without `splits/`, every video of `groundTruth/` is used, split 80/20 into train and validation
by a seeded shuffle. With it, split N's train bundle trains and its test bundle is the
held-out (validation) split, as MS-TCN reports. Feature files are only opened (memory-mapped)
to check their shapes here; `load_features` reads them when a batch needs them, so datasets
larger than memory train too.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

HOLDOUT_FRACTION = 0.2
MAX_REPORTED = 20


@dataclasses.dataclass
class FeatureVideo:
    """One video of an MS-TCN directory.

    Attributes:
        name: the video name (file stem).
        features_path: its `features/NAME.npy` file, `[feature_dim, frames]`.
        labels: int32 `[frames]`, class indices of every frame.
    """

    name: str
    features_path: pathlib.Path
    labels: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.labels)


def read_mapping(path: pathlib.Path) -> list[str]:
    """Class names by index from `mapping.txt` ("index label" lines)."""
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is missing; an MS-TCN directory needs mapping.txt with "
                         "one 'index label' line per class.")
    names = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        index, _, label = line.strip().partition(" ")
        label = label.strip()
        if not index.isdigit() or not label or " " in label or int(index) in names:
            raise ValueError(
                f"{str(path)!r} line {number}: expected 'index label' with a new integer index "
                f"and a label without spaces. Received: {line!r}"
            )
        names[int(index)] = label
    if sorted(names) != list(range(len(names))) or len(names) < 2:
        raise ValueError(f"{str(path)!r} must number at least two classes 0, 1, ... without "
                         f"gaps. Received indices: {sorted(names)}")
    if len(set(names.values())) != len(names):
        raise ValueError(f"{str(path)!r} names a label twice; every label needs one index.")
    return [names[index] for index in range(len(names))]


def _bundle(path: pathlib.Path) -> list[str]:
    """Video names of a split bundle (lines "NAME.txt")."""
    if not path.is_file():
        raise ValueError(f"Split file {str(path)!r} is missing.")
    names = [pathlib.Path(line.strip()).stem for line in path.read_text().splitlines()
             if line.strip()]
    if not names:
        raise ValueError(f"Split file {str(path)!r} lists no video.")
    return names


def _video(directory: pathlib.Path, name: str, index_of: dict, feature_dims: set):
    """`(FeatureVideo, None)`, or `(None, problem)` saying what is wrong with video `name`."""
    truth = directory / "groundTruth" / f"{name}.txt"
    features = directory / "features" / f"{name}.npy"
    missing = [str(path.relative_to(directory)) for path in (truth, features)
               if not path.is_file()]
    if missing:
        return None, f"missing {' and '.join(missing)}"
    lines = [line.strip() for line in truth.read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    unknown = sorted({label for label in lines if label not in index_of})
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:5])
        return None, f"labels not in mapping.txt: {shown}{' ...' if len(unknown) > 5 else ''}"
    try:
        shape = np.load(features, mmap_mode="r").shape
    except (OSError, ValueError) as err:
        return None, f"features/{name}.npy cannot be read as a NumPy array ({err})"
    if len(shape) != 2:
        return None, f"features/{name}.npy has shape {list(shape)}; expected [D, T]"
    if shape[1] != len(lines):
        return None, (f"features/{name}.npy has {shape[1]} frames but groundTruth/{name}.txt "
                      f"has {len(lines)} labels")
    feature_dims.add(shape[0])
    labels = np.array([index_of[label] for label in lines], np.int32)
    return FeatureVideo(name, features, labels), None


def load_mstcn(directory, split: int = 1, seed: int = 0):
    """Reads an MS-TCN directory's videos, checking every one of them.

    Args:
        directory: the dataset directory (holding `mapping.txt`, `features/`, `groundTruth/`).
        split: the split number N of `splits/train.splitN.bundle` and `test.splitN.bundle`.
        seed: seed of the 80/20 split when there is no `splits/` directory.

    Returns:
        `(splits, class_names)`: `splits` maps "train" and "validation" to lists of
        `FeatureVideo`; `class_names` lists the labels by index.

    Raises:
        ValueError: naming every video with a problem (missing files, unknown labels, a
            feature length different from its label count, feature sizes that differ), in one
            message.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise ValueError(f"Data directory {str(directory)!r} does not exist; file:DIR expects "
                         "the MS-TCN layout (mapping.txt, features/, groundTruth/, splits/).")
    class_names = read_mapping(directory / "mapping.txt")
    index_of = {label: index for index, label in enumerate(class_names)}
    splits_dir = directory / "splits"
    if splits_dir.is_dir():
        names = {"train": _bundle(splits_dir / f"train.split{split}.bundle"),
                 "validation": _bundle(splits_dir / f"test.split{split}.bundle")}
    else:
        every = sorted(path.stem for path in (directory / "groundTruth").glob("*.txt"))
        if len(every) < 2:
            raise ValueError(f"{str(directory / 'groundTruth')!r} needs at least two videos "
                             f"(NAME.txt); found {len(every)}.")
        order = np.random.default_rng(seed).permutation(every).tolist()
        held_out = max(1, round(len(order) * HOLDOUT_FRACTION))
        names = {"train": sorted(order[held_out:]), "validation": sorted(order[:held_out])}
    problems, feature_dims, splits = [], set(), {}
    for split_name, videos in names.items():
        splits[split_name] = []
        for name in videos:
            video, problem = _video(directory, name, index_of, feature_dims)
            if problem:
                problems.append(f"{name}: {problem}")
            else:
                splits[split_name].append(video)
    if len(feature_dims) > 1:
        problems.append(f"feature sizes differ between videos: {sorted(feature_dims)}")
    if problems:
        more = len(problems) - MAX_REPORTED
        listed = "\n  ".join(problems[:MAX_REPORTED] + ([f"... and {more} more"] if more > 0
                                                        else []))
        raise ValueError(f"Data directory {str(directory)!r} has {len(problems)} problem(s):"
                         f"\n  {listed}")
    return splits, class_names


def load_features(video: FeatureVideo, sample_rate: int = 1) -> np.ndarray:
    """The features of `video` as float32 `[frames, feature_dim]`, every `sample_rate`-th frame."""
    return np.asarray(np.load(video.features_path).T[::sample_rate], np.float32)
