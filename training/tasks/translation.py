"""Translation task: source text to target text with an attention encoder-decoder."""

from __future__ import annotations

import dataclasses

import numpy as np
import sacrebleu
import tensorflow as tf

from seqzoo.training.checked_config import CheckedConfig, at_least, one_of, rate
from seqzoo.training.data.sources import parse_source
from seqzoo.training.data.translation_pairs import load_pairs
from seqzoo.training.tasks.base import Task
from seqzoo.training.tasks.token_loss import token_loss
from seqzoo.zoo.layers.attention_decoder import ATTENTIONS
from seqzoo.zoo.layers.bidirectional_encoder import MERGE_MODES
from seqzoo.zoo.layers.recurrent_cells import CELLS
from seqzoo.zoo.layers.state_bridge import MODES as BRIDGES
from seqzoo.zoo.models.translation.seq2seq_translator import Seq2SeqTranslator
from seqzoo.zoo.models.translation.translation_serving_module import TranslationServingModule
from seqzoo.zoo.models.translation.translation_tokenizer import (
    LEVELS,
    TranslationTokenizer,
    normalize_texts,
)

SOURCE_VOCABULARY_FILE = "source_vocabulary.txt"
TARGET_VOCABULARY_FILE = "target_vocabulary.txt"
EVAL_BATCH_SIZE = 256


@dataclasses.dataclass
class TranslationConfig(CheckedConfig):
    """Model, tokenizer, data and decoding settings of the translation task.

    Args:
        tokenizer: "char", "word" or "auto" (characters for built-in data, words otherwise).
        lowercase: lowercase source and target text before tokenizing.
        max_source_length: source tokens kept per sentence.
        max_target_length: target tokens kept per sentence; decoding writes at most this many
            tokens plus the end token.
        vocab_size: most tokens kept per side (the most frequent in the training split).
        min_count: tokens seen fewer times in the training split are unknown.
        embedding_dim: size of source and target embeddings.
        units: size of each encoder direction.
        encoder_cell, decoder_cell: "lstm" or "gru".
        encoder_layers, decoder_layers: stacked layers.
        merge_mode: "concat", "sum", "ave" or "mul" (encoder directions).
        decoder_units: decoder size; 0 means the encoder output size.
        attention: "bahdanau", "luong_general", "luong_dot" or "none".
        bridge: "dense", "learned" or "zeros" (decoder initial state).
        dropout: dropout between encoder layers and in the decoder.
        beam_width: beam width of the exported `serving_default`, `nbest` and `attention`.
        length_penalty: beam search length penalty exponent (0 ranks by log-probability).
        num_train: training pairs generated for built-in data.
        num_validation: validation pairs generated for built-in data.
        max_examples: for TFDS, read at most this many training pairs; 0 reads all.
        eval_examples: validation pairs decoded by `evaluate` (0 = all).
        eval_beam: also report beam-search metrics in `evaluate`.
    """

    tokenizer: str = one_of(("auto",) + LEVELS, "auto")
    lowercase: bool = False
    max_source_length: int = at_least(1, 64)
    max_target_length: int = at_least(1, 64)
    vocab_size: int = at_least(1, 8000)
    min_count: int = at_least(1, 1)
    embedding_dim: int = at_least(1, 128)
    units: int = at_least(1, 64)
    encoder_cell: str = one_of(CELLS, "lstm")
    encoder_layers: int = at_least(1, 1)
    merge_mode: str = one_of(MERGE_MODES, "concat")
    decoder_units: int = at_least(0, 0)
    decoder_cell: str = one_of(CELLS, "lstm")
    decoder_layers: int = at_least(1, 1)
    attention: str = one_of(ATTENTIONS, "bahdanau")
    bridge: str = one_of(BRIDGES, "dense")
    dropout: float = rate(0.0)
    beam_width: int = at_least(1, 4)
    length_penalty: float = at_least(0.0, 0.0)
    num_train: int = at_least(1, 50000)
    num_validation: int = at_least(1, 1000)
    max_examples: int = at_least(0, 0)
    eval_examples: int = at_least(0, 1000)
    eval_beam: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.attention == "luong_dot" and self.decoder_units not in (0, self._encoder_dim):
            raise ValueError(
                "model.attention=luong_dot needs model.decoder_units equal to the encoder output "
                f"size ({self._encoder_dim}) or 0; received {self.decoder_units}."
            )

    @property
    def _encoder_dim(self):
        return 2 * self.units if self.merge_mode == "concat" else self.units


