"""Strategy factory, and two MultiWorkerMirroredStrategy worker processes training together."""

import json
import os
import pathlib
import socket
import subprocess

import numpy as np
import pytest
import tensorflow as tf
import yaml

import toy_task
from seqzoo.training import config as run_config
from seqzoo.training import loop, run_directory
from seqzoo.training.strategy import is_chief, make_strategy

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_strategies_by_name(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert isinstance(make_strategy("auto"), tf.distribute.OneDeviceStrategy)
    mirrored = make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == 2  # the two logical CPUs of conftest
    assert is_chief(mirrored)
    with pytest.raises(ValueError, match="Unknown strategy 'tpu'; accepted: auto, one_device, "
                                         "mirrored, multi_worker_mirrored"):
        make_strategy("tpu")


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     "TF_CONFIG must hold a 'cluster' mapping"),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG must hold a 'cluster' mapping"),
])
def test_multi_worker_needs_a_well_formed_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        make_strategy("multi_worker_mirrored")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_workers(tmp_path, run_dirs, *args):
    """Runs `seqzoo train toy` as one worker per run dir; returns (returncode, output) of each."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(len(run_dirs))]
    processes = []
    for index, run_dir in enumerate(run_dirs):
        env = dict(os.environ, PYTHONPATH=f"{ROOT / 'tests' / 'training'}{os.pathsep}{ROOT}",
                   TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                         "task": {"type": "worker", "index": index}}))
        command = toy_task.cli_command(
            "--run-dir", str(run_dir), "--strategy", "multi_worker_mirrored", "--batch-size", "8",
            "--no-progress", "--set", "train.learning_rate=0.05",
            "--set", f"model.weights_file={tmp_path / f'worker{index}.npz'}", *args,
        )
        processes.append(subprocess.Popen(command, env=env, cwd=tmp_path, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        outputs = [p.communicate(timeout=180)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    return [(p.returncode, output) for p, output in zip(processes, outputs)]


def test_two_workers_train_to_equal_weights_matching_one_device(tmp_path, monkeypatch):
    from seqzoo.training import tasks

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")
    run_dir = tmp_path / "run"
    for returncode, output in _run_workers(tmp_path, [run_dir, run_dir], "--steps", "6"):
        assert returncode == 0, output

    chief, other = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    for key in chief.files:
        np.testing.assert_array_equal(chief[key], other[key])
    # Only the chief writes into the run directory.
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-6")
    assert len(list((run_dir / "logs").iterdir())) == 1
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"]["weights_file"] == str(tmp_path / "worker0.npz")

    # Each worker reads every other example, so together they see one device's global batches.
    saved["train"]["strategy"] = "one_device"
    saved["model"]["weights_file"] = str(tmp_path / "one_device.npz")
    loop.train(run_config.resolve(base=saved), tmp_path / "one_device", progress=False)
    single = np.load(tmp_path / "one_device.npz")
    for key in chief.files:
        assert not np.allclose(chief[key], 0.0)
        np.testing.assert_allclose(chief[key], single[key], rtol=1e-5, atol=1e-6)

    # A worker that cannot see the chief's checkpoints would train from step 0: both stop instead.
    results = _run_workers(tmp_path, [run_dir, tmp_path / "elsewhere"], "--steps", "8")
    for returncode, output in results:
        assert returncode == 2, output
        assert "The workers restored different steps" in output, output
    assert "this one: 6" in results[0][1] and "this one: 0" in results[1][1]


def test_mirrored_runs_of_different_models_in_one_process(tmp_path):
    # Two MirroredStrategy objects in one process reuse collective keys; a second model of another
    # size then failed with a collective shape mismatch. Strategies are shared per process.
    assert make_strategy("mirrored") is make_strategy("mirrored")
    for task, extra in (("ar", "model.fit=gradient"), ("delay_tap", "model.hidden_units=[4]")):
        run_dir = tmp_path / task
        cfg = run_directory.configure(task, run_dir, overrides=[
            "train.steps=3", "train.batch_size=8", "train.strategy=mirrored", extra])
        metrics = loop.train(cfg, run_dir, progress=False)
        assert np.isfinite(metrics["mse"])
