"""Frame labeling task: a video in, one label per frame out (temporal action segmentation)."""

from __future__ import annotations

import dataclasses
import keras
import numpy as np
import tensorflow as tf

from seqzoo.training.checked_config import (
    CheckedConfig, above, at_least, one_of, positive_sizes, rate,
)
from seqzoo.training.data import frame_labeling_builtin
from seqzoo.training.data.sources import parse_source
from seqzoo.training.tasks import TRAIN_DEFAULTS
from seqzoo.training.tasks.base import Task
from seqzoo.zoo.layers.bidirectional_encoder import MERGE_MODES
from seqzoo.zoo.layers.recurrent_cells import CELLS
from seqzoo.zoo.models.frame_labeling.frame_labeler import TEMPORAL_MODELS, FrameLabeler
from seqzoo.zoo.models.frame_labeling.frame_labeling_serving_module import (
    FrameLabelingServingModule,
)
from seqzoo.zoo.models.frame_labeling.segment_metrics import segmentation_scores
from seqzoo.zoo.models.frame_labeling.smoothing_loss import truncated_mse_smoothing

CLASS_NAMES_FILE = "class_names.txt"
BUILTIN_NAMES = ("", "moving_square")
EVAL_BATCH_SIZE = 64
WARMUP_FRAMES = 8


@dataclasses.dataclass
class FrameLabelingConfig(CheckedConfig):
    """Model, loss and data settings of the frame labeling task.

    Args:
        temporal: "bidirectional", "unidirectional" (online labeling; a baseline) or "none"
            (a per-frame classifier; the baseline without recurrence).
        cell: "lstm" or "gru".
        units: size of each recurrent direction (or of the per-frame layer for "none").
        num_layers: stacked recurrent layers.
        merge_mode: "concat", "sum", "ave" or "mul" (bidirectional directions).
        embedding_dim: size of each frame's vector (frame CNN output or feature projection).
        frame_filters: channels of the frame CNN's stride-2 convolutions.
        dropout: dropout on frame vectors, between recurrent layers and before the classifier.
        smoothing_weight: weight of MS-TCN's truncated-MSE smoothing loss (MS-TCN: 0.15);
            0 turns it off.
        smoothing_tau: truncation of the smoothing loss (MS-TCN: 4).
        num_train: videos generated for the built-in training split.
        num_validation: videos generated for each built-in held-out split.
        min_frames, max_frames: range of built-in video lengths.
        frame_size: height and width of built-in frames, in pixels.
        split: split number N of a `file:` directory's `splits/{train,test}.splitN.bundle`.
        sample_rate: for `file:` data, train and predict on every sample_rate-th frame (MS-TCN
            uses 2 on 50Salads); predictions are repeated back to the full frame rate.
        background: labels left out of segments by the edit and F1 scores (MS-TCN leaves out
            "background", which GTEA uses); frame accuracy counts them.
    """

    temporal: str = one_of(TEMPORAL_MODELS, "bidirectional")
    cell: str = one_of(CELLS, "lstm")
    units: int = at_least(1, 64)
    num_layers: int = at_least(1, 1)
    merge_mode: str = one_of(MERGE_MODES, "concat")
    embedding_dim: int = at_least(1, 64)
    frame_filters: list[int] = positive_sizes([16, 32])
    dropout: float = rate(0.0)
    smoothing_weight: float = at_least(0, 0.0)
    smoothing_tau: float = above(0, 4.0)
    num_train: int = at_least(1, 2500)
    num_validation: int = at_least(1, 200)
    min_frames: int = at_least(1, 30)
    max_frames: int = at_least(1, 60)
    frame_size: int = at_least(16, 24)
    split: int = at_least(1, 1)
    sample_rate: int = at_least(1, 1)
    background: list[str] = dataclasses.field(default_factory=lambda: ["background"])

    def __post_init__(self):
        super().__post_init__()
        if self.max_frames < self.min_frames:
            raise ValueError(f"model.max_frames ({self.max_frames}) must be at least "
                             f"model.min_frames ({self.min_frames}).")