class TranslationTask(Task):
    """Trains a `Seq2SeqTranslator` on built-in dates or long strings, TFDS or a TSV file.

    `prepare()` loads the (source, target) pairs and builds the source and target vocabularies
    from the training split, or reloads them from `run_dir/assets/` so a resumed run and the
    export use the same ids. Batches hold token ids made by the in-graph tokenizers:
    `source`, `target_in` (start id, then the target) and `target_out` (the target, then the end
    id). `evaluate()` decodes the validation split and returns `exact_match` and corpus `bleu`
    (sacrebleu) of greedy decoding, plus `beam_exact_match` and `beam_bleu` with `eval_beam`.

    Example:
    >>> task = TranslationTask(TranslationConfig(units=16), data="builtin:dates", run_dir="runs/t")
    >>> task.prepare()
    >>> model = task.build_model()
    """

    name = "translation"
    Config = TranslationConfig
    tiny_run = ("train.steps=2", "train.batch_size=8", "model.units=8", "model.embedding_dim=8",
                "model.num_train=200", "model.num_validation=4", "model.eval_examples=4",
                "model.eval_beam=false", "model.max_target_length=10", "model.beam_width=2")

    # The export module of the last model `translate` saw, as (model, module).
    _module = (None, None)

    @property
    def level(self) -> str:
        """Tokenizer level: the configured one, or characters for built-in data and words else."""
        if self.config.tokenizer != "auto":
            return self.config.tokenizer
        return "char" if parse_source(self.data).kind == "builtin" else "word"

    def _vocabulary(self, texts, filename):
        return self.cached_vocabulary(filename, lambda: TranslationTokenizer.build_vocabulary(
            texts, level=self.level, lowercase=self.config.lowercase,
            max_size=self.config.vocab_size, min_count=self.config.min_count,
        ))

    def prepare(self):
        c = self.config
        self.train_pairs, self.validation_pairs = load_pairs(
            self.data, seed=self.seed, builtin_train=c.num_train,
            builtin_validation=c.num_validation, max_examples=c.max_examples or None,
        )
        sources, targets = zip(*self.train_pairs)
        common = {"level": self.level, "lowercase": c.lowercase}
        self.source_tokenizer = TranslationTokenizer(
            self._vocabulary(sources, SOURCE_VOCABULARY_FILE), max_length=c.max_source_length,
            name="source_tokenizer", **common)
        self.target_tokenizer = TranslationTokenizer(
            self._vocabulary(targets, TARGET_VOCABULARY_FILE), max_length=c.max_target_length,
            add_end=True, name="target_tokenizer", **common)

    def encode_batch(self, sources, targets):
        """Token ids of a batch of string tensors: `{"source", "target_in", "target_out"}`."""
        return {"source": self.source_tokenizer(sources),
                **self.target_tokenizer.teacher_forcing(targets)}

    def train_dataset(self, global_batch_size, input_context=None):
        sources, targets = (list(side) for side in zip(*self.train_pairs))
        dataset = tf.data.Dataset.from_tensor_slices((sources, targets))
        dataset = self.shuffled_batches(dataset, len(sources), global_batch_size, input_context)
        return dataset.map(self.encode_batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE)

    def build_model(self):
        c = self.config
        model = Seq2SeqTranslator(
            self.source_tokenizer.vocabulary_size, self.target_tokenizer.vocabulary_size,
            embedding_dim=c.embedding_dim, units=c.units, encoder_cell=c.encoder_cell,
            encoder_layers=c.encoder_layers, merge_mode=c.merge_mode,
            decoder_units=c.decoder_units or None, decoder_cell=c.decoder_cell,
            decoder_layers=c.decoder_layers, attention=c.attention, bridge=c.bridge,
            dropout=c.dropout,
        )
        # Creates every weight now: the loop builds the optimizer right after this call.
        model({"source": tf.ones([1, 2], tf.int32), "target_in": tf.ones([1, 2], tf.int32)})
        return model

    def compute_loss(self, model, batch, training):
        logits = model({"source": batch["source"], "target_in": batch["target_in"]},
                       training=training)["logits"]
        return token_loss(logits, batch["target_out"])

    def export_module(self, model):
        c = self.config
        return TranslationServingModule(
            model, self.source_tokenizer, self.target_tokenizer, beam_width=c.beam_width,
            length_penalty=c.length_penalty, max_length=c.max_target_length + 1,
        )

    def translate(self, model, sources, signature="greedy"):
        """Translations (list of str) of `sources` through the export module's signatures."""
        cached_model, module = self._module
        if cached_model is not model:
            module = self.export_module(model)
            self._module = (model, module)
        function = module.signatures[signature]
        outputs = []
        for start in range(0, len(sources), EVAL_BATCH_SIZE):
            batch = tf.constant(list(sources[start:start + EVAL_BATCH_SIZE]), tf.string)
            outputs.extend(t.decode("utf-8") for t in function(batch)["translation"].numpy())
        return outputs

    def score(self, hypotheses, references) -> dict[str, float]:
        """Exact match and corpus BLEU, both texts split as the target tokenizer splits them.

        Word-level translations come back as tokens joined by spaces ("hello , world"), so the
        references are normalised the same way before comparing; case too with `lowercase`.
        """
        hypotheses = normalize_texts(hypotheses, self.level, self.config.lowercase)
        references = normalize_texts(references, self.level, self.config.lowercase)
        exact = float(np.mean([h == r for h, r in zip(hypotheses, references)]))
        bleu = sacrebleu.corpus_bleu(hypotheses, [references],
                                     tokenize="char" if self.level == "char" else "13a")
        return {"exact_match": exact, "bleu": float(bleu.score)}

    def evaluate(self, model):
        pairs = self.validation_pairs
        if self.config.eval_examples:
            pairs = pairs[: self.config.eval_examples]
        sources, references = (list(side) for side in zip(*pairs))
        metrics = self.score(self.translate(model, sources, "greedy"), references)
        if self.config.eval_beam:
            beam = self.score(self.translate(model, sources, "serving_default"), references)
            metrics.update({f"beam_{name}": value for name, value in beam.items()})
        return metrics

    def warmup_inputs(self):
        return {"text": [source for source, _ in self.validation_pairs[:3]]}
