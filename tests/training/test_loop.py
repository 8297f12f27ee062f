"""The training step against a NumPy hand computation, NaN handling, train/restore round trips."""

import glob
import io
import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

import toy_task
from first_step import first_step, prepared_step
from seqzoo.training import config as run_config
from seqzoo.training import loop, run_directory, train_step
from seqzoo.training.progress_display import ProgressDisplay
from seqzoo.training.strategy import make_strategy
from seqzoo.training.train_step import make_train_step
from seqzoo.training.training_log import TrainingLog


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    from seqzoo.training import tasks

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")


def _config(tmp_path=None, **train):
    train.setdefault("strategy", "one_device")
    overrides = [f"train.{key}={value}" for key, value in train.items()]
    return run_directory.configure("toy", tmp_path, overrides=overrides)


def _one_step(strategy_name, cfg, weights):
    """One distributed step from `weights`; returns (loss, metrics, new weights, strategy)."""
    return first_step(strategy_name, toy_task.ToyTask(cfg.model, seed=cfg.train.seed), cfg.train,
                      weights)


def _hand_step(x, y, w, b, l2, lr, clip_norm):
    """SGD on mean squared error + l2 * |w|^2, clipped by global norm, in plain NumPy."""
    err = x @ w[:, 0] + b[0] - y
    loss = np.mean(err**2) + l2 * np.sum(w**2)
    grad_w = 2.0 * x.T @ err / len(y) + 2.0 * l2 * w[:, 0]
    grad_b = 2.0 * np.mean(err)
    norm = np.sqrt(np.sum(grad_w**2) + grad_b**2)
    factor = min(1.0, clip_norm / norm) if clip_norm else 1.0
    new_w = w - lr * factor * grad_w[:, None]
    new_b = b - lr * factor * grad_b
    return loss, np.mean(np.abs(err)), norm, [new_w, new_b]


@pytest.mark.parametrize("clip_norm, accumulation", [(0.0, 1), (0.5, 1), (0.5, 4)])
def test_step_on_two_replicas_equals_one_device_and_hand_computation(clip_norm, accumulation):
    # With accumulation 4, each replica's 4 examples go one by one through the model.
    cfg = _config(optimizer="sgd", learning_rate=0.1, batch_size=8, clip_norm=clip_norm,
                  accumulation_steps=accumulation)
    cfg.model.l2 = 0.05
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(3, 1)).astype(np.float32), np.array([0.3], np.float32)]

    one = _one_step("one_device", cfg, weights)
    two = _one_step("mirrored", cfg, weights)
    assert two[3].num_replicas_in_sync == 2

    x, y = toy_task.make_data(cfg.train.seed, cfg.model.examples, cfg.model.noise)
    loss, mae, norm, expected = _hand_step(x[:8], y[:8], *weights, 0.05, 0.1, clip_norm)
    if clip_norm:
        assert norm > 2 * clip_norm  # the clipping really changes the update
    for result in (one, two):
        np.testing.assert_allclose(result[0], loss, rtol=1e-5)
        np.testing.assert_allclose(result[1]["mae"], mae, rtol=1e-5)
        for got, want in zip(result[2], expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one[0], two[0], rtol=1e-6)
    for a, b in zip(one[2], two[2]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_train_learns_logs_and_restores(tmp_path):
    run_dir = tmp_path / "run"
    weights_file = tmp_path / "final.npz"
    cfg = _config(run_dir, steps=150, batch_size=16, learning_rate=0.05, checkpoint_every=40,
                  eval_every=50, log_every=25)
    cfg.model.weights_file = str(weights_file)

    metrics = loop.train(cfg, run_dir, progress=False)

    assert metrics["mse"] < 0.01  # noise-free validation targets; the noise std is 0.1
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    assert run_config.load(run_dir).model.weights_file == str(weights_file)
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-150")

    task, model = run_directory.restore(run_dir)
    trained = np.load(weights_file)
    for got, want in zip(model.get_weights(), [trained[k] for k in trained.files]):
        np.testing.assert_array_equal(got, want)
    x = np.ones((2, 3), np.float32)
    module = task.export_module(model)
    np.testing.assert_allclose(module.signatures["serving_default"](x)["y"], model(x)[:, 0])

    tags = {}
    for event in tf.compat.v1.train.summary_iterator(glob.glob(str(run_dir / "logs" / "*"))[0]):
        for value in event.summary.value:
            tags.setdefault(value.tag, []).append(event.step)
    assert tags["loss"] == [25, 50, 75, 100, 125, 150]
    assert {"mae", "steps_per_sec", "learning_rate"} <= set(tags)
    assert tags["val_mse"] == [50, 100, 150]


@pytest.mark.parametrize("checkpoint_every", [2, 4])
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, checkpoint_every):
    # With checkpoint_every=4 the NaN comes in the middle of a call of steps 5 to 8.
    cfg = _config(tmp_path, steps=20, batch_size=4, checkpoint_every=checkpoint_every)
    cfg.model.nan_after_batches = 5

    with pytest.raises(ValueError, match=r"loss became nan at step 6.*checkpoint \(step 4\)"):
        loop.train(cfg, tmp_path, progress=False)

    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-4")
    assert not (tmp_path / "metrics.json").exists()
    _, model = run_directory.restore(tmp_path)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def _scalars(run_dir):
    values = {}
    for event in tf.compat.v1.train.summary_iterator(glob.glob(str(run_dir / "logs" / "*"))[0]):
        for value in event.summary.value:
            values.setdefault(value.tag, []).append(
                (event.step, float(tf.make_ndarray(value.tensor))))
    return values