class FrameLabelingTask(Task):
    """Trains a `FrameLabeler` on built-in videos or on MS-TCN feature directories.

    `--data builtin` (or `builtin:moving_square`) generates videos of a square whose per-frame
    action (still, left, right, up, down, grow, shrink) only shows across frames (see
    `seqzoo.training.data.frame_labeling_builtin`); the model reads raw frames. `--data
    file:DIR` reads precomputed features in the MS-TCN layout (see
    `seqzoo.training.data.mstcn_files`); the model reads features. No TFDS dataset has
    per-frame action labels, so `tfds:` is refused.

    Batches are dicts of `frames` (or `features`), `labels` int32 `[batch, time]` and
    `lengths` int32 `[batch]`, padded to the longest video of the batch. The loss of a video
    is its frames' mean cross-entropy (plus the smoothing loss when weighted), so every video
    counts the same. `evaluate()` labels the held-out videos and returns MS-TCN's metrics
    `accuracy`, `edit`, `f1@10`, `f1@25` and `f1@50` (and the same with `test_` on the
    built-in test split).

    Example:

    >>> task = FrameLabelingTask(FrameLabelingConfig(num_train=100), run_dir="runs/f")
    >>> task.prepare()
    >>> model = task.build_model()
    """

    name = "frame_labeling"
    Config = FrameLabelingConfig
    train_defaults = TRAIN_DEFAULTS["frame_labeling"]
    tiny_run = ("train.steps=2", "train.batch_size=4", "model.num_train=8",
                "model.num_validation=4", "model.min_frames=6", "model.max_frames=10",
                "model.frame_size=16", "model.units=4", "model.embedding_dim=4",
                "model.frame_filters=[4]")

    def __init__(self, config=None, data="builtin", run_dir=None, seed=0):
        super().__init__(config, data=data, run_dir=run_dir, seed=seed)
        self.source = parse_source(data)
        self.splits = None
        self.class_names = None
        self.feature_dim = None
        self._predictor = (None, None)

    @property
    def input_kind(self) -> str:
        return "frames" if self.source.kind == "builtin" else "features"

    def _load_splits(self):
        c = self.config
        if self.source.kind == "builtin":
            if self.source.arg not in BUILTIN_NAMES:
                raise ValueError(
                    f"Unknown builtin dataset {self.source.arg!r} for the frame_labeling task; "
                    "accepted: builtin, builtin:moving_square."
                )
            splits = frame_labeling_builtin.load(
                c.num_train, c.num_validation, seed=self.seed, min_frames=c.min_frames,
                max_frames=c.max_frames, frame_size=c.frame_size)
            return splits, list(frame_labeling_builtin.CLASS_NAMES)
        if self.source.kind == "tfds":
            raise ValueError(
                f"No TFDS dataset fits frame labeling (tfds:{self.source.arg}): TFDS has no "
                "video dataset with an action label per frame (ucf101 labels whole clips; davis, "
                "youtube_vis and tao label objects). Accepted: builtin, or file:DIR with "
                "features in the MS-TCN layout (Breakfast, 50Salads, GTEA)."
            )
        from seqzoo.training.data.mstcn_files import load_mstcn

        splits, class_names = load_mstcn(self.source.arg, split=c.split, seed=self.seed)
        return splits, class_names

    def prepare(self):
        self.splits, class_names = self._load_splits()
        if self.input_kind == "features":
            from seqzoo.training.data.mstcn_files import load_features

            self.feature_dim = load_features(self.splits["train"][0]).shape[1]
        self.class_names = self.cached_vocabulary(CLASS_NAMES_FILE, lambda: list(class_names))
        if self.class_names != list(class_names):
            raise ValueError(
                f"The run's saved class names {self.class_names} differ from those of data "
                f"{self.data!r} ({list(class_names)}); use a new run directory."
            )

    def train_dataset(self, global_batch_size, input_context=None):
        train = self.splits["train"]
        if self.input_kind == "frames":
            dataset = tf.data.Dataset.from_tensor_slices(
                {"frames": train.frames, "labels": train.labels, "lengths": train.lengths})
            batches = self.shuffled_batches(dataset, len(train), global_batch_size,
                                            input_context)
            return batches.map(_trim_to_longest)
        indices = tf.data.Dataset.range(len(train))
        batches = self.shuffled_batches(indices, len(train), global_batch_size, input_context)
        return batches.map(self._load_feature_batch, num_parallel_calls=tf.data.AUTOTUNE)

    def _load_feature_batch(self, indices):
        """A batch of `file:` videos by index: features read from disk and padded."""
        from seqzoo.training.data.mstcn_files import load_features

        def load(numbers):
            videos = [self.splits["train"][int(n)] for n in numbers]
            rate = self.config.sample_rate
            features = [load_features(video, rate) for video in videos]
            lengths = np.array([len(f) for f in features], np.int32)
            padded = np.zeros((len(videos), lengths.max(), self.feature_dim), np.float32)
            labels = np.zeros((len(videos), lengths.max()), np.int32)
            for row, (video, f) in enumerate(zip(videos, features)):
                padded[row, :len(f)] = f
                labels[row, :len(f)] = video.labels[::rate]
            return padded, labels, lengths

        features, labels, lengths = tf.numpy_function(
            load, [indices], [tf.float32, tf.int32, tf.int32], stateful=False)
        features.set_shape([None, None, self.feature_dim])
        labels.set_shape([None, None])
        lengths.set_shape([None])
        return {"features": features, "labels": labels, "lengths": lengths}

    def build_model(self):
        c = self.config
        model = FrameLabeler(
            self.class_names, input_kind=self.input_kind, frame_size=(c.frame_size, c.frame_size),
            feature_dim=self.feature_dim, frame_filters=tuple(c.frame_filters),
            embedding_dim=c.embedding_dim, temporal=c.temporal, cell=c.cell, units=c.units,
            num_layers=c.num_layers, merge_mode=c.merge_mode, dropout=c.dropout,
        )
        # Creates every weight now: the loop builds the optimizer right after this call.
        model.build()
        return model

    def compute_loss(self, model, batch, training):
        labels, lengths = batch["labels"], batch["lengths"]
        logits = model({self.input_kind: batch[self.input_kind], "lengths": lengths},
                       training=training)
        mask = tf.sequence_mask(lengths, tf.shape(labels)[1], tf.float32)
        frames = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        cross_entropy = keras.losses.sparse_categorical_crossentropy(labels, logits,
                                                                     from_logits=True)
        per_video = tf.reduce_sum(cross_entropy * mask, axis=1) / frames
        if self.config.smoothing_weight:
            per_video += self.config.smoothing_weight * truncated_mse_smoothing(
                logits, mask > 0, self.config.smoothing_tau)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels),
                          tf.float32)
        return per_video, {"frame_accuracy": tf.reduce_sum(correct * mask, axis=1) / frames}

    def predict_labels(self, model, split):
        """Predicted class indices of every video of `split`, one int array per video."""
        cached_model, predictor = self._predictor
        if cached_model is not model:
            if self.input_kind == "frames":
                size = self.config.frame_size
                video_spec = tf.TensorSpec([None, None, size, size, 3], tf.uint8)
            else:
                video_spec = tf.TensorSpec([None, None, self.feature_dim], tf.float32)
            predictor = tf.function(
                lambda videos, lengths: tf.argmax(
                    model({self.input_kind: videos, "lengths": lengths}, training=False),
                    axis=-1, output_type=tf.int32),
                input_signature=[video_spec, tf.TensorSpec([None], tf.int32)])
            self._predictor = (model, predictor)
        videos = self.splits[split]
        if self.input_kind == "frames":
            predicted = []
            for start in range(0, len(videos), EVAL_BATCH_SIZE):
                lengths = videos.lengths[start:start + EVAL_BATCH_SIZE]
                batch = videos.frames[start:start + EVAL_BATCH_SIZE, :lengths.max()]
                rows = predictor(batch, lengths).numpy()
                predicted.extend(row[:length] for row, length in zip(rows, lengths))
            return predicted
        from seqzoo.training.data.mstcn_files import load_features

        rate = self.config.sample_rate
        predicted = []
        for video in videos:
            features = load_features(video, rate)
            row = predictor(features[None], np.array([len(features)], np.int32)).numpy()[0]
            # Predictions at the sampled rate stand for the `rate` frames that follow them.
            predicted.append(np.repeat(row, rate)[:video.num_frames])
        return predicted

    def true_labels(self, split):
        """Ground-truth class indices of every video of `split`, one int array per video."""
        videos = self.splits[split]
        if self.input_kind == "frames":
            return [videos.video(index)[1] for index in range(len(videos))]
        return [video.labels for video in videos]

    def evaluate(self, model):
        background = [self.class_names.index(name) for name in self.config.background
                      if name in self.class_names]
        metrics = {}
        for split, prefix in (("validation", ""), ("test", "test_")):
            if split not in self.splits:
                continue
            scores = segmentation_scores(self.predict_labels(model, split), self.true_labels(split),
                                         background=background)
            metrics.update({f"{prefix}{name}": value for name, value in scores.items()})
        return metrics

    def export_module(self, model):
        return FrameLabelingServingModule(model)

    def warmup_inputs(self):
        videos = self.splits["validation"]
        if self.input_kind == "frames":
            clips = [videos.video(index)[0][:WARMUP_FRAMES]
                     for index in range(min(2, len(videos)))]
            encoded = [np.array([tf.io.encode_png(frame).numpy() for frame in clip], object)
                       for clip in clips]
            return {"frames": clips, "encoded_frames": encoded,
                    "lengths": [len(clip) for clip in clips]}
        from seqzoo.training.data.mstcn_files import load_features

        clips = [load_features(video)[:WARMUP_FRAMES] for video in videos[:2]]
        return {"features": clips, "lengths": [len(clip) for clip in clips]}


def _trim_to_longest(batch):
    """Cuts a batch of padded videos to its longest one, so no step runs over all-padding."""
    longest = tf.reduce_max(batch["lengths"])
    return {"frames": batch["frames"][:, :longest], "labels": batch["labels"][:, :longest],
            "lengths": batch["lengths"]}
