"""In-graph tokenizer of source or target text: characters or words to ids and back."""

from __future__ import annotations

import collections

import keras
import tensorflow as tf

from seqzoo.zoo._checks import check_one_of, check_positive_int

LEVELS = ("char", "word")
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
UNK_TOKEN, START_TOKEN, END_TOKEN = "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = ("", UNK_TOKEN, START_TOKEN, END_TOKEN)


def split_tokens(texts, level, lowercase):
    """Splits a string tensor `[batch]` into a ragged tensor of tokens (tf.string ops only).

    Whitespace runs become one space. Characters keep that space as a token; words are split
    on it, with ASCII punctuation split off as tokens of its own ("it's 5." -> it ' s 5 .).
    """
    texts = tf.strings.strip(tf.strings.regex_replace(texts, r"\s+", " "))
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if level == "char":
        return tf.strings.unicode_split(texts, "UTF-8")
    return tf.strings.split(tf.strings.regex_replace(texts, r"([[:punct:]])", " \\1 "))


def normalize_texts(texts, level, lowercase) -> list[str]:
    """Texts (list of str) as a tokenizer of `level` sees them, tokens joined back (words with
    single spaces, "hello , world !"), so that texts compare token by token."""
    tokens = split_tokens(tf.constant(list(texts), tf.string), level, lowercase)
    separator = "" if level == "char" else " "
    return [t.decode("utf-8") for t in
            tf.strings.reduce_join(tokens, axis=1, separator=separator).numpy()]


