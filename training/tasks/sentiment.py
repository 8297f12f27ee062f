"""Sentiment classification task: raw text to a class label (e.g. negative/positive)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from seqzoo.training.checked_config import CheckedConfig, at_least, one_of, rate
from seqzoo.training.data import sentiment_builtin
from seqzoo.training.data.sources import parse_source
from seqzoo.training.tasks.base import Task
from seqzoo.zoo.layers.bidirectional_encoder import MERGE_MODES
from seqzoo.zoo.layers.recurrent_cells import CELLS
from seqzoo.zoo.models.sentiment.sentiment_classifier import POOLINGS, SentimentClassifier
from seqzoo.zoo.models.sentiment.sentiment_serving_module import SentimentServingModule
from seqzoo.zoo.models.sentiment.word_tokenizer import WordTokenizer

VOCABULARY_FILE = "vocabulary.txt"
CLASS_NAMES_FILE = "class_names.txt"
FILE_SPLIT_FRACTIONS = (0.8, 0.1)  # train, validation; the rest is the test split
EVAL_BATCH_SIZE = 256


@dataclasses.dataclass
class SentimentConfig(CheckedConfig):
    """Model and data settings of the sentiment task.

    Args:
        vocab_size: maximum number of words kept (most frequent in the training split).
        embedding_dim: size of the word embeddings.
        units: hidden size of each encoder direction.
        cell: "gru" or "lstm".
        num_layers: stacked bidirectional layers.
        merge_mode: "concat", "sum", "ave" or "mul".
        pooling: "final", "mean" or "max".
        dropout: dropout between encoder layers and before the classifier.
        max_length: words kept from the start of each text.
        num_examples: number of reviews generated for `--data builtin` (all splits).
        max_examples: for TFDS and files, read at most this many examples per split; 0 = all.
        text_column: text column of a `file:` source (by header name, else the first column).
        label_column: label column of a `file:` source (by header name, else the second one).
    """

    vocab_size: int = at_least(1, 20000)
    embedding_dim: int = at_least(1, 32)
    units: int = at_least(1, 32)
    cell: str = one_of(CELLS, "gru")
    num_layers: int = at_least(1, 1)
    merge_mode: str = one_of(MERGE_MODES, "concat")
    pooling: str = one_of(POOLINGS, "final")
    dropout: float = rate(0.0)
    max_length: int = at_least(1, 200)
    num_examples: int = at_least(10, 12000)
    max_examples: int = at_least(0, 0)
    text_column: str = "text"
    label_column: str = "label"


def _split_file(path, config, seed):
    """Reads a `file:` source and splits it 80/10/10 with a seeded shuffle; labels by name."""
    from seqzoo.training.data.text_table import read_text_table

    table = read_text_table(path, columns=(config.text_column, config.label_column))
    texts, names = table[config.text_column], table[config.label_column]
    if config.max_examples:
        texts, names = texts[: config.max_examples], names[: config.max_examples]
    class_names = sorted(set(names))
    if len(class_names) < 2 or len(texts) < 10:
        raise ValueError(
            f"Data file {path!r} needs at least 10 rows and 2 distinct labels; it has "
            f"{len(texts)} row(s) and labels {class_names}."
        )
    labels = np.array([class_names.index(name) for name in names], dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(texts))
    n_train = int(len(order) * FILE_SPLIT_FRACTIONS[0])
    n_validation = max(1, int(len(order) * FILE_SPLIT_FRACTIONS[1]))
    parts = {"train": order[:n_train], "validation": order[n_train:n_train + n_validation],
             "test": order[n_train + n_validation:]}
    return {name: ([texts[i] for i in idx], labels[idx]) for name, idx in parts.items()}, class_names


class SentimentTask(Task):
    """Trains a `SentimentClassifier` on builtin reviews, a TFDS dataset or a CSV/TSV file.

    `prepare()` loads the splits and builds the vocabulary from the training split, or reloads
    it (and the class names) from `run_dir/assets/` so a resumed run and the export use the
    same ids. Batches are `(texts, label_ids)`: tokenization happens in the model's graph.
    `evaluate()` returns validation `accuracy` and `loss`, and the held-out `test_accuracy`
    and `test_loss`.

    Example:

    >>> task = SentimentTask(SentimentConfig(units=16), data="builtin", run_dir="runs/s")
    >>> task.prepare()
    >>> model = task.build_model()
    """

    name = "sentiment"
    Config = SentimentConfig
    tiny_run = ("train.steps=2", "train.batch_size=8", "model.units=4", "model.embedding_dim=4",
                "model.num_examples=60", "model.vocab_size=300")

    # The compiled predictor of the last model `predict_probabilities` saw, as (model, function).
    _predictor = (None, None)

    def _load_splits(self):
        source = parse_source(self.data)
        max_examples = self.config.max_examples or None
        if source.kind == "builtin":
            if source.arg not in ("", "sentiment"):
                raise ValueError(
                    f"Unknown builtin dataset {source.arg!r} for the sentiment task; accepted: "
                    "builtin, builtin:sentiment."
                )
            splits = sentiment_builtin.load(self.config.num_examples, seed=self.seed)
            return splits, list(sentiment_builtin.LABELS)
        if source.kind == "tfds":
            from seqzoo.training.data.tfds_text import load_tfds_text

            return load_tfds_text(source.arg, max_examples=max_examples, seed=self.seed)
        return _split_file(source.arg, self.config, self.seed)

    def prepare(self):
        self.splits, class_names = self._load_splits()
        self.class_names = self.cached_vocabulary(CLASS_NAMES_FILE, lambda: list(class_names))
        if self.class_names != list(class_names):
            raise ValueError(
                f"The run's saved class names {self.class_names} differ from those of data "
                f"{self.data!r} ({list(class_names)}); use a new run directory."
            )
        self.vocabulary = self.cached_vocabulary(VOCABULARY_FILE, lambda: (
            WordTokenizer.build_vocabulary(self.splits["train"][0], self.config.vocab_size)))

    def train_dataset(self, global_batch_size, input_context=None):
        texts, labels = self.splits["train"]
        dataset = tf.data.Dataset.from_tensor_slices((tf.constant(texts, tf.string), labels))
        return self.shuffled_batches(dataset, len(texts), global_batch_size, input_context)

    def build_model(self):
        c = self.config
        return SentimentClassifier(
            self.vocabulary, class_names=self.class_names, embedding_dim=c.embedding_dim,
            units=c.units, cell=c.cell, num_layers=c.num_layers, merge_mode=c.merge_mode,
            pooling=c.pooling, dropout=c.dropout, max_length=c.max_length,
        )

    def compute_loss(self, model, batch, training):
        texts, labels = batch
        probabilities = model(texts, training=training)
        per_example_loss = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        correct = tf.cast(tf.equal(tf.argmax(probabilities, axis=-1), labels), tf.float32)
        return per_example_loss, {"accuracy": correct}

    def predict_probabilities(self, model, texts):
        """Class probabilities of `texts` (list of str) as a NumPy array, in batches."""
        cached_model, predictor = self._predictor
        if cached_model is not model:
            predictor = tf.function(
                lambda batch: model(batch, training=False),
                input_signature=[tf.TensorSpec([None], tf.string)],
            )
            self._predictor = (model, predictor)
        outputs = [predictor(tf.constant(texts[i:i + EVAL_BATCH_SIZE], tf.string)).numpy()
                   for i in range(0, len(texts), EVAL_BATCH_SIZE)]
        return np.concatenate(outputs, axis=0)

    def evaluate(self, model):
        metrics = {}
        for split, prefix in (("validation", ""), ("test", "test_")):
            texts, labels = self.splits[split]
            probabilities = self.predict_probabilities(model, texts)
            picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
            metrics[f"{prefix}accuracy"] = float(np.mean(probabilities.argmax(-1) == labels))
            metrics[f"{prefix}loss"] = float(-np.mean(np.log(picked)))
        return metrics

    def export_module(self, model):
        return SentimentServingModule(model)

    def warmup_inputs(self):
        return {"text": ["not bad at all", "The acting was great, but the plot was dull.",
                         "a truly wonderful film!"]}
