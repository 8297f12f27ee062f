"""FrameEncoder and FrameLabeler: layer contract, masking, causality of each temporal model,
.keras round trips, and the smoothing loss against a NumPy computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_contract import run_layer_contract

from seqzoo.zoo.models.frame_labeling import FrameEncoder, FrameLabeler
from seqzoo.zoo.models.frame_labeling.smoothing_loss import truncated_mse_smoothing

CLASSES = ["still", "left", "right"]
LENGTHS = np.array([6, 4, 1], np.int32)
SMALL = {"frame_size": (16, 16), "frame_filters": (4,), "embedding_dim": 6, "units": 5}


def _frames(batch=3, time=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, time, size, size, 3)).astype(np.uint8)


def _mask(lengths=LENGTHS, time=6):
    return np.arange(time)[None, :] < lengths[:, None]


def test_frame_encoder_contract(tmp_path):
    run_layer_contract(lambda: FrameEncoder((16, 16), filters=(4, 8), output_dim=7), _frames(),
                       mask=_mask(), expected_output_shapes=(3, 6, 7),
                       # Kernel and bias of each of the two convolutions and the dense layer.
                       expected_num_trainable_weights=6, tmp_path=tmp_path)


def test_frame_encoder_encodes_each_frame_alone_and_scales_uint8():
    encoder = FrameEncoder((16, 16), filters=(4,), output_dim=5)
    frames = _frames()
    batch = encoder(frames).numpy()
    single = encoder(frames[2:3, 4:5]).numpy()
    np.testing.assert_allclose(batch[2, 4], single[0, 0], atol=1e-6)
    as_float = encoder(frames.astype(np.float32) / 255.0).numpy()
    np.testing.assert_allclose(batch, as_float, atol=1e-6)


def test_frame_encoder_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"`frame_size` must be \(height, width\)"):
        FrameEncoder((16,))
    with pytest.raises(ValueError, match=r"`filters\[1\]` must be a positive integer"):
        FrameEncoder((16, 16), filters=(4, 0))


@pytest.mark.parametrize("temporal", ["bidirectional", "unidirectional", "none"])
def test_keras_round_trip_and_padding(temporal, tmp_path):
    model = FrameLabeler(CLASSES, temporal=temporal, num_layers=2, cell="gru", **SMALL)
    frames = _frames()
    inputs = {"frames": frames, "lengths": LENGTHS}
    logits = model(inputs).numpy()
    assert logits.shape == (3, 6, 3)
    mask = _mask()
    assert np.all(logits[~mask] == 0.0)

    noisy = np.where(mask[:, :, None, None, None], frames, 255 - frames)
    np.testing.assert_allclose(model({"frames": noisy, "lengths": LENGTHS}).numpy()[mask],
                               logits[mask], atol=1e-5)
    alone = model({"frames": frames[1:2, :4], "lengths": LENGTHS[1:2]}).numpy()
    np.testing.assert_allclose(alone[0], logits[1, :4], atol=1e-5)

    model.save(tmp_path / "labeler.keras")
    reloaded = keras.saving.load_model(tmp_path / "labeler.keras")
    assert isinstance(reloaded, FrameLabeler)
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_allclose(reloaded(inputs).numpy(), logits, atol=1e-6)


@pytest.mark.parametrize("temporal, past_changes, others_change", [
    ("bidirectional", True, True),
    ("unidirectional", False, True),
    ("none", False, False),
])
def test_what_a_changed_frame_reaches(temporal, past_changes, others_change):
    """Changing frame 3 changes frames 0-2 only for the bidirectional model, and frames 4-5
    for both recurrent ones; the per-frame classifier changes frame 3 alone."""
    model = FrameLabeler(CLASSES, temporal=temporal, **SMALL)
    frames = _frames(batch=1)
    changed = frames.copy()
    changed[0, 3] = 255 - changed[0, 3]
    before = model({"frames": frames}).numpy()[0]
    after = model({"frames": changed}).numpy()[0]
    moved = np.abs(after - before).max(axis=-1) > 1e-6
    assert moved[3]
    assert moved[:3].all() == past_changes and moved[:3].any() == past_changes
    assert moved[4:].all() == others_change and moved[4:].any() == others_change


def test_features_input_and_checkpoint_tracking(tmp_path):
    model = FrameLabeler(CLASSES, input_kind="features", feature_dim=10, temporal="unidirectional",
                         num_layers=2, embedding_dim=6, units=5)
    model.build()
    features = np.random.default_rng(0).normal(size=(3, 6, 10)).astype(np.float32)
    logits = model({"features": features, "lengths": LENGTHS}).numpy()
    assert logits.shape == (3, 6, 3)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    fresh = FrameLabeler(CLASSES, input_kind="features", feature_dim=10,
                         temporal="unidirectional", num_layers=2, embedding_dim=6, units=5)
    fresh.build()
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    np.testing.assert_allclose(fresh({"features": features, "lengths": LENGTHS}).numpy(), logits,
                               atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"class_names": ["a", "a"]}, "at least two distinct names"),
    ({"temporal": "causal"}, "`temporal` must be one of 'bidirectional', 'unidirectional', 'none'"),
    ({"input_kind": "features"}, "`feature_dim` must be a positive integer"),
    ({"dropout": 1.0}, r"`dropout` must be in \[0, 1\)"),
])
def test_bad_arguments_say_what_is_accepted(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrameLabeler(**{"class_names": CLASSES, **kwargs})


def _numpy_smoothing(logits, lengths, tau):
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    losses = []
    for row, length in zip(log_p, lengths):
        pairs = np.minimum((row[1:length] - row[:length - 1]) ** 2, tau**2).mean(-1)
        losses.append(pairs.mean() if length > 1 else 0.0)
    return np.array(losses)


def test_smoothing_loss_hand_example_truncation_and_mask():
    # softmax([2, 0]) = [0.8808, 0.1192]: log-probabilities move by (0.5662, -1.4338) from
    # uniform, squares 0.3206 and 2.0557, mean 1.1881 for the changing pair, 0 for the other.
    logits = tf.constant([[[0.0, 0.0], [2.0, 0.0], [2.0, 0.0]]])
    assert truncated_mse_smoothing(logits).numpy() == pytest.approx([1.1881 / 2], abs=1e-4)
    # A tau below the differences caps every square at tau^2.
    assert truncated_mse_smoothing(logits, tau=0.1).numpy() == pytest.approx([0.01 / 2])

    rng = np.random.default_rng(0)
    values = rng.normal(0, 3, (3, 6, 4)).astype(np.float32)
    got = truncated_mse_smoothing(values, _mask(), tau=2.0).numpy()
    np.testing.assert_allclose(got, _numpy_smoothing(values, LENGTHS, 2.0), rtol=1e-5)
    assert got[2] == 0.0  # one frame: no pair


def test_smoothing_loss_does_not_pull_the_earlier_frame():
    logits = tf.Variable([[[0.0, 1.0], [2.0, 0.0]]])
    with tf.GradientTape() as tape:
        loss = truncated_mse_smoothing(logits)
    gradient = tape.gradient(loss, logits).numpy()
    assert np.all(gradient[0, 0] == 0.0) and np.any(gradient[0, 1] != 0.0)
