"""Reading prepared TFDS datasets offline, with errors that say how to prepare them."""

from __future__ import annotations


def tfds_builder(name: str):
    """The TFDS builder of `name`; an unknown or unavailable dataset is a ValueError."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name)
    except Exception as err:  # TFDS raises several types for unknown or unavailable datasets.
        raise ValueError(f"Unknown or unavailable TFDS dataset {name!r}: {err}") from None


def has_split(name: str, split: str) -> bool:
    """Whether dataset `name` has `split`; a dataset whose splits are unknown here (e.g. under
    `tfds.testing.mock_data`) is taken to have it."""
    splits = tfds_builder(name).info.splits
    return not splits or split in splits


def load_prepared(name: str, split: str, limit: int | None = None):
    """The `tf.data` examples of one split of a prepared dataset, at most `limit` of them.

    Nothing is downloaded at run time: a dataset not prepared here (`tfds build NAME`) is a
    ValueError saying so.
    """
    import tensorflow_datasets as tfds

    try:
        dataset = tfds.load(name, split=split, download=False)
    except Exception as err:  # TFDS raises AssertionError, DatasetNotFoundError, ...
        raise ValueError(
            f"TFDS dataset {name!r} (split {split!r}) is not prepared here; nothing is "
            f"downloaded at run time, so prepare it first with `tfds build {name}` on a "
            f"connected machine. ({str(err).splitlines()[0]})"
        ) from None
    return dataset.take(limit) if limit else dataset
