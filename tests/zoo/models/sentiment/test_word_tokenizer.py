"""WordTokenizer: ids checked by hand, vocabulary building, validation and serialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqzoo.zoo.models.sentiment import WordTokenizer


def test_ids_lowercase_punctuation_oov_and_padding():
    tokenizer = WordTokenizer(["the", "plot", "not", "good"], max_length=10)
    ids = tokenizer(tf.constant(["The PLOT was NOT good!!", "plot<br />good", "", "¿Plot?"]))
    # the=2 plot=3 not=4 good=5; "was" is out of vocabulary (1); padding is 0.
    expected = [[2, 3, 1, 4, 5], [3, 5, 0, 0, 0], [0, 0, 0, 0, 0], [3, 0, 0, 0, 0]]
    np.testing.assert_array_equal(ids, expected)


def test_truncates_to_max_length_and_keeps_one_column_for_empty_batches():
    tokenizer = WordTokenizer(["a", "b"], max_length=3)
    np.testing.assert_array_equal(tokenizer(tf.constant(["a b a b a", "b"])),
                                  [[2, 3, 2], [3, 0, 0]])
    np.testing.assert_array_equal(tokenizer(tf.constant(["", "..."])), [[0], [0]])


def test_build_vocabulary_orders_by_count_then_alphabetically():
    texts = ["Zebra apple, apple!", "mango zebra APPLE", "kiwi"]
    assert WordTokenizer.build_vocabulary(texts, 10) == ["apple", "zebra", "kiwi", "mango"]
    assert WordTokenizer.build_vocabulary(texts[::-1], 2) == ["apple", "zebra"]


def test_serializes_with_its_vocabulary():
    tokenizer = WordTokenizer(["good", "bad"], max_length=5, name="tok")
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tokenizer))
    text = tf.constant(["Good, not bad", "bad"])
    np.testing.assert_array_equal(revived(text), tokenizer(text))
    assert revived.vocabulary_size == 4


@pytest.mark.parametrize("kwargs,message", [
    ({"vocabulary": []}, "vocabulary=\\[\\]"),
    ({"vocabulary": ["a", "a"]}, "duplicates \\['a'\\]"),
    ({"vocabulary": ["two words"]}, "invalid words \\['two words'\\]"),
    ({"vocabulary": ["a"], "max_length": 0}, "max_length=0"),
])
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WordTokenizer(**kwargs)
