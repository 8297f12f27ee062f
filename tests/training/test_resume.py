"""A `seqzoo train` process killed (SIGKILL) or stopped (SIGTERM) resumes where it saved; its
progress piped to a file is one plain line per logging interval, and it ends with a summary."""

import glob
import json
import os
import pathlib
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
import yaml

import toy_task

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=f"{ROOT / 'tests' / 'training'}{os.pathsep}{ROOT}",
           TF_CPP_MIN_LOG_LEVEL="2")


def _latest_step(run_dir):
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def _start(run_dir, *args, progress=False):
    command = toy_task.cli_command("--run-dir", str(run_dir), *args,
                                   *([] if progress else ["--no-progress"]))
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

    final = stopped_at + 12
    third = _start(run_dir, "--steps", str(final), "--set", "train.log_every=4",
                   "--set", "train.eval_every=8", progress=True)
    output = third.communicate(timeout=120)[0]
    assert third.returncode == 0, output
    assert f"Resuming from step {stopped_at} " in output
    assert _latest_step(run_dir) == final
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (saved["model"]["l2"], saved["train"]["batch_size"]) == (0.01, 8)
    _check_piped_progress_and_summary(output, run_dir, stopped_at, final)


def _check_piped_progress_and_summary(output, run_dir, start, final):
    """Plain lines at every 4th step and the last one, showing what TensorBoard logged there,
    and the validation metrics of every 8th step before the last; then the final evaluation and
    the summary: run directory, last checkpoint, metrics and the export command."""
    assert "\r" not in output and "\x1b" not in output
    lines = re.findall(r"^step (\d+)/(\d+)  loss (\S+)  mae (\S+)  ([\d.]+) steps/s  "
                       r"(\d+:\d\d) left$", output, re.M)
    steps = [int(step) for step, *_ in lines]
    assert steps == [s for s in range(start + 1, final + 1) if s % 4 == 0 or s == final]
    assert all(int(total) == final for _, total, *_ in lines)
    assert lines[-1][5] == "0:00"
    logged = {}
    for path in glob.glob(str(run_dir / "logs" / "*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag in ("loss", "mae", "val_mse"):
                    logged[value.tag, event.step] = float(tf.make_ndarray(value.tensor))
    for step, _, loss, mae, *_ in lines:
        assert float(loss) == pytest.approx(logged["loss", int(step)], rel=1e-3)
        assert float(mae) == pytest.approx(logged["mae", int(step)], rel=1e-3)
    validations = re.findall(rf"^step (\d+)/{final}  validation  mse (\S+)$", output, re.M)
    assert [int(step) for step, _ in validations] == [
        s for s in range(start + 1, final) if s % 8 == 0]
    for step, mse in validations:
        assert float(mse) == pytest.approx(logged["val_mse", int(step)], rel=1e-3)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    checkpoint = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert output.splitlines()[-5:] == [
        f"Evaluating step {final} on the validation data...",
        f"Run directory:   {run_dir}",
        f"Last checkpoint: {checkpoint} (step {final})",
        f"Validation:      mse {metrics['mse']:.4g}",
        f"Export it with:  seqzoo export {run_dir}",
    ]


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    from seqzoo.training import loop, run_directory, tasks

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")

    def run(run_dir, steps, weights_file):
        cfg = run_directory.configure("toy", run_dir, overrides=[
            f"train.steps={steps}", "train.batch_size=4", "train.strategy=mirrored",
            "train.learning_rate=0.05", f"model.weights_file={weights_file}"])
        loop.train(cfg, run_dir, progress=False)
        return np.load(weights_file)

    straight = run(tmp_path / "straight", 9, tmp_path / "straight.npz")
    # The same settings in both parts: a resumed run may not change what it trains.
    run(tmp_path / "split", 4, tmp_path / "split.npz")
    resumed = run(tmp_path / "split", 9, tmp_path / "split.npz")
    for key in straight.files:
        np.testing.assert_allclose(resumed[key], straight[key], rtol=1e-6, atol=1e-7)
