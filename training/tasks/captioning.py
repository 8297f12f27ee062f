"""Captioning task: images to captions with a CNN encoder and an attention decoder."""

from __future__ import annotations

import dataclasses

import numpy as np
import sacrebleu
import tensorflow as tf

from seqzoo.training.checked_config import CheckedConfig, at_least, one_of, positive_sizes, rate
from seqzoo.training.data.captioned_images import load_captioned_images
from seqzoo.training.tasks import TRAIN_DEFAULTS
from seqzoo.training.tasks.base import Task
from seqzoo.training.tasks.token_loss import token_loss
from seqzoo.zoo.layers.attention_decoder import ATTENTIONS
from seqzoo.zoo.layers.recurrent_cells import CELLS
from seqzoo.zoo.layers.state_bridge import MODES as BRIDGES
from seqzoo.zoo.models.captioning.captioning_serving_module import CaptioningServingModule
from seqzoo.zoo.models.captioning.image_captioner import ImageCaptioner
from seqzoo.zoo.models.captioning.image_encoder import BACKBONES
from seqzoo.zoo.models.translation.translation_tokenizer import (
    PAD_ID,
    TranslationTokenizer,
    normalize_texts,
)

VOCABULARY_FILE = "caption_vocabulary.txt"
EVAL_BATCH_SIZE = 256
LONG_CAPTION_OBJECTS = 3


@dataclasses.dataclass
class CaptioningConfig(CheckedConfig):
    """Model, vocabulary, data and decoding settings of the captioning task.

    Args:
        image_size: side of the square images the model reads (every image is resized to it).
        backbone: "cnn" (small, trained from scratch) or a keras.applications network:
            "mobilenet_v2", "mobilenet_v3_small", "resnet50", "efficientnet_b0".
        filters: channels of each block of the "cnn" backbone (each halves the grid).
        feature_dim: size of each region feature.
        backbone_weights: path of a weights file for a keras.applications backbone ("" for
            random weights; nothing is downloaded).
        trainable_backbone: fine-tune the backbone (true) or freeze it (false).
        embedding_dim: size of the word embeddings.
        units: size of the decoder cells.
        cell: "lstm" or "gru".
        num_layers: stacked decoder cells.
        attention: "bahdanau", "luong_general", "luong_dot" (needs feature_dim == units) or
            "none" (Show and Tell: the image reaches the decoder through its initial state only).
        bridge: "dense" (initial state from the mean region feature), "learned" or "zeros".
        dropout: dropout inside the decoder.
        attention_regularization: weight of Show, Attend and Tell's doubly stochastic
            regularization, `sum_regions (1 - sum_words attention)^2`; 0 turns it off.
        lowercase: lowercase captions.
        max_caption_length: caption tokens kept; decoding writes at most this many plus the end.
        vocab_size: most words kept (the most frequent in the training captions).
        min_count: words seen fewer times in the training captions are unknown.
        beam_width: beam width of the exported `serving_default`, `nbest`, `attention`, `pixels`.
        length_penalty: beam search length penalty exponent (0 ranks by log-probability).
        num_train: training pictures generated for built-in data.
        num_validation: validation pictures generated for built-in data.
        max_examples: for TFDS and files, read at most this many training images; 0 reads all.
        eval_examples: validation images captioned by `evaluate` (0 = all).
        eval_beam: also report beam-search metrics in `evaluate`.
    """

    image_size: int = at_least(1, 48)
    backbone: str = one_of(BACKBONES, "cnn")
    filters: list[int] = positive_sizes([16, 32, 32])
    feature_dim: int = at_least(1, 64)
    backbone_weights: str = ""
    trainable_backbone: bool = True
    embedding_dim: int = at_least(1, 32)
    units: int = at_least(1, 64)
    cell: str = one_of(CELLS, "lstm")
    num_layers: int = at_least(1, 1)
    attention: str = one_of(ATTENTIONS, "bahdanau")
    bridge: str = one_of(BRIDGES, "dense")
    dropout: float = rate(0.0)
    attention_regularization: float = at_least(0.0, 0.0)
    lowercase: bool = True
    max_caption_length: int = at_least(1, 32)
    vocab_size: int = at_least(1, 10000)
    min_count: int = at_least(1, 1)
    beam_width: int = at_least(1, 4)
    length_penalty: float = at_least(0.0, 0.0)
    num_train: int = at_least(1, 20000)
    num_validation: int = at_least(1, 1000)
    max_examples: int = at_least(0, 0)
    eval_examples: int = at_least(0, 1000)
    eval_beam: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.attention == "luong_dot" and self.feature_dim != self.units:
            raise ValueError("model.attention=luong_dot needs model.feature_dim equal to "
                             f"model.units; received {self.feature_dim} and {self.units}.")


