"""(source, target) sentence pairs from every kind of `--data` source, split for training.

- `builtin[:dates|long]`: generated in code (training/data/translation_builtin.py).
- `tfds:NAME[/CONFIG]`: a TFDS dataset with two text features, e.g. `ted_hrlr_translate/pt_to_en`
  or `wmt14_translate/de-en`. The source and target are the dataset's supervised keys when it
  has them, else the two languages of its `Translation` feature (or its two `Text` features) in
  order. Its `validation` split is used when it exists, else a slice of `train`.
- `file:PATH`: a .tsv (or .csv) file of source and target columns, read by
  training/data/text_table.py (optional header naming `source` and `target`).
"""

from __future__ import annotations

import random

from seqzoo.training.data import translation_builtin
from seqzoo.training.data.sources import parse_source
from seqzoo.training.data.text_table import read_text_table


def read_file_pairs(path: str) -> list[tuple[str, str]]:
    """Reads (source, target) pairs of a CSV/TSV file through the shared text-table reader."""
    table = read_text_table(path, columns=("source", "target"))
    return list(zip(table["source"], table["target"]))


def text_feature_keys(info) -> tuple[str, str]:
    """The (source, target) feature names of a TFDS dataset with two text features."""
    import tensorflow_datasets as tfds

    if info.supervised_keys and all(isinstance(k, str) for k in info.supervised_keys[:2]):
        return tuple(info.supervised_keys[:2])
    features = info.features
    if isinstance(features, tfds.features.Translation):
        languages = list(features.languages)
    else:
        languages = [k for k, v in features.items() if isinstance(v, tfds.features.Text)]
    if len(languages) != 2:
        raise ValueError(
            f"TFDS dataset {info.full_name!r} does not have exactly two text features "
            f"(found {languages}); translation needs a source and a target text."
        )
    return languages[0], languages[1]


def _builder(name: str):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name)
    except Exception as err:  # TFDS raises several types for unknown or unavailable datasets.
        raise ValueError(f"Unknown or unavailable TFDS dataset {name!r}: {err}") from None


def load_tfds_pairs(name: str, split: str, limit: int | None = None) -> list[tuple[str, str]]:
    """Reads up to `limit` (source, target) pairs of one split of a prepared TFDS dataset."""
    import tensorflow_datasets as tfds

    source_key, target_key = text_feature_keys(_builder(name).info)
    try:
        # Offline: the dataset must already be prepared (`tfds build NAME`).
        dataset = tfds.load(name, split=split, download=False)
    except Exception as err:  # TFDS raises AssertionError, DatasetNotFoundError, ...
        raise ValueError(
            f"TFDS dataset {name!r} (split {split!r}) is not prepared here; nothing is "
            f"downloaded at run time, so prepare it first with `tfds build {name}` on a "
            f"connected machine. ({str(err).splitlines()[0]})"
        ) from None
    if limit:
        dataset = dataset.take(limit)
    return [(ex[source_key].decode("utf-8"), ex[target_key].decode("utf-8"))
            for ex in tfds.as_numpy(dataset)]


def _has_split(name: str, split: str) -> bool:
    splits = _builder(name).info.splits
    return not splits or split in splits


def load_pairs(data: str, *, seed: int = 0, builtin_train: int = 50000,
               builtin_validation: int = 1000, validation_fraction: float = 0.05,
               max_examples: int | None = None):
    """Returns `(train_pairs, validation_pairs)` for a `--data` string.

    Args:
        data: `builtin[:dates|long]`, `tfds:NAME[/CONFIG]` or `file:PATH`.
        seed: seed of built-in generation and of the train/validation split of files.
        builtin_train: training pairs generated for built-in datasets.
        builtin_validation: validation pairs generated for built-in datasets.
        validation_fraction: share of a file (or of a TFDS dataset without a validation split)
            held out for validation.
        max_examples: at most this many training pairs from TFDS (None reads them all).
    """
    source = parse_source(data)
    if source.kind == "builtin":
        return translation_builtin.generate(source.arg or "dates", builtin_train,
                                            builtin_validation, seed)
    if source.kind == "tfds":
        if _has_split(source.arg, "validation"):
            train = load_tfds_pairs(source.arg, "train", max_examples)
            return train, load_tfds_pairs(source.arg, "validation")
        pairs = load_tfds_pairs(source.arg, "train", max_examples)
    else:
        pairs = read_file_pairs(source.arg)
    pairs = list(pairs)
    random.Random(seed).shuffle(pairs)
    held_out = max(1, int(round(len(pairs) * validation_fraction)))
    if len(pairs) < 2:
        raise ValueError(f"{data!r} holds {len(pairs)} pair(s); at least 2 are needed to hold "
                         "one out for validation.")
    return pairs[held_out:], pairs[:held_out]
