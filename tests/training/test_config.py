"""Config precedence (defaults < saved run < YAML < --set < flags); clear errors for bad values."""

import json

import pytest
import tensorflow as tf
import yaml

from seqzoo.serving import cli
from seqzoo.training import config as run_config
from seqzoo.training import run_directory


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    from seqzoo.training import tasks

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")
    # Only the train command: these tests must not depend on the other commands' modules.
    monkeypatch.setattr(cli, "COMMANDS", ("train",))


def test_yaml_then_set_override_defaults(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump({
        "train": {"steps": 50, "learning_rate": 0.01, "optimizer": "sgd"},
        "model": {"l2": 0.1, "noise": 0.2},
    }))
    cfg = run_directory.configure("toy", tmp_path / "run", config_file=config_file,
                         overrides=["train.steps=7", "model.noise=0.0", "data=builtin:small"])
    assert (cfg.train.steps, cfg.train.learning_rate, cfg.train.optimizer) == (7, 0.01, "sgd")
    assert (cfg.model.l2, cfg.model.noise) == (0.1, 0.0)
    assert cfg.data == "builtin:small"
    assert cfg.train.batch_size == run_config.TrainConfig().batch_size


def test_saved_run_config_is_the_base_when_resuming(tmp_path):
    saved = run_directory.configure("toy", tmp_path, overrides=["train.batch_size=4", "model.l2=0.3"])
    run_config.save(saved, tmp_path)
    # Without a checkpoint the directory holds no run yet, and its config.yaml pins nothing.
    assert run_directory.configure("toy", tmp_path).model.l2 == 0.0
    tf.train.Checkpoint(step=tf.Variable(1)).save(str(tmp_path / "checkpoints" / "ckpt"))
    cfg = run_directory.configure(None, tmp_path, overrides=["train.steps=9"])
    assert (cfg.task, cfg.train.batch_size, cfg.model.l2, cfg.train.steps) == ("toy", 4, 0.3, 9)
    with pytest.raises(ValueError, match="holds a 'toy' run, not 'sentiment'"):
        run_directory.configure("sentiment", tmp_path)


@pytest.mark.parametrize("override, message", [
    ("train.steps=abc", r"Bad value for train.steps: expected an integer, received .abc."),
    ("train.learning_rate=fast", r"Bad value for train.learning_rate: expected a number"),
    ("train.steps=0", r"train.steps must be at least 1; received 0"),
    ("train.strategy=tpu", r"Unknown train.strategy 'tpu'; accepted: auto, one_device"),
    ("train.optimizer=adagrad", r"Unknown train.optimizer 'adagrad'; accepted: adam, sgd, rmsprop"),
    ("train.learning_rate=0", r"train.learning_rate must be above 0.0; received 0.0"),
    ("train.eval_every=-2", r"train.eval_every must be >= 0; received -2"),
    ("model.units=3", r"Unknown model setting\(s\) \['units'\]; accepted: evaluation_passes, examples, l2"),
    ("train.steps", r"--set expects key=value"),
])
def test_bad_values_are_clear_errors(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        run_directory.configure("toy", tmp_path, overrides=[override])


def test_cli_flags_win_over_set_and_unknown_task_is_reported(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = cli.main(["train", "toy", "--run-dir", str(run_dir), "--steps", "3",
                     "--set", "train.steps=100", "--set", "train.batch_size=4",
                     "--strategy", "one_device", "--no-progress"])
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"Validation:      mse {metrics['mse']:.4g}" in capsys.readouterr().out
    saved = run_config.load(run_dir)
    assert (saved.train.steps, saved.train.batch_size) == (3, 4)

    assert cli.main(["train", "nosuch", "--run-dir", str(tmp_path / "x")]) == 2
    assert "Unknown task 'nosuch'; accepted:" in capsys.readouterr().err
    assert cli.main(["train", "toy", "--run-dir", str(tmp_path / "y"),
                     "--set", "train.clip_norm=-1"]) == 2
    assert "train.clip_norm must be >= 0; received -1.0." in capsys.readouterr().err