def test_steps_per_execution_and_xla_train_as_one_step_per_call(tmp_path):
    # Calls of several steps (ending at every log, checkpoint and evaluation step) and XLA
    # give the run of one eager-dispatched step per call: same weights, logs and checkpoints.
    runs = {}
    for name, spe, jit in (("single", 1, "off"), ("multi", 5, "off"), ("xla", 5, "auto")):
        run_dir = tmp_path / name
        cfg = _config(run_dir, steps=13, batch_size=8, learning_rate=0.05, checkpoint_every=4,
                      log_every=6, eval_every=9, keep_checkpoints=5, steps_per_execution=spe,
                      jit_compile=jit)
        cfg.model.weights_file = str(tmp_path / f"{name}.npz")
        runs[name] = (loop.train(cfg, run_dir, progress=False), _scalars(run_dir),
                      np.load(cfg.model.weights_file))
        checkpoints = tf.train.get_checkpoint_state(str(run_dir / "checkpoints"))
        assert [int(path.rsplit("-", 1)[1]) for path in checkpoints.all_model_checkpoint_paths] \
            == [4, 8, 12, 13]
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])  # the toy model
    assert train_step.uses_xla(make_strategy("one_device"), dense, cfg.train)
    single_metrics, single_scalars, single_weights = runs["single"]
    assert [step for step, _ in single_scalars["loss"]] == [6, 12, 13]
    assert [step for step, _ in single_scalars["val_mse"]] == [9, 13]
    for metrics, scalars, weights in (runs["multi"], runs["xla"]):
        assert metrics == pytest.approx(single_metrics, rel=1e-5)
        for tag in ("loss", "mae", "val_mse"):
            np.testing.assert_allclose(scalars[tag], single_scalars[tag], rtol=1e-5)
        for key in single_weights.files:
            np.testing.assert_allclose(weights[key], single_weights[key], rtol=1e-5, atol=1e-6)


def test_the_first_call_runs_one_step_and_its_time_stays_out_of_the_rate(tmp_path, monkeypatch):
    # The first call traces and compiles the step function: were it to run a whole window
    # (steps_per_execution 100), the first progress line's steps/s and time left would be
    # the compilation's.
    calls = []

    def recording(*args, **kwargs):
        step_fn = make_train_step(*args, **kwargs)

        def run(iterator, steps=1):
            calls.append(steps)
            return step_fn(iterator, steps)
        return run

    monkeypatch.setattr(loop, "make_train_step", recording)
    cfg = _config(tmp_path, steps=10, batch_size=8, log_every=5, checkpoint_every=10,
                  steps_per_execution=100)
    loop.train(cfg, tmp_path, progress=False)
    assert calls == [1, 4, 5]
    assert [step for step, _ in _scalars(tmp_path)["steps_per_sec"]] == [5, 10]


def test_steps_of_the_compiling_call_count_in_the_means_but_not_in_the_rate(tmp_path):
    shown = []
    display = SimpleNamespace(update=lambda *window: shown.append(window))
    log = TrainingLog(tmp_path / "logs", display)
    log.add_step(1.0, {"mae": 2.0}, seconds=30.0, timed=False)
    assert log.write_window(1) == {"loss": 1.0, "mae": 2.0, "steps_per_sec": None}
    log.add_step(0.5, {"mae": 1.0}, seconds=30.0, timed=False)
    log.add_step(0.2, {"mae": 0.4}, seconds=0.5, steps=5)
    window = log.write_window(7)
    assert window == {"loss": pytest.approx(1.5 / 6), "mae": pytest.approx(3 / 6),
                      "steps_per_sec": pytest.approx(10.0)}
    log.close()
    assert [(step, rate) for step, _, rate in shown] == [(1, None), (7, pytest.approx(10.0))]
    scalars = _scalars(tmp_path)
    assert [step for step, _ in scalars["loss"]] == [1, 7]
    assert [step for step, _ in scalars["steps_per_sec"]] == [7]
    stream = io.StringIO()
    ProgressDisplay(100, stream).update(1, {"loss": 1.0}, None)
    assert stream.getvalue() == "step 1/100  loss 1  compiling (no rate yet)\n"


def test_xla_on_refuses_a_model_it_cannot_compile():
    cfg = _config(jit_compile="on")
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, keras.layers.StringLookup(vocabulary=["a"])(inputs))
    with pytest.raises(ValueError, match=r"jit_compile=on, but XLA cannot compile the model's "
                                         r"StringLookup layer\(s\); set .* auto or off"):
        train_step.uses_xla(make_strategy("one_device"), model, cfg.train)
    cfg.train.jit_compile = "auto"
    assert not train_step.uses_xla(make_strategy("one_device"), model, cfg.train)


