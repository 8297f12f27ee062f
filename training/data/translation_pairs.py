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

from seqzoo.training.data import translation_builtin
from seqzoo.training.data.sources import hold_out, parse_source
from seqzoo.training.data.tfds_source import has_split, load_prepared, tfds_builder
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


def load_tfds_pairs(name: str, split: str, limit: int | None = None) -> list[tuple[str, str]]:
    """Reads up to `limit` (source, target) pairs of one split of a prepared TFDS dataset."""
    import tensorflow_datasets as tfds

    source_key, target_key = text_feature_keys(tfds_builder(name).info)
    return [(ex[source_key].decode("utf-8"), ex[target_key].decode("utf-8"))
            for ex in tfds.as_numpy(load_prepared(name, split, limit))]


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
        if has_split(source.arg, "validation"):
            train = load_tfds_pairs(source.arg, "train", max_examples)
            return train, load_tfds_pairs(source.arg, "validation")
        pairs = load_tfds_pairs(source.arg, "train", max_examples)
    else:
        pairs = read_file_pairs(source.arg)
    return hold_out(list(pairs), seed, validation_fraction, f"{data!r}")
