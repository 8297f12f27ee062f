"""Encoder-decoder translation model: bidirectional encoder, state bridge, attention decoder."""

from __future__ import annotations

import keras
import tensorflow as tf

from seqzoo.zoo._checks import check_positive_int
from seqzoo.zoo.decoding import decode
from seqzoo.zoo.layers.attention_decoder import AttentionDecoder
from seqzoo.zoo.layers.bidirectional_encoder import BidirectionalEncoder
from seqzoo.zoo.layers.state_bridge import StateBridge
from seqzoo.zoo.models.translation.translation_tokenizer import END_ID, PAD_ID, START_ID


@keras.saving.register_keras_serializable(package="seqzoo")
class Seq2SeqTranslator(keras.Model):
    """Sequence-to-sequence model over token ids, with attention and in-graph decoding.

    The source ids are embedded and read by a `BidirectionalEncoder`; a `StateBridge` turns its
    final states into the initial states of an `AttentionDecoder`, which attends over the
    encoder outputs (padding, id 0, is masked). Training calls the model with teacher forcing;
    `translate` decodes with greedy search, beam search or sampling from `seqzoo.zoo.decoding`, in TF
    ops, so it can be traced into a SavedModel. Ids follow `TranslationTokenizer`: 0 padding,
    2 start, 3 end.

    Args:
        source_vocab_size: positive int, number of source ids.
        target_vocab_size: positive int, number of target ids.
        embedding_dim: positive int, size of source and target embeddings. Defaults to 32.
        units: positive int, size of each encoder direction. Defaults to 64.
        encoder_cell: `"lstm"` or `"gru"`.
        encoder_layers: positive int, stacked bidirectional encoder layers.
        merge_mode: how encoder directions merge: `"concat"`, `"sum"`, `"ave"` or `"mul"`.
        decoder_units: positive int or None (the encoder output size, as `"luong_dot"` needs).
        decoder_cell: `"lstm"` or `"gru"`.
        decoder_layers: positive int, stacked decoder cells.
        attention: `"bahdanau"`, `"luong_general"`, `"luong_dot"` or `"none"`.
        bridge: `"dense"`, `"learned"` or `"zeros"` (see `StateBridge`).
        dropout: float in [0, 1), dropout between encoder layers and inside the decoder.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        inputs: dict with `"source"` int ids `[batch, source_time]` and `"target_in"` int ids
            `[batch, target_time]` (the target behind a start id).
        training: Python bool, whether dropout is active.

    Returns:
        Dict with `"logits"` `[batch, target_time, target_vocab_size]` and `"attention"`
        `[batch, target_time, source_time]`.

    Example:
        >>> model = Seq2SeqTranslator(20, 15, embedding_dim=8, units=8)
        >>> source = tf.constant([[5, 6, 7, 0], [8, 9, 0, 0]])
        >>> out = model({"source": source, "target_in": tf.constant([[2, 4, 5], [2, 6, 0]])})
        >>> tuple(out["logits"].shape), tuple(out["attention"].shape)
        ((2, 3, 15), (2, 3, 4))
        >>> tokens, lengths, scores = model.translate(source, method="beam", beam_width=3,
        ...                                           max_length=6)
        >>> tuple(tokens.shape[:2])
        (2, 1)
    """

    def __init__(self, source_vocab_size, target_vocab_size, embedding_dim=32, units=64,
                 encoder_cell="lstm", encoder_layers=1, merge_mode="concat", decoder_units=None,
                 decoder_cell="lstm", decoder_layers=1, attention="bahdanau", bridge="dense",
                 dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("source_vocab_size", source_vocab_size),
                            ("target_vocab_size", target_vocab_size),
                            ("embedding_dim", embedding_dim)):
            check_positive_int(name, value)
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.encoder_cell = encoder_cell
        self.encoder_layers = encoder_layers
        self.merge_mode = merge_mode
        self.decoder_cell = decoder_cell
        self.decoder_layers = decoder_layers
        self.attention = attention
        self.bridge_mode = bridge
        self.dropout = dropout

        self.source_embedding = keras.layers.Embedding(source_vocab_size, embedding_dim,
                                                       name="source_embedding")
        self.encoder = BidirectionalEncoder(units, cell=encoder_cell, num_layers=encoder_layers,
                                            merge_mode=merge_mode, dropout=dropout,
                                            name="encoder")
        self.decoder_units = decoder_units or self.encoder.output_dim
        self.bridge = StateBridge(self.decoder_units, cell=decoder_cell,
                                  num_layers=decoder_layers, mode=bridge, name="bridge")
        self.decoder = AttentionDecoder(target_vocab_size, self.decoder_units,
                                        embedding_dim=embedding_dim, cell=decoder_cell,
                                        num_layers=decoder_layers, attention=attention,
                                        dropout=dropout, name="decoder")

    def build(self, input_shape=None):
        # Every size follows from the constructor arguments, so the model can be built before
        # its first call (e.g. by `translate`, whose decoding loop cannot create weights).
        self.source_embedding.build((None, None))
        self.encoder.build((None, None, self.embedding_dim))
        num_states = 2 * self.encoder_layers * self.encoder.states_per_direction
        self.bridge.build([(None, self.units)] * num_states)
        self.decoder.build([(None, None), (None, None, self.encoder.output_dim)])
        self.built = True

    def encode(self, source, training=None):
        """Encoder outputs `[B, T, D]`, the source mask `[B, T]` and the decoder's first states."""
        mask = tf.not_equal(source, PAD_ID)
        memory, states = self.encoder(self.source_embedding(source), mask=mask,
                                      training=training)
        return memory, mask, self.bridge(states)

    def call(self, inputs, training=None):
        memory, mask, states = self.encode(inputs["source"], training=training)
        logits, attention = self.decoder([inputs["target_in"], memory, *states], mask=mask,
                                         training=training)
        return {"logits": logits, "attention": attention}

    def translate(self, source, method="greedy", max_length=64, **settings):
        """Decodes target ids for source ids `[B, T]`.

        Args:
            source: int ids `[batch, source_time]`, right padded with 0.
            method: `"greedy"`, `"beam"` or `"sample"`.
            max_length: most target tokens per sentence (the end token counts).
            **settings: `beam_width`, `length_penalty`, `num_results` (beam search),
                `temperature`, `top_k`, `seed` (sampling), as `seqzoo.zoo.decoding.decode`
                takes them.

        Returns:
            `(tokens, lengths, scores)` as `seqzoo.zoo.decoding.decode` returns them: for beam
            search with an n-best axis (`[B, num_results, L]`), else `[B, L]`. Padding and
            start ids are never generated.
        """
        if not self.built:
            self.build()
        memory, mask, states = self.encode(tf.cast(source, tf.int32), training=False)
        step_fn, state, start = self.decoder.decoding_start(memory, states, mask, START_ID,
                                                            never=(PAD_ID, START_ID))
        return decode(method, step_fn, state, start, END_ID, max_length, pad_token=PAD_ID,
                      **settings)

    def get_config(self):
        config = super().get_config()
        config.update({
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "encoder_cell": self.encoder_cell,
            "encoder_layers": self.encoder_layers,
            "merge_mode": self.merge_mode,
            "decoder_units": self.decoder_units,
            "decoder_cell": self.decoder_cell,
            "decoder_layers": self.decoder_layers,
            "attention": self.attention,
            "bridge": self.bridge_mode,
            "dropout": self.dropout,
        })
        return config
