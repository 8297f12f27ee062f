"""Mixed precision in the training step: float16 with loss scaling against float32, float32
losses and outputs. (bfloat16 learning and float32 exports: tests/training/tasks/
test_sentiment_task.py trains its run under mixed_bfloat16.)"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import toy_task
from first_step import first_step, prepared_step
from seqzoo.training import run_directory, train_step
from seqzoo.training.strategy import make_strategy

# float16 keeps about 3 significant decimal digits; its rounding of the forward pass and of the
# scaled gradients moves an update by well under 1%.
FLOAT16_UPDATE_RTOL = 1e-2


class _Float32OutputTask(toy_task.ToyTask):
    """The toy regression whose output is cast back to float32, as every model's output layer
    does."""

    def build_model(self):
        inputs = keras.Input((toy_task.TRUE_WEIGHTS.size,))
        hidden = keras.layers.Dense(1)(inputs)
        outputs = keras.layers.Activation("linear", dtype="float32")(hidden)
        return keras.Model(inputs, outputs)


class _TinyGradientTask(_Float32OutputTask):
    """The toy regression with its loss scaled by 1e-7: the gradients reaching the float16
    Dense layer (~1e-7) round to float16's subnormals (multiples of 6e-8) unless the loss is
    scaled up first."""

    def compute_loss(self, model, batch, training):
        loss, metrics = super().compute_loss(model, batch, training)
        return 1e-7 * loss, metrics


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    from seqzoo.training import tasks

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")


def _update(precision, optimizer_precision):
    """One SGD step of the tiny-gradient task with the layers built under `precision` and the
    optimizer made for `optimizer_precision`; returns (loss, weight change, the optimizer's
    class name)."""
    cfg = run_directory.configure("toy", None, overrides=[
        "train.optimizer=sgd", "train.learning_rate=1e6", "train.batch_size=8",
        "train.clip_norm=0", "train.strategy=one_device"])
    train = dataclasses.replace(cfg.train, mixed_precision=optimizer_precision)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(3, 1)).astype(np.float32), np.array([0.3], np.float32)]
    task = _TinyGradientTask(cfg.model, seed=0)
    with train_step.precision_policy(precision):
        loss, _, new_weights, _ = first_step("one_device", task, train, weights)
    return loss, [new - old for new, old in zip(new_weights, weights)]


def test_float16_step_with_loss_scaling_matches_float32():
    loss32, update32 = _update("float32", "float32")
    loss16, update16 = _update("mixed_float16", "mixed_float16")
    _, unscaled16 = _update("mixed_float16", "float32")  # float16 without loss scaling

    assert np.all(np.abs(np.concatenate([u.ravel() for u in update32])) > 0.01)
    np.testing.assert_allclose(loss16, loss32, rtol=FLOAT16_UPDATE_RTOL)
    for got, want in zip(update16, update32):
        np.testing.assert_allclose(got, want, rtol=FLOAT16_UPDATE_RTOL)
    # Without the scale the same step loses most of its gradient to underflow.
    assert not np.allclose(unscaled16[0], update32[0], rtol=0.2)


def test_float16_uses_a_loss_scale_optimizer_and_restores_the_policy():
    cfg = run_directory.configure("toy", None, overrides=["train.mixed_precision=mixed_float16"])
    optimizer = train_step.make_optimizer(cfg.train)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(optimizer.initial_scale) > 1
    with train_step.precision_policy("mixed_bfloat16"):
        assert keras.layers.Dense(1).compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"


class _OneReplicaOverflowsTask(_Float32OutputTask):
    """Noise-free targets, 1000 higher in every second per-replica batch: under MirroredStrategy
    the second replica's scaled float16 gradients overflow, the first's stay finite."""

    def train_dataset(self, global_batch_size, input_context=None):
        batches = super().train_dataset(global_batch_size, input_context).enumerate()
        return batches.map(lambda i, xy: (xy[0], xy[1] + 1000.0 * tf.cast(i % 2, tf.float32)))


def test_float16_replicas_skip_an_overflowing_step_together():
    # Keras's LossScaleOptimizer decides from one replica's unsummed gradients: the finite
    # replica would apply the other's infinities (or, across workers, wait for them forever).
    cfg = run_directory.configure("toy", None, overrides=[
        "train.optimizer=sgd", "train.batch_size=8", "train.clip_norm=0",
        "train.mixed_precision=mixed_float16", "model.noise=0"])
    weights = [toy_task.TRUE_WEIGHTS[:, None] + 0.01, np.array([toy_task.TRUE_BIAS], np.float32)]
    strategy = make_strategy("mirrored")
    with train_step.precision_policy("mixed_float16"):
        model, optimizer, step, iterator = prepared_step(
            strategy, _OneReplicaOverflowsTask(cfg.model, seed=0), cfg.train, weights)
    scale = float(optimizer.dynamic_scale.numpy())
    step(iterator)

    for replica_weights in zip(*(strategy.experimental_local_results(v) for v in model.weights)):
        for got, want in zip(replica_weights, weights):
            np.testing.assert_array_equal(got, want)  # skipped on both replicas
    assert float(optimizer.dynamic_scale.numpy()) == scale / 2
