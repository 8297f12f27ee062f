"""Images and their reference captions from every kind of `--data` source, split for training.

- `builtin`: pictures of shapes generated in code (training/data/captioning_builtin.py).
- `tfds:NAME[/CONFIG]`: a TFDS dataset with an image and its captions, e.g. `coco_captions`
  (an `Image` feature and a `captions` sequence of `text`); its `val` or `validation` split
  validates when it has one, else a slice of `train`. It must already be prepared (offline).
- `file:PATH`: the COCO captions layout: PATH is a `captions_*.json` annotation file (or a
  directory holding them, directly or under `annotations/`: `captions_train*.json` then trains
  and `captions_val*.json` validates). Images are found by `file_name` in the image directory
  named after the annotation file (`captions_val2017.json` -> `val2017/`) beside the file or
  one level up, else beside the file itself or in an `images/` directory there.

Every image is decoded and resized to the model's `image_size` once, here, with the function
the serving signatures use, and kept as uint8; bad entries of a file (missing image,
undecodable file, no caption) are reported together, with their ids, in one error.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from seqzoo.training.data import captioning_builtin
from seqzoo.training.data.sources import hold_out, parse_source
from seqzoo.training.data.tfds_source import has_split, load_prepared, tfds_builder


@dataclasses.dataclass
class CaptionedImages:
    """One split: `images` uint8 `[N, size, size, 3]`, `captions` (a list of reference captions
    per image, at least one each), `ids` (image ids, for reports) and, for built-in data,
    `object_counts` (objects in each picture)."""

    images: np.ndarray
    captions: list[list[str]]
    ids: list
    object_counts: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.captions)

    def subset(self, indices) -> "CaptionedImages":
        indices = list(indices)
        return CaptionedImages(
            self.images[indices], [self.captions[i] for i in indices],
            [self.ids[i] for i in indices],
            None if self.object_counts is None else self.object_counts[indices],
        )

    def pairs(self) -> tuple[np.ndarray, list[str]]:
        """`(image_index, caption)` of every reference: one training example each."""
        index = [i for i, refs in enumerate(self.captions) for _ in refs]
        return np.asarray(index, np.int32), [c for refs in self.captions for c in refs]


def _resized(pixels, image_size) -> np.ndarray:
    from seqzoo.zoo.image_preprocessing import resize_image

    return np.clip(np.round(resize_image(pixels, image_size).numpy()), 0, 255).astype(np.uint8)


def _decode_file(path: pathlib.Path, image_size: int) -> np.ndarray:
    import tensorflow as tf

    pixels = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
    return _resized(pixels, image_size)


def _bad_entries_error(where: str, bad: list[tuple]) -> ValueError:
    shown = "; ".join(f"image id {image_id} ({reason})" for image_id, reason in bad[:20])
    more = f"; and {len(bad) - 20} more" if len(bad) > 20 else ""
    return ValueError(f"{where} has {len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'}: "
                      f"{shown}{more}. Fix or remove them from the annotation file.")


def _image_dirs(annotation: pathlib.Path) -> list[pathlib.Path]:
    split = annotation.stem.removeprefix("captions_")
    here = annotation.parent
    return [here / split, here.parent / split, here, here / "images"]


def read_coco_file(annotation: pathlib.Path, image_size: int,
                   max_examples: int | None = None) -> CaptionedImages:
    """Reads a COCO captions annotation file and its images (see the module docstring)."""
    where = f"Annotation file {str(annotation)!r}"
    try:
        content = json.loads(annotation.read_text(encoding="utf-8"))
        images, annotations = content["images"], content["annotations"]
        entries = [(entry["id"], entry["file_name"]) for entry in images]
        references = {}
        for entry in annotations:
            references.setdefault(entry["image_id"], []).append(str(entry["caption"]).strip())
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{where} is not a COCO captions file ({type(err).__name__}: {err}); expected JSON "
            'with "images" ([{"id", "file_name"}]) and "annotations" '
            '([{"image_id", "caption"}]).') from None
    if max_examples:
        entries = entries[:max_examples]
    directories = _image_dirs(annotation)
    pixels, captions, ids, bad = [], [], [], []
    for image_id, file_name in entries:
        refs = [c for c in references.get(image_id, []) if c]
        path = next((d / file_name for d in directories if (d / file_name).is_file()), None)
        if not refs:
            bad.append((image_id, "no caption"))
        elif path is None:
            bad.append((image_id, f"{file_name} not found in "
                                  f"{', '.join(str(d) for d in directories)}"))
        else:
            try:
                pixels.append(_decode_file(path, image_size))
            except Exception as err:  # TF raises InvalidArgumentError and others on bad files
                bad.append((image_id, f"{file_name} is not a decodable JPEG or PNG: "
                                      f"{str(err).splitlines()[0][:80]}"))
                continue
            captions.append(refs)
            ids.append(image_id)
    if bad:
        raise _bad_entries_error(where, bad)
    if not captions:
        raise ValueError(f"{where} lists no images.")
    return CaptionedImages(np.stack(pixels), captions, ids)


def _annotation_files(path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path | None]:
    """(training file, validation file or None) of a `file:` path."""
    if path.is_file():
        return path, None
    if not path.is_dir():
        raise ValueError(f"file:{path} does not exist; give a COCO captions_*.json file or a "
                         "directory holding them (directly or under annotations/).")
    found = sorted(path.glob("captions_*.json")) or sorted(path.glob("annotations/captions_*.json"))
    train = [p for p in found if p.stem.startswith("captions_train")]
    validation = [p for p in found if p.stem.startswith("captions_val")]
    if train:
        return train[0], validation[0] if validation else None
    if len(found) == 1:
        return found[0], None
    raise ValueError(f"file:{path} holds {len(found)} captions_*.json files "
                     f"({[p.name for p in found]}); expected one, or a captions_train*.json "
                     "(and optionally a captions_val*.json).")


def _caption_texts(example, key) -> list[str]:
    value = example[key]
    if isinstance(value, dict):
        value = value["text"]
    values = np.atleast_1d(value)
    return [v.decode("utf-8").strip() if isinstance(v, bytes) else str(v).strip()
            for v in values if len(v)]


def _tfds_keys(info) -> tuple[str, str]:
    import tensorflow_datasets as tfds

    features = info.features
    images = [k for k, v in features.items() if isinstance(v, tfds.features.Image)]
    captions = [k for k in features if "caption" in k]
    if len(images) != 1 or len(captions) != 1:
        raise ValueError(
            f"TFDS dataset {info.full_name!r} needs one Image feature and one captions feature "
            f"(as coco_captions has); found images {images} and captions {captions}."
        )
    return images[0], captions[0]


def read_tfds_split(name: str, split: str, image_size: int,
                    limit: int | None = None) -> CaptionedImages:
    """Reads up to `limit` images and captions of one split of a prepared TFDS dataset."""
    import tensorflow_datasets as tfds

    image_key, caption_key = _tfds_keys(tfds_builder(name).info)
    pixels, captions, ids = [], [], []
    for index, example in enumerate(tfds.as_numpy(load_prepared(name, split, limit))):
        refs = _caption_texts(example, caption_key)
        if refs:
            pixels.append(_resized(example[image_key], image_size))
            captions.append(refs)
            ids.append(int(example.get("image/id", index)))
    if not captions:
        raise ValueError(f"TFDS dataset {name!r} split {split!r} holds no captioned images.")
    return CaptionedImages(np.stack(pixels), captions, ids)


def _split(data: CaptionedImages, seed: int, fraction: float, where: str):
    train, validation = hold_out(list(range(len(data))), seed, fraction, where)
    return data.subset(train), data.subset(validation)


def load_captioned_images(data: str, *, image_size: int, seed: int = 0,
                          builtin_train: int = 20000, builtin_validation: int = 1000,
                          validation_fraction: float = 0.05, max_examples: int | None = None):
    """Returns `(train, validation)` `CaptionedImages` for a `--data` string.

    Args:
        data: `builtin`, `tfds:NAME[/CONFIG]` or `file:PATH`.
        image_size: side of the square images every picture is resized to.
        seed: seed of built-in generation and of the train/validation split.
        builtin_train, builtin_validation: pictures generated for built-in data.
        validation_fraction: share held out for validation when the source has no split.
        max_examples: read at most this many training images from TFDS or a file.
    """
    source = parse_source(data)
    if source.kind == "builtin":
        if source.arg not in ("", "shapes"):
            raise ValueError(f"Unknown built-in captioning dataset {source.arg!r}; accepted: "
                             "shapes (e.g. --data builtin or builtin:shapes).")
        splits = captioning_builtin.generate(builtin_train, builtin_validation, image_size, seed)
        return tuple(
            CaptionedImages(images, [[c] for c in captions], list(range(len(captions))), counts)
            for images, captions, counts in splits)
    if source.kind == "tfds":
        train = read_tfds_split(source.arg, "train", image_size, max_examples)
        for name in ("val", "validation"):
            if has_split(source.arg, name):
                return train, read_tfds_split(source.arg, name, image_size)
        return _split(train, seed, validation_fraction, data)
    train_file, validation_file = _annotation_files(pathlib.Path(source.arg))
    train = read_coco_file(train_file, image_size, max_examples)
    if validation_file is not None:
        return train, read_coco_file(validation_file, image_size)
    return _split(train, seed, validation_fraction, data)
