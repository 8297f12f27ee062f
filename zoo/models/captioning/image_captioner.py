"""Image captioning model: image encoder, state bridge, attention decoder (Show, Attend and Tell)."""

from __future__ import annotations

import keras
from keras import ops

from seqzoo.zoo._checks import check_positive_int
from seqzoo.zoo.decoding import decode
from seqzoo.zoo.layers.attention_decoder import AttentionDecoder
from seqzoo.zoo.layers.state_bridge import StateBridge
from seqzoo.zoo.models.captioning.image_encoder import ImageEncoder
from seqzoo.zoo.models.translation.translation_tokenizer import END_ID, PAD_ID, START_ID


@keras.saving.register_keras_serializable(package="seqzoo")
class ImageCaptioner(keras.Model):
    """Writes a caption for an image: one input, a sequence out (the lecture's one to many).

    An `ImageEncoder` reads the image into a grid of region features. A `StateBridge` maps the
    mean region feature to the decoder's initial state (the image as the decoder's first input,
    as in Show and Tell). An `AttentionDecoder` then writes the caption, attending over the
    regions at every word with Bahdanau or Luong attention (Show, Attend and Tell), or with
    `attention="none"` from the initial state alone (Show and Tell). Training calls the model
    with teacher forcing; `caption` decodes with greedy search, beam search or sampling from
    `seqzoo.zoo.decoding`, in TF ops, so it can be traced into a SavedModel. Ids follow
    `TranslationTokenizer`: 0 padding, 2 start, 3 end.

    Args:
        vocab_size: positive int, number of caption token ids.
        image_size: positive int, side of the square input images. Defaults to 48.
        backbone, filters, feature_dim, backbone_weights, trainable_backbone: the
            `ImageEncoder` settings.
        embedding_dim: positive int, size of the word embeddings. Defaults to 64.
        units: positive int, size of the decoder cells. Defaults to 128.
        cell: `"lstm"` or `"gru"`.
        num_layers: positive int, stacked decoder cells.
        attention: `"bahdanau"`, `"luong_general"`, `"luong_dot"` (needs
            `feature_dim == units`) or `"none"`.
        bridge: `"dense"` (from the mean region feature), `"learned"` or `"zeros"`.
        dropout: float in [0, 1), dropout inside the decoder.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        inputs: dict with `"image"`, images `[batch, image_size, image_size, 3]` (RGB in
            [0, 255], any real or integer dtype), and `"target_in"`, int ids
            `[batch, caption_time]` (the caption behind a start id).
        training: Python bool, whether dropout is active and a trainable backbone trains.

    Returns:
        Dict with `"logits"` `[batch, caption_time, vocab_size]` and `"attention"`
        `[batch, caption_time, regions]` (regions in reading order over `grid_shape`).

    Example:
        >>> model = ImageCaptioner(12, image_size=32, filters=(8, 8), feature_dim=8, units=8)
        >>> images = np.zeros((2, 32, 32, 3), "float32")
        >>> out = model({"image": images, "target_in": np.array([[2, 4, 5], [2, 6, 0]])})
        >>> tuple(out["logits"].shape), tuple(out["attention"].shape), model.grid_shape
        ((2, 3, 12), (2, 3, 64), (8, 8))
        >>> tokens, lengths, scores = model.caption(images, method="beam", beam_width=3,
        ...                                         max_length=6)
        >>> tuple(tokens.shape[:2])
        (2, 1)
    """

    def __init__(self, vocab_size, image_size=48, backbone="cnn", filters=(32, 64, 64),
                 feature_dim=128, backbone_weights=None, trainable_backbone=True,
                 embedding_dim=64, units=128, cell="lstm", num_layers=1, attention="bahdanau",
                 bridge="dense", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("vocab_size", vocab_size)
        if attention == "luong_dot" and feature_dim != units:
            raise ValueError("attention='luong_dot' needs feature_dim equal to units. Received: "
                             f"feature_dim={feature_dim}, units={units}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.attention = attention
        self.bridge_mode = bridge
        self.dropout = dropout

        self.encoder = ImageEncoder(image_size, backbone=backbone, filters=filters,
                                    feature_dim=feature_dim, backbone_weights=backbone_weights,
                                    trainable_backbone=trainable_backbone, name="encoder")
        self.bridge = StateBridge(units, cell=cell, num_layers=num_layers, mode=bridge,
                                  name="bridge")
        self.decoder = AttentionDecoder(vocab_size, units, embedding_dim=embedding_dim,
                                        cell=cell, num_layers=num_layers, attention=attention,
                                        dropout=dropout, name="decoder")

    @property
    def image_size(self):
        return self.encoder.image_size

    @property
    def grid_shape(self):
        """`(rows, columns)` of the region grid the decoder attends over."""
        return self.encoder.grid_shape

    def build(self, input_shape=None):
        # Every size follows from the constructor arguments, so the model can be built before
        # its first call (e.g. by `caption`, whose decoding loop cannot create weights).
        self.encoder.build()
        feature_dim = self.encoder.feature_dim
        self.bridge.build([(None, feature_dim)])
        self.decoder.build([(None, None), (None, None, feature_dim)])
        self.built = True

    def encode(self, images, training=None):
        """Region features `[B, R, D]` and the decoder's initial states from their mean."""
        regions = self.encoder(images, training=training)
        return regions, self.bridge([ops.mean(regions, axis=1)])

    def call(self, inputs, training=None):
        regions, states = self.encode(inputs["image"], training=training)
        logits, attention = self.decoder([inputs["target_in"], regions, *states],
                                         training=training)
        return {"logits": logits, "attention": attention}

    def caption(self, images, method="greedy", max_length=32, **settings):
        """Decodes caption ids for images `[B, image_size, image_size, 3]`.

        Args:
            images: RGB images in [0, 255] of the model's `image_size`.
            method: `"greedy"`, `"beam"` or `"sample"`.
            max_length: most tokens per caption (the end token counts).
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
        regions, states = self.encode(images, training=False)
        step_fn, state, start = self.decoder.decoding_start(regions, states, None, START_ID,
                                                            never=(PAD_ID, START_ID))
        return decode(method, step_fn, state, start, END_ID, max_length, pad_token=PAD_ID,
                      **settings)

    def get_config(self):
        config = super().get_config()
        encoder = self.encoder.get_config()
        config.update({key: encoder[key] for key in (
            "image_size", "backbone", "filters", "feature_dim", "backbone_weights",
            "trainable_backbone")})
        config.update({
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "cell": self.cell,
            "num_layers": self.num_layers,
            "attention": self.attention,
            "bridge": self.bridge_mode,
            "dropout": self.dropout,
        })
        return config
