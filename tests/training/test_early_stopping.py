"""Early stopping on a validation metric: the rule, a run that stops, and configuration errors."""

import json
from types import SimpleNamespace

import pytest
import tensorflow as tf

from seqzoo.training import loop, run_directory
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


def test_run_stops_when_validation_stops_improving(tmp_path, capsys):
    # Training lowers the validation mse, so with mode "max" its first value stays the best:
    # evaluations at steps 2, 4 and 6, a stop after the third.
    overrides = ["train.strategy=one_device", "train.steps=50", "train.batch_size=8",
                 "train.learning_rate=0.05", "train.eval_every=2", "train.log_every=2",
                 "train.early_stopping_metric=mse", "train.early_stopping_mode=max",
                 "train.early_stopping_patience=2"]
    cfg = run_directory.configure("toy", tmp_path, overrides=overrides)
    metrics = loop.train(cfg, tmp_path, progress=False)
    out = capsys.readouterr().out
    assert ("Stopping early at step 6: validation mse has not improved for 2 evaluations "
            "(best at step 2).") in out
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-6")
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert "(step 6)" in out
