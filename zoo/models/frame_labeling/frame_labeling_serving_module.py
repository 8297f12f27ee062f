"""The serving signatures of frame labelers: videos in, a label per frame out."""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.image_preprocessing import decode_each


class FrameLabelingServingModule(tf.Module):
    """Wraps a `FrameLabeler` in the signatures it is exported with.

    Every signature takes a right-padded batch of videos and `lengths`, int32 `[batch]`, the
    number of valid frames of each, and returns `labels`, string `[batch, time]` (the most
    probable class of every frame, `""` after the video's end), and `probabilities`, float32
    `[batch, time, classes]` (zeros after the end).

    The inputs' shapes are checked in the graph, and the signatures declare them with an unknown
    rank so that the check is not folded away: TF Serving feeds tensors without comparing them
    with the signature. A video of the wrong rank or channel count, or a `lengths` that is not
    one value per video in [0, time], is an INVALID_ARGUMENT error naming the input, under TF
    Serving as under `seqzoo serve`.

    Signatures of a model on raw frames (`input_kind="frames"`):
        `serving_default`: `frames`, uint8 `[batch, time, height, width, 3]`; frames of another
            size than the model's are resized (bilinear) in the graph.
        `encoded`: `encoded_frames`, string `[batch, time]`, each a JPEG or PNG image of any
            size (so REST clients can send `{"b64": ...}`); entries after a video's length are
            not decoded and may be `""`. A valid entry that is not a JPEG or PNG is an
            INVALID_ARGUMENT error naming `encoded_frames`.

    Signatures of a model on precomputed features (`input_kind="features"`):
        `serving_default` and `features`: `features`, float32 `[batch, time, feature_dim]`.

    Args:
        model: a `FrameLabeler`.
        name: optional module name.

    Example:

    >>> module = FrameLabelingServingModule(model)
    >>> tf.saved_model.save(module, "export/1", signatures=module.signatures)
    >>> module.serve(frames, tf.constant([40, 25]))["labels"].shape
    TensorShape([2, 40])
    """

    def __init__(self, model, name=None):
        super().__init__(name=name)
        self.model = model
        self.class_names = tf.constant(list(model.class_names), tf.string)
        lengths = tf.TensorSpec(None, tf.int32, name="lengths")
        if model.input_kind == "frames":
            self.serve = tf.function(self._serve_frames, input_signature=[
                tf.TensorSpec(None, tf.uint8, name="frames"), lengths])
            self.encoded = tf.function(self._serve_encoded, input_signature=[
                tf.TensorSpec(None, tf.string, name="encoded_frames"), lengths])
        else:
            self.serve = tf.function(self._serve_features, input_signature=[
                tf.TensorSpec(None, tf.float32, name="features"), lengths])

    @property
    def signatures(self):
        """Signature name to function; a property, since SavedModel reserves the attribute."""
        if self.model.input_kind == "frames":
            return {"serving_default": self.serve, "encoded": self.encoded}
        return {"serving_default": self.serve, "features": self.serve}

    @staticmethod
    def _checked(videos, lengths, name, shape):
        """`videos` checked to have `shape` (names for any size, numbers for fixed ones) and
        `lengths` to hold one length in [0, time] per video; both returned with static ranks."""
        expected = f"{name} must be a tensor [{', '.join(map(str, shape))}]"

        def sizes(tensor, rank):
            # Padded, so that reading an axis never fails before the rank check has said why.
            return tf.concat([tf.shape(tensor), tf.zeros([rank], tf.int32)], axis=0)

        actual, counts = sizes(videos, len(shape)), sizes(lengths, 1)
        video_checks = [tf.debugging.assert_equal(tf.rank(videos), len(shape), message=expected)]
        video_checks += [tf.debugging.assert_equal(actual[axis], size, message=expected)
                         for axis, size in enumerate(shape) if isinstance(size, int)]
        # The lengths are checked against the videos once the videos are known to be right.
        with tf.control_dependencies(video_checks):
            length_checks = [
                tf.debugging.assert_equal(tf.rank(lengths), 1,
                                          message="lengths must be a tensor [batch]"),
                tf.debugging.assert_equal(counts[0], actual[0], message="lengths must hold one "
                                          f"value per video of {name}"),
                tf.debugging.assert_non_negative(lengths, message="lengths must be >= 0"),
                tf.debugging.assert_less_equal(
                    lengths, actual[1],
                    message=f"lengths must be <= the time axis (dimension 1) of {name}"),
            ]
        with tf.control_dependencies(length_checks):
            videos, lengths = tf.identity(videos), tf.identity(lengths)
        # Static ranks by reshaping to the inputs' own (padded) sizes: `tf.ensure_shape` would
        # fail on a wrong rank before the checks above could name the input.
        return (tf.reshape(videos, tf.stack([size if isinstance(size, int) else actual[axis]
                                             for axis, size in enumerate(shape)])),
                tf.reshape(lengths, [-1]))

    def _outputs(self, inputs, lengths):
        logits = self.model({**inputs, "lengths": lengths}, training=False)
        mask = tf.sequence_mask(lengths, tf.shape(logits)[1])
        probabilities = tf.nn.softmax(logits) * tf.cast(mask, tf.float32)[:, :, None]
        labels = tf.gather(self.class_names, tf.argmax(logits, axis=-1))
        return {"labels": tf.where(mask, labels, ""), "probabilities": probabilities}

    def _fitted(self, images):
        """uint8 images `[n, h, w, 3]` at the model's frame size (resized when they differ)."""
        height, width = self.model.frame_size
        shape = tf.shape(images)

        def resize():
            resized = tf.image.resize(images, (height, width))
            return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

        same = tf.logical_and(tf.equal(shape[1], height), tf.equal(shape[2], width))
        return tf.ensure_shape(tf.cond(same, lambda: images, resize), [None, height, width, 3])

    def _videos(self, images, shape):
        """Fitted images `[batch * time, H, W, 3]` as videos `[batch, time, H, W, 3]`."""
        height, width = self.model.frame_size
        return tf.reshape(images, tf.stack([shape[0], shape[1], height, width, 3]))

    def _serve_frames(self, frames, lengths):
        frames, lengths = self._checked(frames, lengths, "frames",
                                        ("batch", "time", "height", "width", 3))
        shape = tf.shape(frames)
        images = tf.reshape(frames, tf.concat([[-1], shape[2:]], axis=0))
        return self._outputs({"frames": self._videos(self._fitted(images), shape)}, lengths)

    def _serve_encoded(self, encoded_frames, lengths):
        encoded_frames, lengths = self._checked(encoded_frames, lengths, "encoded_frames",
                                                ("batch", "time"))
        height, width = self.model.frame_size
        shape = tf.shape(encoded_frames)
        valid = tf.reshape(tf.sequence_mask(lengths, shape[1]), [-1])
        flat = tf.reshape(encoded_frames, [-1])
        kept = tf.where(valid)[:, 0]
        time = tf.cast(shape[1], tf.int64)

        def video_and_frame(indices):
            flat_indices = tf.gather(kept, indices)
            return tf.stack([flat_indices // time, flat_indices % time], axis=1)

        decoded = decode_each(tf.gather(flat, kept), lambda image: self._fitted(image[None])[0],
                              tf.TensorSpec([height, width, 3], tf.uint8), "encoded_frames",
                              positions=video_and_frame, where="(video, frame) entries")
        # Frames after a video's length stay black; the model masks them.
        images = tf.scatter_nd(kept[:, None], decoded,
                               tf.stack([tf.size(flat, out_type=tf.int64), height, width, 3]))
        return self._outputs({"frames": self._videos(images, shape)}, lengths)

    def _serve_features(self, features, lengths):
        features, lengths = self._checked(features, lengths, "features",
                                          ("batch", "time", self.model.feature_dim))
        return self._outputs({"features": features}, lengths)