def test_batch_size_must_split_evenly_across_replicas(tmp_path):
    cfg = _config(tmp_path, strategy="mirrored", batch_size=5)
    with pytest.raises(ValueError, match=r"batch_size=5 must be a multiple .* replicas \(2\)"):
        loop.train(cfg, tmp_path, progress=False)
    cfg = _config(tmp_path, strategy="mirrored", batch_size=6, accumulation_steps=2)
    with pytest.raises(ValueError, match=r"batch_size=6 must be a multiple of the number of "
                                         r"replicas \(2\) times train.accumulation_steps \(2\)"):
        loop.train(cfg, tmp_path, progress=False)


def test_restore_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not a run directory"):
        run_directory.restore(tmp_path)
    run_config.save(_config(), tmp_path)
    with pytest.raises(ValueError, match="has no checkpoint; train it first"):
        run_directory.restore(tmp_path)


def test_mirrored_run_resumes_on_one_device(tmp_path, capsys):
    loop.train(_config(tmp_path, strategy="mirrored", steps=4, batch_size=4), tmp_path,
               progress=False)
    cfg = run_directory.configure(None, tmp_path, overrides=["train.steps=6", "train.strategy=one_device"])
    loop.train(cfg, tmp_path, progress=False)
    assert "Resuming from step 4 " in capsys.readouterr().out
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-6")


class _RaggedEmbeddingTask(toy_task.ToyTask):
    """Token sequences whose padded length differs between replicas, through an Embedding."""

    def train_dataset(self, global_batch_size, input_context=None):
        replica = input_context.input_pipeline_id if input_context is not None else 0
        batch = global_batch_size // (input_context.num_input_pipelines if input_context else 1)
        length = 3 + 2 * replica
        tokens = tf.data.Dataset.range(1, 1000).map(
            lambda i: tf.cast(tf.math.floormod(i * tf.range(1, length + 1, dtype=tf.int64), 50) + 1,
                              tf.int32))
        return tokens.map(lambda t: (t, tf.cast(t[0] % 2, tf.float32))).repeat().batch(
            batch, drop_remainder=True)

    def build_model(self):
        inputs = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(64, 4)(inputs)
        outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(x))
        return keras.Model(inputs, outputs)


@pytest.mark.parametrize("accumulation", [1, 2])
def test_sparse_gradients_of_replicas_with_different_lengths(accumulation):
    # Embedding gradients are IndexedSlices with one row per token; replicas that see different
    # numbers of tokens cannot all-reduce them as they are (nor, accumulated, add them up).
    cfg = _config(strategy="mirrored", batch_size=8, clip_norm=1.0,
                  accumulation_steps=accumulation)
    model, _, step, iterator = prepared_step(make_strategy("mirrored"),
                                             _RaggedEmbeddingTask(cfg.model, seed=0), cfg.train)
    before = model.get_weights()[0].copy()
    losses = [float(step(iterator)[0]) for _ in range(3)]
    assert all(np.isfinite(losses))
    assert not np.allclose(model.get_weights()[0], before)


class _VaryingLengthEmbeddingTask(toy_task.ToyTask):
    """Token sequences of 2 to 6 tokens, padded per batch, through a masked Embedding: the
    number of rows of the Embedding's sparse gradient changes from step to step."""

    def train_dataset(self, global_batch_size, input_context=None):
        batch = global_batch_size // (input_context.num_replicas_in_sync if input_context else 1)
        tokens = tf.data.Dataset.range(1, 1000).map(
            lambda i: tf.cast(tf.math.floormod(i * tf.range(1, 2 + i % 5), 40) + 1, tf.int32))
        return tokens.map(lambda t: (t, tf.cast(t[0] % 2, tf.float32))).repeat().padded_batch(
            batch, drop_remainder=True)

    def build_model(self):
        inputs = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(48, 4, mask_zero=True)(inputs)
        outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(x))
        return keras.Model(inputs, outputs)


def test_several_steps_per_call_on_two_replicas_equal_one_device_steps():
    # One call of 4 steps on two replicas (sparse gradients of a different shape each step,
    # applied dense) against 4 calls of one step on one device, from the same weights; the
    # clipping norm is the summed gradient's on both. (With Adam the captioning task's first
    # step under MirroredStrategy equals one device's: tests/training/tasks.)
    cfg = _config(optimizer="sgd", learning_rate=0.5, batch_size=8, clip_norm=0.05,
                  steps_per_execution=4)
    weights = None
    results = {}
    for name, calls in (("mirrored", [4]), ("one_device", [1, 1, 1, 1])):
        model, _, step, iterator = prepared_step(
            make_strategy(name), _VaryingLengthEmbeddingTask(cfg.model, seed=0), cfg.train,
            weights)
        weights = weights or model.get_weights()
        losses = [float(step(iterator, count)[0]) for count in calls]
        results[name] = np.mean(losses), model.get_weights()
    assert results["mirrored"][0] == pytest.approx(results["one_device"][0], rel=1e-5)
    for got, want, start in zip(results["mirrored"][1], results["one_device"][1], weights):
        assert not np.allclose(want, start)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