class CaptioningTask(Task):
    """Trains an `ImageCaptioner` on built-in pictures of shapes, TFDS COCO captions or a COCO
    captions file.

    `prepare()` loads the images (resized to `image_size`) with their reference captions and
    builds the caption vocabulary from the training captions, or reloads it from
    `run_dir/assets/` so a resumed run and the export use the same ids. Every reference caption
    is a training example. Batches hold `image` (uint8 pixels), `target_in` and `target_out`.
    `evaluate()` captions the validation images and returns, for greedy decoding,
    `exact_match` (the caption equals one of the references, compared word by word) and
    corpus BLEU-4 `bleu` (sacrebleu, against all references), plus `beam_exact_match` and
    `beam_bleu` with `eval_beam`; on built-in data also `exact_match_objects_N` for pictures of
    N objects and `exact_match_objects_3plus`.

    Example:
    >>> task = CaptioningTask(CaptioningConfig(units=32), data="builtin", run_dir="runs/c")
    >>> task.prepare()
    >>> model = task.build_model()
    """

    name = "captioning"
    Config = CaptioningConfig
    # Measured on 2 CPU cores: the default model reaches >= 95% exact captions on the built-in
    # pictures in this budget (README, `python -m bench captioning`).
    train_defaults = TRAIN_DEFAULTS["captioning"]
    tiny_run = ("train.steps=2", "train.batch_size=8", "model.image_size=32",
                "model.filters=[4, 8]", "model.feature_dim=8", "model.units=8",
                "model.embedding_dim=8", "model.num_train=40", "model.num_validation=4",
                "model.eval_examples=4", "model.eval_beam=false", "model.max_caption_length=8",
                "model.beam_width=2")

    # The decoding functions of the last model `caption` saw, as (model, {method: function}).
    _decoders = (None, None)

    def prepare(self):
        c = self.config
        self.train, self.validation = load_captioned_images(
            self.data, image_size=c.image_size, seed=self.seed, builtin_train=c.num_train,
            builtin_validation=c.num_validation, max_examples=c.max_examples or None)
        _, captions = self.train.pairs()
        vocabulary = self.cached_vocabulary(VOCABULARY_FILE, lambda: (
            TranslationTokenizer.build_vocabulary(
                captions, level="word", lowercase=c.lowercase, max_size=c.vocab_size,
                min_count=c.min_count)))
        self.tokenizer = TranslationTokenizer(
            vocabulary, level="word", lowercase=c.lowercase, max_length=c.max_caption_length,
            add_end=True, name="caption_tokenizer")

    def train_dataset(self, global_batch_size, input_context=None):
        index, captions = self.train.pairs()
        images, size = self.train.images, self.config.image_size

        def batch_of(index, captions):
            # Images stay in host memory and are gathered per batch, so large sets never become
            # a graph constant.
            pixels = tf.numpy_function(lambda i: images[i], [index], tf.uint8, stateful=False)
            pixels.set_shape([None, size, size, 3])
            return {"image": pixels, **self.tokenizer.teacher_forcing(captions)}

        dataset = tf.data.Dataset.from_tensor_slices((index, captions))
        dataset = self.shuffled_batches(dataset, len(captions), global_batch_size, input_context)
        return dataset.map(batch_of, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE)

    def build_model(self):
        c = self.config
        model = ImageCaptioner(
            self.tokenizer.vocabulary_size, image_size=c.image_size, backbone=c.backbone,
            filters=tuple(c.filters), feature_dim=c.feature_dim,
            backbone_weights=c.backbone_weights or None, trainable_backbone=c.trainable_backbone,
            embedding_dim=c.embedding_dim, units=c.units, cell=c.cell, num_layers=c.num_layers,
            attention=c.attention, bridge=c.bridge, dropout=c.dropout,
        )
        # Creates every weight now: the loop builds the optimizer right after this call.
        model.build()
        return model

    def compute_loss(self, model, batch, training):
        outputs = model({"image": batch["image"], "target_in": batch["target_in"]},
                        training=training)
        loss, metrics = token_loss(outputs["logits"], batch["target_out"])
        weight = self.config.attention_regularization
        if weight and self.config.attention != "none":
            # Show, Attend and Tell's doubly stochastic term: every region should receive about
            # one unit of attention over the whole caption.
            valid = tf.cast(tf.not_equal(batch["target_out"], PAD_ID), outputs["attention"].dtype)
            coverage = tf.reduce_sum(outputs["attention"] * valid[..., None], axis=1)
            penalty = tf.cast(weight * tf.reduce_sum(tf.square(1.0 - coverage), axis=1),
                              loss.dtype)
            loss += penalty
            metrics["attention_penalty"] = penalty
        return loss, metrics

    def export_module(self, model):
        c = self.config
        return CaptioningServingModule(model, self.tokenizer, beam_width=c.beam_width,
                                       length_penalty=c.length_penalty,
                                       max_length=c.max_caption_length + 1)

    def caption(self, model, images, method="greedy"):
        """Captions (list of str) of uint8 or float pixels `[N, image_size, image_size, 3]`,
        through the export module's decoding (`method` "greedy" or "beam")."""
        cached_model, decoders = self._decoders
        if cached_model is not model:
            module = self.export_module(model)
            spec = [tf.TensorSpec([None, self.config.image_size, self.config.image_size, 3],
                                  tf.float32)]
            decoders = {"greedy": tf.function(module.greedy_outputs, input_signature=spec),
                        "beam": tf.function(module.best_outputs, input_signature=spec)}
            self._decoders = (model, decoders)
        function = decoders[method]
        captions = []
        for start in range(0, len(images), EVAL_BATCH_SIZE):
            batch = tf.constant(images[start:start + EVAL_BATCH_SIZE], tf.float32)
            captions.extend(c.decode("utf-8") for c in function(batch)["caption"].numpy())
        return captions

    def _normal(self, hypotheses, references):
        """Captions and references split and cased as the tokenizer reads them, words joined
        by single spaces, so that they compare word by word."""
        flat = [text for refs in references for text in refs]
        texts = normalize_texts(list(hypotheses) + flat, "word", self.config.lowercase)
        hypotheses, flat = texts[:len(hypotheses)], iter(texts[len(hypotheses):])
        return hypotheses, [[next(flat) for _ in refs] for refs in references]

    def exact_matches(self, hypotheses, references) -> np.ndarray:
        """Whether each caption equals one of its image's references: bool `[len(hypotheses)]`."""
        hypotheses, references = self._normal(hypotheses, references)
        return np.array([h in refs for h, refs in zip(hypotheses, references)])

    def score(self, hypotheses, references) -> dict[str, float]:
        """Exact-caption rate and corpus BLEU-4 against all references.

        Args:
            hypotheses: list of str, one caption per image.
            references: list of lists of str, the reference captions of each image.
        """
        normal_hypotheses, normal_references = self._normal(hypotheses, references)
        # sacrebleu takes one stream per reference position; images with fewer references pad
        # theirs with None.
        most = max(len(refs) for refs in normal_references)
        streams = [[refs[k] if k < len(refs) else None for refs in normal_references]
                   for k in range(most)]
        bleu = sacrebleu.corpus_bleu(normal_hypotheses, streams, tokenize="13a")
        return {"exact_match": float(self.exact_matches(hypotheses, references).mean()),
                "bleu": float(bleu.score)}

    def evaluate(self, model):
        data = self.validation
        if self.config.eval_examples:
            data = data.subset(range(min(self.config.eval_examples, len(data))))
        greedy = self.caption(model, data.images, "greedy")
        metrics = self.score(greedy, data.captions)
        if data.object_counts is not None:
            exact = self.exact_matches(greedy, data.captions)
            for count in np.unique(data.object_counts):
                metrics[f"exact_match_objects_{count}"] = float(
                    exact[data.object_counts == count].mean())
            long = data.object_counts >= LONG_CAPTION_OBJECTS
            if long.any():
                metrics[f"exact_match_objects_{LONG_CAPTION_OBJECTS}plus"] = float(
                    exact[long].mean())
                metrics[f"bleu_objects_{LONG_CAPTION_OBJECTS}plus"] = self.score(
                    [greedy[i] for i in np.flatnonzero(long)],
                    [data.captions[i] for i in np.flatnonzero(long)])["bleu"]
        if self.config.eval_beam:
            beam = self.score(self.caption(model, data.images, "beam"), data.captions)
            metrics.update({f"beam_{name}": value for name, value in beam.items()})
        return metrics

    def warmup_inputs(self):
        images = self.validation.images[:3]
        return {"image": [tf.io.encode_png(image).numpy() for image in images],
                "pixels": [image.astype(np.float32) for image in images]}
