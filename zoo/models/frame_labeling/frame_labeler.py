"""Frame labeler: a video (frames or per-frame features) in, one class per frame out."""

from __future__ import annotations

import contextlib

import keras
from keras import ops

from seqzoo.zoo._checks import check_one_of, check_positive_int, check_rate, checked_class_names
from seqzoo.zoo.layers.bidirectional_encoder import MERGE_MODES, BidirectionalEncoder
from seqzoo.zoo.layers.portable_rnn import cudnn_disabled, exporting
from seqzoo.zoo.layers.recurrent_cells import CELLS, LAYER_CLASSES
from seqzoo.zoo.models.frame_labeling.frame_encoder import FrameEncoder

INPUT_KINDS = ("frames", "features")
TEMPORAL_MODELS = ("bidirectional", "unidirectional", "none")


@keras.saving.register_keras_serializable(package="seqzoo")
class FrameLabeler(keras.Model):
    """Labels every frame of a video: per-frame encoder, temporal model, per-frame softmax.

    The synced many-to-many setting of temporal action segmentation. Each frame is first turned
    into a vector on its own: by a `FrameEncoder` (a small CNN) when the input is raw frames, or
    by a linear projection when it is precomputed per-frame features (the research setting of
    Breakfast, 50Salads and GTEA, whose I3D features come from another network). A temporal
    model then reads the vectors over time, and a dense layer gives each frame's class logits:

    - `"bidirectional"`: a `BidirectionalEncoder` (stacked LSTM/GRU); every frame's label can
      use the whole video, past and future.
    - `"unidirectional"`: stacked forward LSTM/GRU layers; a frame's label uses only the frames
      up to it, as online labeling must.
    - `"none"`: a per-frame classifier (a ReLU layer of `units` on each frame's vector), the
      baseline without recurrence.

    Videos of different lengths are right padded in one batch; `lengths` masks the padding, so
    the recurrent states never see it, and the logits there are zeros.

    Args:
        class_names: names of the classes, at least two and distinct, in logit order.
        input_kind: `"frames"` (default: raw frames `[batch, time, height, width, 3]`, uint8
            or float) or `"features"` (float `[batch, time, feature_dim]`).
        frame_size: `(height, width)` of the frames for `"frames"`. Defaults to `(24, 24)`.
        feature_dim: positive int, size of the features for `"features"`.
        frame_filters: channels of the `FrameEncoder` convolutions. Defaults to `(16, 32)`.
        embedding_dim: positive int, size of each frame's vector. Defaults to 64.
        temporal: `"bidirectional"` (default), `"unidirectional"` or `"none"`.
        cell: `"lstm"` (default) or `"gru"`.
        units: positive int, size of each recurrent direction (or of the per-frame layer).
            Defaults to 64.
        num_layers: positive int, stacked recurrent layers. Defaults to 1.
        merge_mode: how the directions of `"bidirectional"` merge: `"concat"` (default),
            `"sum"`, `"ave"` or `"mul"`.
        dropout: float in [0, 1), dropout on the frame vectors, between recurrent layers and
            before the classifier, during training only.
        **kwargs: base `keras.Model` arguments (e.g. `name`).

    Call arguments:
        inputs: dict with `"frames"` (or `"features"`) and optionally `"lengths"`, int
            `[batch]`, the number of valid frames of each video (all of them when absent).
        training: Python bool or None, whether dropout is active.

    Returns:
        float32 logits `[batch, time, len(class_names)]`; zeros after each video's length.

    Example:

    >>> model = FrameLabeler(["walk", "run", "jump"], frame_size=(16, 16), units=8,
    ...                      embedding_dim=8, frame_filters=(4,))
    >>> frames = np.zeros((2, 6, 16, 16, 3), "uint8")
    >>> model({"frames": frames, "lengths": np.array([6, 3])}).shape
    TensorShape([2, 6, 3])
    """

    def __init__(self, class_names, input_kind="frames", frame_size=(24, 24), feature_dim=None,
                 frame_filters=(16, 32), embedding_dim=64, temporal="bidirectional", cell="lstm",
                 units=64, num_layers=1, merge_mode="concat", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        class_names = checked_class_names(class_names)
        check_one_of("input_kind", input_kind, INPUT_KINDS)
        check_one_of("temporal", temporal, TEMPORAL_MODELS)
        check_one_of("cell", cell, CELLS)
        check_one_of("merge_mode", merge_mode, MERGE_MODES)
        for name, value in (("embedding_dim", embedding_dim), ("units", units),
                            ("num_layers", num_layers)):
            check_positive_int(name, value)
        check_rate("dropout", dropout)
        if input_kind == "features":
            check_positive_int("feature_dim", feature_dim)
        self.class_names = class_names
        self.input_kind = input_kind
        self.frame_size = tuple(frame_size)
        self.feature_dim = feature_dim
        self.frame_filters = tuple(frame_filters)
        self.embedding_dim = embedding_dim
        self.temporal = temporal
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.merge_mode = merge_mode
        self.dropout = dropout

        # Layers.
        if input_kind == "frames":
            self.frame_encoder = FrameEncoder(self.frame_size, self.frame_filters, embedding_dim,
                                              name="frame_encoder")
        else:
            self.frame_encoder = keras.layers.Dense(embedding_dim, name="feature_projection")
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        if temporal == "bidirectional":
            self.encoder = BidirectionalEncoder(units, cell=cell, num_layers=num_layers,
                                                merge_mode=merge_mode, dropout=dropout,
                                                name="encoder")
        elif temporal == "unidirectional":
            # One attribute per sublayer: tf.train.Checkpoint does not track layers in a list.
            for index in range(num_layers):
                setattr(self, f"rnn{index}", LAYER_CLASSES[cell](units, return_sequences=True,
                                                                 name=f"rnn{index}"))
            self.between_dropout = keras.layers.Dropout(dropout, name="between_dropout")
        else:
            self.per_frame = keras.layers.Dense(units, activation="relu", name="per_frame")
        self.head_dropout = keras.layers.Dropout(dropout, name="head_dropout")
        self.head = keras.layers.Dense(len(class_names), name="logits")

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def input_name(self):
        """The key of the video in the input dict: `"frames"` or `"features"`."""
        return self.input_kind

    @property
    def temporal_dim(self):
        """Size of the vectors the classifier reads."""
        if self.temporal == "bidirectional":
            return self.encoder.output_dim
        return self.units

    def build(self, input_shape=None):
        # Every size follows from the constructor arguments, so the model can be built (and
        # its optimizer created) before the first batch.
        if self.input_kind == "frames":
            self.frame_encoder.build((None, None, *self.frame_size, 3))
        else:
            self.frame_encoder.build((None, None, self.feature_dim))
        sequence = (None, None, self.embedding_dim)
        if self.temporal == "bidirectional":
            self.encoder.build(sequence)
        elif self.temporal == "unidirectional":
            for index in range(self.num_layers):
                getattr(self, f"rnn{index}").build(sequence)
                sequence = (None, None, self.units)
        else:
            self.per_frame.build(sequence)
        self.head.build((None, None, self.temporal_dim))
        self.built = True

    def call(self, inputs, training=None):
        portable = cudnn_disabled(self) if exporting() else contextlib.nullcontext()
        with portable:
            vectors = self.frame_encoder(inputs[self.input_name])
            mask = self._mask(inputs, vectors)
            return self.label_vectors(vectors, mask, training=training)

    @staticmethod
    def _mask(inputs, vectors):
        lengths = inputs.get("lengths")
        if lengths is None:
            return None
        steps = ops.arange(ops.shape(vectors)[1], dtype="int32")
        return steps[None, :] < ops.cast(lengths, "int32")[:, None]

    def label_vectors(self, vectors, mask=None, training=None):
        """Logits `[batch, time, classes]` of per-frame vectors `[batch, time, embedding_dim]`
        (the frame encoder's outputs), with an optional boolean mask `[batch, time]`."""
        sequence = self.embedding_dropout(vectors, training=training)
        if self.temporal == "bidirectional":
            sequence, _ = self.encoder(sequence, mask=mask, training=training)
        elif self.temporal == "unidirectional":
            for index in range(self.num_layers):
                if index > 0:
                    sequence = self.between_dropout(sequence, training=training)
                sequence = getattr(self, f"rnn{index}")(sequence, mask=mask, training=training)
        else:
            sequence = self.per_frame(sequence)
        logits = ops.cast(self.head(self.head_dropout(sequence, training=training)), "float32")
        if mask is not None:
            logits = logits * ops.cast(mask, "float32")[:, :, None]
        return logits

    def get_config(self):
        config = super().get_config()
        config.update({
            "class_names": list(self.class_names),
            "input_kind": self.input_kind,
            "frame_size": list(self.frame_size),
            "feature_dim": self.feature_dim,
            "frame_filters": list(self.frame_filters),
            "embedding_dim": self.embedding_dim,
            "temporal": self.temporal,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "merge_mode": self.merge_mode,
            "dropout": self.dropout,
        })
        return config