@keras.saving.register_keras_serializable(package="seqzoo")
class TranslationTokenizer(keras.layers.Layer):
    """Maps raw text to token ids inside the graph, and ids back to text.

    Ids: 0 padding, 1 unknown token, 2 start `<s>`, 3 end `</s>`, then `vocabulary[i]` is
    `i + 4`. Text is split into characters (`level="char"`, natural for dates and spelling) or
    into words and punctuation (`level="word"`), optionally lowercased. Tokens missing from the
    vocabulary map to the unknown id and come back as `<unk>`.

    Args:
        vocabulary: list of distinct, non-empty tokens (most frequent first); build it with
            `TranslationTokenizer.build_vocabulary`.
        level: `"char"` (default) or `"word"`.
        lowercase: bool, lowercase text before splitting. Defaults to False.
        max_length: positive int, tokens kept from the start of each text.
        add_end: bool, append the end id after the tokens (targets need it). Defaults to False.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: string tensor `[batch]`.

    Returns:
        int32 tensor `[batch, time]` of ids, right padded with 0 to the longest row (at least
        one column).

    Example:
        >>> tokenizer = TranslationTokenizer(["a", "b", " "], level="char", add_end=True)
        >>> tokenizer(tf.constant(["ab a", "c"])).numpy()
        array([[4, 5, 6, 4, 3],
               [1, 3, 0, 0, 0]], dtype=int32)
        >>> tokenizer.detokenize(tf.constant([[4, 6, 5, 3, 4]])).numpy()
        array([b'a b'], dtype=object)
    """

    def __init__(self, vocabulary, level="char", lowercase=False, max_length=64, add_end=False,
                 **kwargs):
        super().__init__(**kwargs)
        vocabulary = [str(token) for token in vocabulary]
        bad = [t for t in vocabulary if t in SPECIAL_TOKENS or "\n" in t]
        duplicates = sorted(t for t, n in collections.Counter(vocabulary).items() if n > 1)
        if bad or duplicates:
            raise ValueError(
                "`vocabulary` must hold distinct tokens other than '', '<unk>', '<s>', '</s>' "
                f"and without newlines. Received invalid tokens {bad[:10]} and duplicates "
                f"{duplicates[:10]}"
            )
        check_one_of("level", level, LEVELS)
        check_positive_int("max_length", max_length)
        self.vocabulary = vocabulary
        self.level = level
        self.lowercase = bool(lowercase)
        self.max_length = max_length
        self.add_end = bool(add_end)
        table = [START_TOKEN, END_TOKEN] + vocabulary
        self.lookup = keras.layers.StringLookup(vocabulary=table, mask_token="",
                                                oov_token=UNK_TOKEN, num_oov_indices=1)
        self.inverse = keras.layers.StringLookup(vocabulary=table, mask_token="",
                                                 oov_token=UNK_TOKEN, num_oov_indices=1,
                                                 invert=True)
        self.built = True

    @property
    def vocabulary_size(self):
        """Number of ids, the four special ones included."""
        return len(self.vocabulary) + len(SPECIAL_TOKENS)

    @staticmethod
    def build_vocabulary(texts, level="char", lowercase=False, max_size=None, min_count=1):
        """The tokens of `texts` seen at least `min_count` times, most frequent first (ties in
        first-seen order), at most `max_size` of them; split exactly as the layer splits."""
        counts = collections.Counter()
        for start in range(0, len(texts), 4096):
            tokens = split_tokens(tf.constant(list(texts[start:start + 4096])), level, lowercase)
            counts.update(t.decode("utf-8") for t in tokens.flat_values.numpy())
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        vocabulary = [t for t, n in counts.most_common() if n >= min_count and "\n" not in t]
        return vocabulary[:max_size] if max_size else vocabulary

    def tokenize(self, inputs):
        """Ragged string tensor `[batch, None]` of the tokens each id stands for."""
        return split_tokens(inputs, self.level, self.lowercase)[:, : self.max_length]

    def call(self, inputs):
        tokens = self.tokenize(tf.convert_to_tensor(inputs, tf.string))
        ids = tf.cast(tf.ragged.map_flat_values(self.lookup, tokens), tf.int32)
        if self.add_end:
            end = tf.fill([ids.nrows(), 1], tf.constant(END_ID, tf.int32))
            ids = tf.concat([ids, end], axis=1)
        dense = ids.to_tensor(default_value=PAD_ID)
        return tf.pad(dense, [[0, 0], [0, tf.maximum(1 - tf.shape(dense)[1], 0)]])

    def teacher_forcing(self, texts):
        """`{"target_in", "target_out"}` of a decoder trained with teacher forcing: the ids of
        `texts` with the end id (`target_out`, needs `add_end=True`), and the same ids behind
        the start id, without the last (`target_in`)."""
        if not self.add_end:
            raise ValueError("teacher_forcing needs a tokenizer built with add_end=True.")
        target_out = self(texts)
        return {"target_in": self.behind_start(target_out), "target_out": target_out}

    @staticmethod
    def behind_start(ids):
        """Ids `[batch, time]` shifted right behind the start id (the last column drops): the
        decoder inputs that wrote `ids`."""
        ids = tf.cast(ids, tf.int32)
        start = tf.fill([tf.shape(ids)[0], 1], tf.constant(START_ID, tf.int32))
        return tf.concat([start, ids[:, :-1]], axis=1)

    def id_to_token(self, ids):
        """Tokens of ids (any shape): `""` for padding, `<s>`, `</s>`, `<unk>` as such."""
        return self.inverse(tf.cast(ids, tf.int64))

    def detokenize(self, ids):
        """Joins ids `[batch, time]` into text, stopping at the first end id and dropping
        padding and start ids (words are joined with spaces, characters without)."""
        ids = tf.cast(ids, tf.int32)
        before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1), 0)
        keep = tf.logical_and(before_end, tf.logical_and(tf.not_equal(ids, PAD_ID),
                                                         tf.not_equal(ids, START_ID)))
        tokens = tf.ragged.boolean_mask(self.id_to_token(ids), keep)
        return tf.strings.reduce_join(tokens, axis=1, separator="" if self.level == "char" else " ")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], None), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary": self.vocabulary,
            "level": self.level,
            "lowercase": self.lowercase,
            "max_length": self.max_length,
            "add_end": self.add_end,
        })
        return config
