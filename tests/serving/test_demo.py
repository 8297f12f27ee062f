"""`seqzoo demo` as a user runs it: a real process that trains, exports, serves and queries."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import tensorflow as tf

SEQZOO = [sys.executable, "-m", "seqzoo.serving.cli"]
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _demo(cwd, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        # Few steps on a small dataset of short reviews: the path is under test, not learning.
        [*SEQZOO, "demo", "--rest-port", "0", "--grpc-port", "0", "--set", "train.steps=20",
         "--set", "model.num_examples=1000", "--set", "model.max_length=40", *extra],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.timeout(600)
def test_demo_trains_serves_answers_and_reuses_the_model(tmp_path):
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    assert "Training the sentiment model for 20 steps" in out
    rest = out[out.index("over REST:"):out.index("over GRPC:")]
    grpc = out[out.index("over GRPC:"):out.index("Model server stopped.")]
    # Every demo sentence is answered with a label and a probability, identically on both transports.
    rows = re.findall(r"^\s+(negative|positive)\s+(0\.\d{3}|1\.000)\s+(.+)$", rest, re.M)
    assert len(rows) == 6
    assert rest.splitlines()[1:] == grpc.splitlines()[1:]
    assert first.stderr == ""  # the command's own output only, no TensorFlow log lines
    # The accuracy printed is the run's, and the answers are the exported model's own.
    metrics = json.loads((tmp_path / "runs" / "sentiment" / "metrics.json").read_text())
    accuracy = re.search(r"^held-out test accuracy: (\d\.\d+)$", out, re.M)
    assert accuracy.group(1) == f"{metrics['test_accuracy']:.4f}"
    assert sorted(p.name for p in (tmp_path / "models" / "sentiment").iterdir()) == ["1"]
    exported = tf.saved_model.load(str(tmp_path / "models" / "sentiment" / "1"))
    answers = exported.signatures["serving_default"](text=tf.constant([row[2] for row in rows]))
    for (label, probability, _), expected_label, probabilities in zip(
            rows, answers["label"].numpy(), answers["probabilities"].numpy()):
        assert label == expected_label.decode()
        assert float(probability) == pytest.approx(probabilities.max(), abs=5e-4)

    second = _demo(tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Reusing the trained model" in second.stdout
    assert "Training the sentiment model" not in second.stdout
    # The same checkpoint is not exported twice.
    assert sorted(p.name for p in (tmp_path / "models" / "sentiment").iterdir()) == ["1"]
    assert accuracy.group(0) in second.stdout


def test_retrain_trains_afresh_and_leaves_the_users_files(tmp_path, monkeypatch):
    """--retrain starts the run over through the loop's fresh start (which removes the run's
    own files only: tests/training/test_run_directory.py) and forgets what was exported;
    nothing else in --run-dir is touched, even when it is a project folder."""
    from seqzoo.serving import demo
    from seqzoo.training import loop

    run_dir = tmp_path / "project"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("the user's own file")
    (run_dir / "exported.json").write_text('{"step": 20, "path": "models/sentiment/1"}')
    started = []

    class Stop(Exception):
        pass

    def train(config, path, fresh=False, **kwargs):
        started.append((pathlib.Path(path), fresh, sorted(p.name for p in run_dir.iterdir())))
        raise Stop

    monkeypatch.setattr(loop, "train", train)
    with pytest.raises(Stop):
        demo.run_demo(run_dir, tmp_path / "models", retrain=True, out=lambda line: None)
    assert started == [(run_dir, True, ["notes.txt"])]


def test_a_run_short_of_the_demos_steps_is_trained_on_and_refusals_name_retrain(tmp_path,
                                                                                monkeypatch):
    """A finished run with fewer steps than the demo's (say a user's `seqzoo train sentiment
    --steps 5`) is not served as it is: it resumes to the demo's steps. A run trained with other
    settings than the user's --set is refused with the demo's own flag to start over."""
    from seqzoo.serving import demo
    from seqzoo.training import loop, run_directory

    lines, started = [], []

    class Stop(Exception):
        pass

    def train(config, path, fresh=False, **kwargs):
        started.append((config.train.steps, fresh))
        raise Stop

    monkeypatch.setattr(loop, "train", train)
    monkeypatch.setattr(demo, "_trained_step", lambda run_dir: 5)
    with pytest.raises(Stop):
        demo.run_demo(tmp_path / "run", tmp_path / "models", overrides=["train.steps=8"],
                      out=lines.append)
    assert lines[0] == (f"The run in {tmp_path / 'run'} ended at step 5, short of the demo's 8; "
                        "training it on from there.")
    assert started == [(8, False)]

    saved = run_directory.configure("sentiment", overrides=["model.units=4"]).to_dict()
    monkeypatch.setattr(run_directory.RunDirectory, "saved_settings", lambda self: saved)
    with pytest.raises(ValueError, match=r"model.units 4 -> 8\).*pass --retrain to delete it"):
        demo.run_demo(tmp_path / "run", tmp_path / "models", overrides=["model.units=8"],
                      out=lines.append)
