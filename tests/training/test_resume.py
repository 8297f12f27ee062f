"""A `seqzoo train` process killed (SIGKILL) or stopped (SIGTERM) resumes where it saved."""

import os
import pathlib
import re
import signal
import subprocess
import time

import numpy as np
import tensorflow as tf
import yaml

import toy_task

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=f"{ROOT / 'tests' / 'training'}{os.pathsep}{ROOT}",
           TF_CPP_MIN_LOG_LEVEL="2")


def _latest_step(run_dir):
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def _start(run_dir, *args):
    command = toy_task.cli_command("--run-dir", str(run_dir), "--no-progress", *args)
    return subprocess.Popen(command, env=ENV, cwd=run_dir.parent, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _signal_after_checkpoint(process, run_dir, signum, after_step=0):
    """Sends `signum` once a checkpoint later than `after_step` exists; returns the output."""
    deadline = time.monotonic() + 120
    while (_latest_step(run_dir) or 0) <= after_step:
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    process.send_signal(signum)
    return process.communicate(timeout=60)[0]


def test_killed_run_resumes_from_its_checkpoint_and_finishes(tmp_path):
    run_dir = tmp_path / "run"
    endless = ("--steps", "1000000", "--set", "train.checkpoint_every=50")

    first = _start(run_dir, "--batch-size", "8", "--set", "model.l2=0.01", *endless)
    _signal_after_checkpoint(first, run_dir, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    killed_at = _latest_step(run_dir)
    assert killed_at % 50 == 0

    second = _start(run_dir, *endless)
    output = _signal_after_checkpoint(second, run_dir, signal.SIGTERM, after_step=killed_at)
    assert second.returncode == 130, output
    assert f"Resuming from step {killed_at} " in output
    stopped_at = int(re.search(r"Interrupted at step (\d+)", output).group(1))
    assert _latest_step(run_dir) == stopped_at  # saved on SIGTERM, not only every 50 steps

    third = _start(run_dir, "--steps", str(stopped_at + 5))
    output = third.communicate(timeout=120)[0]
    assert third.returncode == 0, output
    assert f"Resuming from step {stopped_at} " in output
    assert _latest_step(run_dir) == stopped_at + 5
    assert (run_dir / "metrics.json").is_file()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (saved["model"]["l2"], saved["train"]["batch_size"]) == (0.01, 8)


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    from seqzoo.training import tasks
    from seqzoo.training import loop

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")

    def run(run_dir, steps, weights_file):
        cfg = loop.configure("toy", run_dir, overrides=[
            f"train.steps={steps}", "train.batch_size=4", "train.strategy=mirrored",
            "train.learning_rate=0.05", f"model.weights_file={weights_file}"])
        loop.train(cfg, run_dir, progress=False)
        return np.load(weights_file)

    straight = run(tmp_path / "straight", 9, tmp_path / "straight.npz")
    run(tmp_path / "split", 4, tmp_path / "first_part.npz")
    resumed = run(tmp_path / "split", 9, tmp_path / "resumed.npz")
    for key in straight.files:
        np.testing.assert_allclose(resumed[key], straight[key], rtol=1e-6, atol=1e-7)
