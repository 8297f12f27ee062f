"""FrameLabelingTask: learns built-in motion labels a single frame cannot give, first step under
MirroredStrategy equal to one device, MS-TCN feature directories, restore and config errors, and
`seqzoo timeline` on the trained run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from first_step import first_step
from mstcn_layout import LABELS, video_labels, write_mstcn

from seqzoo.training import loop, run_directory
from seqzoo.training.tasks.frame_labeling import FrameLabelingConfig, FrameLabelingTask

SEQZOO = os.path.join(os.path.dirname(sys.executable), "seqzoo")
LEARNING_OVERRIDES = [
    "train.strategy=one_device", "train.steps=250", "train.batch_size=16",
    "train.learning_rate=0.005", "train.checkpoint_every=250", "train.log_every=50",
    "model.num_train=400", "model.num_validation=60", "model.min_frames=24",
    "model.max_frames=40", "model.frame_size=16", "model.units=32", "model.embedding_dim=32",
    "model.frame_filters=[8,16]",
]
TINY = FrameLabelingConfig(num_train=8, num_validation=4, min_frames=6, max_frames=10,
                           frame_size=16, units=4, embedding_dim=4, frame_filters=[4])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("frame_labeling_run")
    config = run_directory.configure("frame_labeling", run_dir, overrides=LEARNING_OVERRIDES)
    return run_dir, loop.train(config, run_dir, progress=False)


def test_learns_motion_labels_and_segments(trained):
    run_dir, metrics = trained
    # The default run (1500 steps of 32 videos) reaches 0.977 and F1@50 0.944 (README); these
    # 250 steps of 16 short videos reach about 0.65 and 0.57, far above the 1/7 of guessing
    # labels that no single frame shows.
    assert metrics["accuracy"] >= 0.55, metrics
    assert metrics["f1@50"] >= 0.45, metrics
    assert metrics["test_accuracy"] >= 0.55, metrics
    assert metrics["f1@10"] >= metrics["f1@25"] >= metrics["f1@50"]
    assert json.loads((run_dir / "metrics.json").read_text()) == pytest.approx(metrics)
    task, model = run_directory.restore(run_dir)
    assert task.evaluate(model) == pytest.approx(metrics, abs=1e-6)


def test_a_per_frame_classifier_with_the_same_budget_stays_near_chance(trained, tmp_path):
    # No single frame shows its motion: without recurrence (model.temporal=none) the same 250
    # steps stay near the 1/7 of guessing, far below the bidirectional model (bench
    # frame_labeling compares the three models at the default budget).
    _, metrics = trained
    config = run_directory.configure("frame_labeling", tmp_path, overrides=LEARNING_OVERRIDES + [
        "model.temporal=none"])
    per_frame = loop.train(config, tmp_path, progress=False)
    assert per_frame["accuracy"] <= 0.35, per_frame
    assert metrics["accuracy"] >= per_frame["accuracy"] + 0.25, (metrics, per_frame)


def test_timeline_command_draws_a_held_out_video(trained, tmp_path):
    run_dir, _ = trained
    task, model = run_directory.restore(run_dir)
    predicted, truth = task.predict_labels(model, "validation")[3], task.true_labels("validation")[3]
    result = subprocess.run([SEQZOO, "timeline", str(run_dir), "--video", "3", "--out",
                             str(tmp_path / "t.png")], capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert f"{run_dir.name}: frame accuracy {np.mean(predicted == truth):.3f}" in result.stdout
    assert f"Timeline of {len(truth)} frames drawn to {tmp_path / 't.png'}" in result.stdout
    assert tf.io.decode_png((tmp_path / "t.png").read_bytes()).shape[-1] in (3, 4)


def test_first_step_under_mirrored_equals_one_device():
    config = FrameLabelingConfig(**{**TINY.__dict__, "smoothing_weight": 0.15})
    train = run_directory.configure("frame_labeling", overrides=[
        "train.learning_rate=0.01", "train.batch_size=8"]).train
    task = FrameLabelingTask(config, seed=0)
    task.prepare()
    weights = task.build_model().get_weights()
    one = first_step("one_device", task, train, weights)
    two = first_step("mirrored", task, train, weights)
    assert two[3].num_replicas_in_sync == 2
    np.testing.assert_allclose(two[0], one[0], rtol=1e-5)
    np.testing.assert_allclose(two[1]["frame_accuracy"], one[1]["frame_accuracy"], rtol=1e-5)
    changed = 0
    for got, want, start in zip(two[2], one[2], weights):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        changed += not np.allclose(want, start)
    assert changed == len(weights)


def test_feature_directories_train_evaluate_and_export(tmp_path):
    videos = {f"v{i}": video_labels(20 + i, i) for i in range(6)}
    data = write_mstcn(tmp_path / "gtea", videos, feature_dim=6, splits={
        "train.split1.bundle": ["v0", "v1", "v2", "v3"],
        "test.split1.bundle": ["v4", "v5"]})
    run_dir = tmp_path / "run"
    config = run_directory.configure("frame_labeling", run_dir, overrides=[
        f"data=file:{data}", "train.steps=2", "train.batch_size=2", "train.strategy=one_device",
        "model.units=4", "model.embedding_dim=4", "model.sample_rate=2",
        "model.smoothing_weight=0.15"])
    metrics = loop.train(config, run_dir, progress=False)
    assert set(metrics) == {"accuracy", "edit", "f1@10", "f1@25", "f1@50"}

    task, model = run_directory.restore(run_dir)
    assert task.class_names == LABELS and task.feature_dim == 6
    predicted = task.predict_labels(model, "validation")
    assert [len(p) for p in predicted] == [24, 25]  # repeated back to the full frame rate
    module = task.export_module(model)
    assert set(module.signatures) == {"serving_default", "features"}
    features = np.load(data / "features" / "v4.npy").T[::2][None]
    out = module.signatures["features"](tf.constant(features, tf.float32), tf.constant([12]))
    labels = [LABELS.index(label.decode()) for label in out["labels"].numpy()[0]]
    np.testing.assert_array_equal(labels, predicted[0][::2])


def test_background_is_left_out_of_segments(tmp_path):
    task = FrameLabelingTask(FrameLabelingConfig(background=["background"]))
    task.class_names = LABELS
    task.splits, task.prepared = {"validation": None}, True
    truth = [np.array([0, 0, 1, 1, 0, 2, 2])]
    task.predict_labels = lambda model, split: [np.array([1, 0, 1, 1, 0, 2, 2])]
    task.true_labels = lambda split: truth
    scores = task.evaluate(model=None)
    # Segments without background: predicted take, take, pour; true take, pour.
    assert scores["edit"] == pytest.approx(1 - 1 / 3)
    assert scores["accuracy"] == pytest.approx(6 / 7)


def test_class_names_are_kept_in_the_run(tmp_path):
    task = FrameLabelingTask(TINY, run_dir=tmp_path)
    task.prepare()
    saved = (tmp_path / "assets" / "class_names.txt").read_text().split("\n")
    assert saved == task.class_names == ["still", "left", "right", "up", "down", "grow", "shrink"]
    (tmp_path / "assets" / "class_names.txt").write_text("a\nb")
    with pytest.raises(ValueError, match=r"saved class names \['a', 'b'\] differ"):
        FrameLabelingTask(TINY, run_dir=tmp_path).prepare()


@pytest.mark.parametrize("data, message", [
    ("builtin:dates", "Unknown builtin dataset 'dates' .* accepted: builtin, "
                      "builtin:moving_square"),
    ("tfds:ucf101", "No TFDS dataset fits frame labeling .* Accepted: builtin, or file:DIR"),
])
def test_unknown_data_sources_list_accepted(data, message):
    with pytest.raises(ValueError, match=message):
        FrameLabelingTask(TINY, data=data).prepare()


@pytest.mark.parametrize("override, message", [
    ("model.temporal=causal", "model.temporal 'causal'; accepted: bidirectional, unidirectional"),
    ("model.max_frames=3", r"model.max_frames \(3\) must be at least model.min_frames"),
    ("model.frame_filters=[]", "model.frame_filters must be a non-empty list"),
    ("model.smoothing_tau=0", "model.smoothing_tau must be above 0"),
    ("model.frame_size=8", "model.frame_size must be at least 16"),
])
def test_bad_config_is_rejected_with_accepted_values(override, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run_directory.configure("frame_labeling", tmp_path, overrides=[override])
