"""Mixed precision in the training step: float16 with loss scaling against float32, float32
losses and outputs. (bfloat16 learning and float32 exports: tests/training/tasks/
test_sentiment_task.py trains its run under mixed_bfloat16.)"""

import dataclasses

import keras
import numpy as np
import pytest

import toy_task
from first_step import first_step
from seqzoo.training import run_directory, train_step

# float16 keeps about 3 significant decimal digits; its rounding of the forward pass and of the
# scaled gradients moves an update by well under 1%.
FLOAT16_UPDATE_RTOL = 1e-2


class _TinyGradientTask(toy_task.ToyTask):
    """The toy regression with its loss scaled by 1e-7: the gradients reaching the float16
    Dense layer (~1e-7) round to float16's subnormals (multiples of 6e-8) unless the loss is
    scaled up first."""

    def build_model(self):
        inputs = keras.Input((toy_task.TRUE_WEIGHTS.size,))
        hidden = keras.layers.Dense(1)(inputs)
        # The output cast back to float32, as every model's output layer does.
        outputs = keras.layers.Activation("linear", dtype="float32")(hidden)
        return keras.Model(inputs, outputs)

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
