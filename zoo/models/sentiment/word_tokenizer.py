"""In-graph word tokenizer: raw strings in, padded word ids out."""

from __future__ import annotations

import collections

import keras
import tensorflow as tf

from seqzoo.zoo._checks import check_positive_int

PAD_ID = 0
OOV_ID = 1
OOV_TOKEN = "[UNK]"


def standardize(texts):
    """Lowercases, turns HTML line breaks, punctuation and symbols into spaces (tf.string op)."""
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, r"<br\s*/?>", " ")
    return tf.strings.regex_replace(texts, r"[\p{P}\p{S}]", " ")


@keras.saving.register_keras_serializable(package="seqzoo")
class WordTokenizer(keras.layers.Layer):
    """Splits raw text into words and maps them to ids, inside the graph.

    Text is lowercased, HTML line breaks (`<br />`), punctuation and symbols become spaces, and
    the text is split on whitespace. Each word maps to its id: 0 is padding, 1 is any word out
    of the vocabulary, and `vocabulary[i]` is `i + 2`. Rows are right padded with 0 to the
    longest text of the batch, truncated to `max_length` words, and never narrower than one
    column (an empty text gives a single padding id), so `Embedding(mask_zero=True)` masks
    padding.

    Args:
        vocabulary: non-empty list of distinct words (standardized: lowercase, no punctuation),
            most frequent first; `WordTokenizer.build_vocabulary` makes one from texts.
        max_length: positive int, number of words kept from the start of each text.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: string tensor `[batch]` of raw texts.

    Returns:
        int64 tensor `[batch, min(max_length, longest text)]` of word ids.

    Example:

    >>> tokenizer = WordTokenizer(["the", "plot", "good"], max_length=8)
    >>> tokenizer(tf.constant(["The plot was GOOD!", "plot"])).numpy()
    array([[2, 3, 1, 4],
           [3, 0, 0, 0]])
    """

    def __init__(self, vocabulary, max_length=64, **kwargs):
        super().__init__(**kwargs)
        vocabulary = [str(word) for word in vocabulary]
        if not vocabulary:
            raise ValueError("`vocabulary` must hold at least one word. Received: vocabulary=[]")
        bad = [w for w in vocabulary if not w or w != w.strip() or " " in w or w == OOV_TOKEN]
        if bad or len(set(vocabulary)) != len(vocabulary):
            duplicates = sorted(w for w, n in collections.Counter(vocabulary).items() if n > 1)
            raise ValueError(
                "`vocabulary` must hold distinct non-empty words without spaces, other than "
                f"{OOV_TOKEN!r}. Received invalid words {bad[:10]} and duplicates "
                f"{duplicates[:10]}."
            )
        check_positive_int("max_length", max_length)
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.lookup = keras.layers.StringLookup(
            vocabulary=vocabulary, mask_token="", oov_token=OOV_TOKEN, num_oov_indices=1,
        )
        self.built = True

    @property
    def vocabulary_size(self):
        """Number of ids, padding and out-of-vocabulary included."""
        return len(self.vocabulary) + 2

    @staticmethod
    def build_vocabulary(texts, max_size):
        """Returns the `max_size` most frequent standardized words of `texts`.

        Ties are broken alphabetically, so the vocabulary does not depend on the order of
        `texts`.

        Args:
            texts: iterable of Python strings.
            max_size: positive int, maximum number of words (ids 0 and 1 come on top).
        """
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1; received {max_size}.")
        counts = collections.Counter()
        texts = list(texts)
        for start in range(0, len(texts), 4096):
            words = tf.strings.split(standardize(tf.constant(texts[start:start + 4096])))
            counts.update(w.decode("utf-8") for w in words.flat_values.numpy())
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [word for word, _ in ranked[:max_size]]

    def call(self, inputs):
        words = tf.strings.split(standardize(inputs))[:, : self.max_length]
        width = tf.maximum(words.bounding_shape(axis=1), 1)
        padded = words.to_tensor(default_value="", shape=tf.stack([words.nrows(), width]))
        return tf.cast(self.lookup(padded), "int64")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (None,)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs.shape) + (None,), dtype="int64")

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary": list(self.vocabulary), "max_length": self.max_length})
        return config
