"""load_tfds_text against TFDS mock data (offline): features found, splits chosen, errors."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from seqzoo.training.data.tfds_text import load_tfds_text


@pytest.mark.parametrize("name,class_names", [
    ("imdb_reviews", ["neg", "pos"]),
    ("glue/sst2", ["negative", "positive"]),
])
def test_reads_text_and_labels_of_every_split(name, class_names):
    with tfds.testing.mock_data(num_examples=20):
        splits, names = load_tfds_text(name)
    assert names == class_names
    assert len(splits["train"][0]) + len(splits["validation"][0]) >= 20
    for texts, labels in splits.values():
        assert len(texts) == len(labels) > 0
        assert all(isinstance(t, str) for t in texts)
        assert set(np.unique(labels)) <= {0, 1}


def test_max_examples_caps_each_split():
    with tfds.testing.mock_data(num_examples=30):
        splits, _ = load_tfds_text("glue/sst2", max_examples=7)
    assert {len(texts) for texts, _ in splits.values()} == {7}


def test_unlabeled_test_split_is_replaced_by_validation_and_train_carved():
    def as_dataset(self, split, **kwargs):
        import tensorflow as tf

        count = {"train": 50, "validation": 8, "test": 6}[str(split)]
        labels = [-1] * count if str(split) == "test" else [i % 2 for i in range(count)]
        return tf.data.Dataset.from_tensor_slices({
            "sentence": [f"{split} {i}" for i in range(count)],
            "label": np.array(labels, np.int64),
            "idx": np.arange(count, dtype=np.int32),
        })

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        splits, _ = load_tfds_text("glue/sst2", seed=3)
    assert splits["test"][0] == [f"validation {i}" for i in range(8)]
    assert len(splits["validation"][0]) == 5 and len(splits["train"][0]) == 45
    assert set(splits["validation"][0]).isdisjoint(splits["train"][0])
    assert all(t.startswith("train ") for t in splits["validation"][0] + splits["train"][0])


def test_unknown_feature_key_lists_the_available_ones():
    with tfds.testing.mock_data(num_examples=5):
        with pytest.raises(ValueError, match=r"no text feature 'review'.*\['text'\]"):
            load_tfds_text("imdb_reviews", text_key="review")


def test_unknown_dataset_is_a_short_value_error():
    with pytest.raises(ValueError, match="Unknown TFDS dataset 'no_such_dataset'") as info:
        load_tfds_text("no_such_dataset")
    assert len(str(info.value)) < 300
