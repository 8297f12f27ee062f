"""Sentiment classifier: raw text in, class probabilities out."""

from __future__ import annotations

import keras

from seqzoo.zoo._checks import check_one_of, check_positive_int, checked_class_names
from seqzoo.zoo.layers.bidirectional_encoder import BidirectionalEncoder
from seqzoo.zoo.models.sentiment.masked_global_pooling import MaskedGlobalPooling1D
from seqzoo.zoo.models.sentiment.word_tokenizer import WordTokenizer

POOLINGS = ("final", "mean", "max")


@keras.saving.register_keras_serializable(package="seqzoo")
class SentimentClassifier(keras.Model):
    """Text classifier: in-graph tokenizer, embedding, bidirectional encoder, pooling, softmax.

    A functional model whose single input is a batch of raw strings, so the same model serves
    from Python, from a `.keras` file and from a SavedModel without any outside preprocessing:
    `WordTokenizer` (lowercasing, punctuation, out-of-vocabulary id) → `Embedding(mask_zero=True)`
    → `BidirectionalEncoder` (masked) → pooling → dropout → `Dense(softmax)`.

    Args:
        vocabulary: list of words of the tokenizer (see `WordTokenizer.build_vocabulary`).
        class_names: names of the classes, in the order of the output probabilities. Defaults
            to `("negative", "positive")`.
        embedding_dim: positive int, size of the word embeddings. Defaults to 32.
        units: positive int, hidden size of each encoder direction. Defaults to 32.
        cell: `"lstm"` or `"gru"` (default).
        num_layers: positive int, stacked encoder layers. Defaults to 1.
        merge_mode: `"concat"` (default), `"sum"`, `"ave"` or `"mul"`, see
            `BidirectionalEncoder`.
        pooling: how the sequence becomes one vector: `"final"` (default: the last layer's
            forward and backward final hidden states, concatenated), `"mean"` or `"max"` (over
            the valid steps of the merged outputs).
        dropout: float in [0, 1), dropout between encoder layers and before the classifier.
        max_length: positive int, words kept from the start of each text. Defaults to 64.
        **kwargs: base `keras.Model` arguments (e.g. `name`).

    Call arguments:
        inputs: string tensor `[batch]` of raw texts.
        training: Python bool or None, whether dropout is active.

    Returns:
        float32 tensor `[batch, len(class_names)]` of class probabilities.

    Example:

    >>> model = SentimentClassifier(["good", "bad", "not"], units=8, embedding_dim=8)
    >>> model(tf.constant(["Not bad!", "good"])).shape
    TensorShape([2, 2])
    """

    def __init__(self, vocabulary, class_names=("negative", "positive"), embedding_dim=32,
                 units=32, cell="gru", num_layers=1, merge_mode="concat", pooling="final",
                 dropout=0.0, max_length=64, **kwargs):
        class_names = checked_class_names(class_names)
        check_one_of("pooling", pooling, POOLINGS)
        check_positive_int("embedding_dim", embedding_dim)

        # Layers.
        tokenizer = WordTokenizer(vocabulary, max_length=max_length, name="tokenizer")
        embedding = keras.layers.Embedding(
            tokenizer.vocabulary_size, embedding_dim, mask_zero=True, name="embedding"
        )
        encoder = BidirectionalEncoder(units, cell=cell, num_layers=num_layers,
                                       merge_mode=merge_mode, dropout=dropout, name="encoder")
        head_dropout = keras.layers.Dropout(dropout, name="head_dropout")
        # Under a mixed precision policy the softmax still computes, and returns, float32.
        head = keras.layers.Dense(len(class_names), activation="softmax", dtype="float32",
                                  name="probabilities")

        # Functional model.
        text = keras.Input(shape=(), dtype="string", name="text")
        sequence, states = encoder(embedding(tokenizer(text)))
        if pooling == "final":
            per_direction = encoder.states_per_direction
            pooled = keras.layers.Concatenate(name="final_states")(
                [states[-2 * per_direction], states[-per_direction]]
            )
        else:
            pooled = MaskedGlobalPooling1D(pooling, name="pooling")(sequence)
        probabilities = head(head_dropout(pooled))
        super().__init__(inputs=text, outputs=probabilities, **kwargs)

        # Config.
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.vocabulary = list(tokenizer.vocabulary)
        self.class_names = class_names
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.merge_mode = merge_mode
        self.pooling = pooling
        self.dropout = dropout
        self.max_length = max_length

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary": list(self.vocabulary),
            "class_names": list(self.class_names),
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "cell": self.cell,
            "num_layers": self.num_layers,
            "merge_mode": self.merge_mode,
            "pooling": self.pooling,
            "dropout": self.dropout,
            "max_length": self.max_length,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
