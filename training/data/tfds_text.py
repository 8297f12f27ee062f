"""Loading TFDS text classification datasets (imdb_reviews, glue/sst2, ...) as Python lists.

Any TFDS dataset with one `Text` feature and one `ClassLabel` feature works; the feature names
are found from the dataset's features (or given). Splits whose labels are all -1 (unlabeled,
like imdb_reviews' "unsupervised" or GLUE's "test") are skipped. The held-out test split is the
labeled "test" split, else the labeled "validation" one; the validation split is the labeled
"validation" split when it is not the test split, else a seeded 10% of "train".
Nothing is downloaded: the dataset must already be prepared in `data_dir` (`tfds build NAME`).
"""

from __future__ import annotations

import numpy as np

SPLIT_NAMES = ("train", "validation", "test")
VALIDATION_FRACTION = 0.1


def _feature_key(features, kind, wanted, name):
    import tensorflow_datasets as tfds

    feature_type = {"text": tfds.features.Text, "label": tfds.features.ClassLabel}[kind]
    keys = [key for key, feature in features.items() if isinstance(feature, feature_type)]
    if wanted is not None:
        if wanted not in keys:
            raise ValueError(
                f"TFDS dataset {name!r} has no {kind} feature {wanted!r}; its {kind} features "
                f"are {keys}."
            )
        return wanted
    if len(keys) != 1:
        raise ValueError(
            f"TFDS dataset {name!r} needs exactly one {feature_type.__name__} feature to be used "
            f"as {kind}; it has {keys} (name one with {kind}_key=)."
        )
    return keys[0]


def _read_split(name, split, text_key, label_key, data_dir, max_examples):
    import tensorflow_datasets as tfds

    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except Exception as err:  # TFDS raises several types for "not prepared" and "no such split"
        return None, err
    if max_examples is not None:
        dataset = dataset.take(max_examples)
    texts, labels = [], []
    for example in tfds.as_numpy(dataset):
        texts.append(example[text_key].decode("utf-8"))
        labels.append(int(example[label_key]))
    return (texts, np.array(labels, dtype=np.int64)), None


def load_tfds_text(name: str, *, text_key: str | None = None, label_key: str | None = None,
                   data_dir: str | None = None, max_examples: int | None = None,
                   seed: int = 0):
    """Loads a prepared TFDS text classification dataset.

    Args:
        name: TFDS name, optionally with config and version (e.g. "imdb_reviews",
            "glue/sst2").
        text_key: name of the text feature; found automatically when there is one.
        label_key: name of the label (ClassLabel) feature; found automatically when there is one.
        data_dir: TFDS data directory; None uses TFDS' default (`~/tensorflow_datasets`).
        max_examples: read at most this many examples of each split.
        seed: seed of the train/validation carve when the dataset has no usable validation split.

    Returns:
        `(splits, class_names)`: `splits` maps "train", "validation" and "test" to
        `(texts, labels)` with labels indexing `class_names` (the ClassLabel names).

    Example:

    >>> splits, class_names = load_tfds_text("glue/sst2")
    >>> class_names
    ['negative', 'positive']
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"Unknown TFDS dataset {name!r} ({first_line}); `tfds.list_builders()` lists them."
        ) from None
    features = builder.info.features
    text_key = _feature_key(features, "text", text_key, name)
    label_key = _feature_key(features, "label", label_key, name)
    class_names = list(features[label_key].names)

    available = [s for s in SPLIT_NAMES if not builder.info.splits or s in builder.info.splits]
    labeled, errors = {}, {}
    for split in available:
        data, err = _read_split(name, split, text_key, label_key, data_dir, max_examples)
        if err is not None:
            errors[split] = err
        elif len(data[1]) and (data[1] >= 0).any():
            labeled[split] = data
    if "train" not in labeled:
        reason = errors.get("train", "its train split has no labeled examples")
        raise ValueError(
            f"Cannot read TFDS dataset {name!r} (no download happens at run time; prepare it "
            f"first with `tfds build {name}` on a connected machine): {reason}"
        )
    for split, (texts, labels) in labeled.items():
        if (labels < 0).any():
            raise ValueError(
                f"TFDS dataset {name!r} split {split!r} mixes labeled and unlabeled (-1) examples."
            )

    train = labeled["train"]
    test = labeled.get("test", labeled.get("validation"))
    if "validation" in labeled and "test" in labeled:
        validation = labeled["validation"]
    else:
        order = np.random.default_rng(seed).permutation(len(train[0]))
        n_validation = max(1, int(len(order) * VALIDATION_FRACTION))
        held, kept = order[:n_validation], order[n_validation:]
        validation = ([train[0][i] for i in held], train[1][held])
        train = ([train[0][i] for i in kept], train[1][kept])
        if test is None:
            test = validation
    return {"train": train, "validation": validation, "test": test}, class_names
