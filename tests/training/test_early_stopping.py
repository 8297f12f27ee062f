"""Early stopping on a validation metric: the rule, a run that stops, its state across a resume,
and configuration errors."""

import json
from types import SimpleNamespace

import keras
import pytest
import tensorflow as tf

from seqzoo.training import loop, run_directory
from seqzoo.training.checkpoints import Checkpoints
from seqzoo.training.early_stopping import EarlyStopping


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    from seqzoo.training import tasks

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")


def _train(metric="accuracy", mode="max", patience=2, eval_every=10):
    return SimpleNamespace(early_stopping_metric=metric, early_stopping_mode=mode,
                           early_stopping_patience=patience, eval_every=eval_every)


@pytest.mark.parametrize("mode, values, stops_after", [
    ("max", [0.5, 0.7, 0.7, 0.6], 4),       # equal is no improvement
    ("max", [0.5, 0.4, 0.6, 0.5, 0.55], 5),  # an improvement resets the count
    ("min", [3.0, 2.0, 2.5, 1.0, 1.5, 1.2], 6),
])
def test_stops_after_patience_evaluations_without_improvement(mode, values, stops_after):
    stopping = EarlyStopping(_train(mode=mode))
    decisions = [stopping.should_stop({"accuracy": v, "loss": 1.0}, step=10 * (i + 1))
                 for i, v in enumerate(values)]
    assert decisions == [False] * (stops_after - 1) + [True]
    best = max(values[:stops_after]) if mode == "max" else min(values[:stops_after])
    assert stopping.best_step == 10 * (values.index(best) + 1)


def test_disabled_by_default_and_refuses_what_it_cannot_do():
    assert not EarlyStopping(_train(metric="", eval_every=0)).should_stop({"loss": 1.0})
    with pytest.raises(ValueError, match="needs evaluations during the run: set "
                                         "train.eval_every"):
        EarlyStopping(_train(eval_every=0))
    with pytest.raises(ValueError, match=r"'bleu' is not a validation metric of this task; "
                                         r"accepted: accuracy, loss"):
        EarlyStopping(_train(metric="bleu")).should_stop({"loss": 1.0, "accuracy": 0.5})


def test_state_is_checkpointed_and_restarts_for_another_metric(tmp_path):
    stopping = EarlyStopping(_train(patience=3))
    assert [stopping.should_stop({"accuracy": a}, step) for a, step in ((0.5, 10), (0.4, 20))] \
        == [False, False]
    path = tf.train.Checkpoint(stopping=stopping).save(str(tmp_path / "ckpt"))

    resumed = EarlyStopping(_train(patience=3))
    tf.train.Checkpoint(stopping=resumed).restore(path).assert_consumed()
    assert (resumed.best_step, resumed.waited) == (10, 1)
    assert [resumed.should_stop({"accuracy": a}, step) for a, step in ((0.45, 30), (0.3, 40))] \
        == [False, True]

    # Another mode watches another quantity: what was best before says nothing about it.
    other = EarlyStopping(_train(mode="min", patience=3))
    tf.train.Checkpoint(stopping=other).restore(path).assert_consumed()
    assert not other.should_stop({"accuracy": 0.9}, 30)
    assert (other.best_step, other.waited) == (30, 0)


# Training lowers the validation mse, so with mode "max" its first value stays the best:
# evaluations at steps 2, 4 and 6, a stop after the third.
STOPPING_RUN = ["train.strategy=one_device", "train.steps=50", "train.batch_size=8",
                "train.learning_rate=0.05", "train.eval_every=2", "train.log_every=2",
                "train.early_stopping_metric=mse", "train.early_stopping_mode=max",
                "train.early_stopping_patience=2"]
STOPPED = ("Stopping early at step 6: validation mse has not improved for 2 evaluations "
           "(best at step 2).")


def test_run_stops_when_validation_stops_improving(tmp_path, capsys):
    cfg = run_directory.configure("toy", tmp_path, overrides=STOPPING_RUN)
    metrics = loop.train(cfg, tmp_path, progress=False)
    out = capsys.readouterr().out
    assert STOPPED in out
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-6")
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert "(step 6)" in out


def test_resumed_run_stops_where_an_uninterrupted_one_does(tmp_path, capsys):
    # Stopped at step 5, after the evaluations of steps 2 (the best) and 4: the resumed run's
    # first evaluation, at step 6, is the second without improvement.
    cfg = run_directory.configure("toy", tmp_path, overrides=[*STOPPING_RUN, "train.steps=5"])
    loop.train(cfg, tmp_path, progress=False)
    loop.train(run_directory.configure(None, tmp_path, overrides=["train.steps=50"]), tmp_path,
               progress=False)
    out = capsys.readouterr().out
    assert "Resuming from step 5 " in out
    assert STOPPED in out
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-6")


def test_a_checkpoint_without_the_state_still_restores(tmp_path):
    # Runs checkpointed before early stopping's state was saved resume, counting afresh.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    tf.train.Checkpoint(model=model, step=tf.Variable(4, dtype=tf.int64)).save(
        str(tmp_path / "ckpt"))
    stopping = EarlyStopping(_train())
    checkpoints = Checkpoints(model, step=tf.Variable(0, dtype=tf.int64),
                              state={"early_stopping": stopping})
    assert checkpoints.restore_latest(tmp_path).endswith("ckpt-1")
    assert (checkpoints.current_step, stopping.best_step, stopping.waited) == (4, None, 0)
