"""Strategy factory, and MultiWorkerMirroredStrategy worker processes training together: they stop
together when one dies or is preempted, resume, and end where one device does."""

import json
import math
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
import yaml

import toy_task
from seqzoo.training import config as run_config
from seqzoo.training import loop, run_directory
from seqzoo.training.strategy import check_workers_agree, is_chief, make_strategy
from seqzoo.training.worker_group import WorkerGroup

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Seconds without an answer before the workers of a test take a worker as dead.
WORKER_TIMEOUT = 3
# Seconds two workers may take to start and reach a given step: once over 120 s at a load of 13
# on the two cores (the bound is arbitrary; the tests' processes end after 180 s in any case).
STARTUP = 180


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


# What a collective fails with (TensorFlow 2.21) on the chief when worker 1 missed its heartbeats,
# and on worker 1 when the chief's process is gone.
HEARTBEATS_MISSED = (
    "Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks "
    "are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have "
    "crashed.")
PEER_GONE = (
    "Collective ops is aborted by: Socket closed\nAdditional GRPC error information from remote "
    "target /job:worker/replica:0/task:0 while calling /tensorflow.WorkerService/RecvBuf")


# What a collective fails with on worker 1 when the chief, which leads the coordination service,
# stopped (SIGSTOP) or its machine is cut off.
LEADER_SILENT = "Deadline Exceeded\n\nRPC: /tensorflow.CoordinationService/Heartbeat"


@pytest.mark.parametrize("task_id, message, saved_step, silent, expected", [
    (0, HEARTBEATS_MISSED, 40, (), "worker 1 stopped responding; restart all workers to resume "
                                   "from step 40."),
    (1, LEADER_SILENT, 40, (), "worker 0 stopped responding; restart all workers to resume from "
                               "step 40."),
    (1, PEER_GONE, None, (), "worker 0 stopped responding; restart all workers to start over (no "
                             "checkpoint was saved yet)."),
    (1, "Socket closed", 40, (), "another worker stopped responding; restart all workers to "
                                 "resume from step 40."),
    # A collective cancelled by another's failure names no other worker (twice under load,
    # the chief frozen): the worker that does not answer a probe is named.
    (1, "CANCELLED\n\t [[{{node CollectiveReduceV2}}]] on "
        "/job:worker/replica:0/task:1/device:CPU:0", 40, ("0",),
     "worker 0 stopped responding; restart all workers to resume from step 40."),
])
def test_a_lost_worker_is_named_with_the_step_to_resume_from(monkeypatch, task_id, message,
                                                            saved_step, silent, expected):
    from seqzoo.training import worker_group

    monkeypatch.setattr(worker_group, "_probe", lambda task: tf.errors.DeadlineExceededError(
        None, None, "Deadline Exceeded") if task[1] in silent else None)
    resolver = SimpleNamespace(
        cluster_spec=lambda: tf.train.ClusterSpec({"worker": ["a:1", "b:2"]}),
        task_type="worker", task_id=task_id)
    workers = WorkerGroup(SimpleNamespace(cluster_resolver=resolver))
    error = tf.errors.UnavailableError(None, None, message)
    assert isinstance(error, workers.failures)
    assert str(workers.lost(error, saved_step)) == expected
    assert WorkerGroup(make_strategy("one_device")).failures == ()


def test_a_sigterm_ends_an_evaluation_even_when_its_exception_comes_out_as_another(monkeypatch):
    # Raised by the handler while a C function runs (NumPy's `__array__` in a Keras call), the
    # interruption once came out as a SystemError that Keras re-raised without its cause, and
    # the chief failed instead of saving (one CI run).
    from seqzoo.training import worker_group

    monkeypatch.setattr(worker_group, "_post", lambda key, value="1": None)
    monkeypatch.setattr(worker_group, "_wait_for_key", lambda key, done: False)
    resolver = SimpleNamespace(
        cluster_spec=lambda: tf.train.ClusterSpec({"worker": ["a:1", "b:2"]}),
        task_type="worker", task_id=1)
    workers = WorkerGroup(SimpleNamespace(cluster_resolver=resolver))

    def evaluate_until_sigterm():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt:
            raise SystemError("<built-in method __array__ of numpy.ndarray object> returned a "
                              "result with an exception set") from None
        return "evaluated"

    def evaluate_badly():
        raise SystemError("a real error")

    with workers.stopping_together():
        with pytest.raises(SystemError, match="a real error"):
            workers.interruptible(evaluate_badly)
        started = time.monotonic()
        assert workers.interruptible(evaluate_until_sigterm) is None
        assert time.monotonic() - started < 4
        assert workers.interruptible(lambda: "evaluated") is None  # stopped already


def test_the_sigterm_watcher_outlives_an_error_of_the_coordination_service(monkeypatch):
    # Under load a busy leader may fail to answer once; a watcher that took that as the
    # service gone would leave its worker deaf to a later SIGTERM.
    from tensorflow.python.eager import context

    from seqzoo.training import worker_group

    answers = iter([tf.errors.UnavailableError(None, None, "Socket closed"),
                    tf.errors.DeadlineExceededError(None, None, "Deadline Exceeded"), "1"])

    def get_config_key_value(key, timeout_in_ms):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(context.context(), "get_config_key_value", get_config_key_value)
    assert worker_group._wait_for_key("seqzoo_sigterm_0", threading.Event())
    assert next(answers, None) is None


def test_workers_agree_on_a_stop_after_the_host_work_of_a_step(tmp_path, monkeypatch):
    # The workers enter the next call of the step function together, so that one still saving
    # a checkpoint (slow under load) does not stall the others' steps and get taken as stuck.
    from seqzoo.training import tasks

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")
    saved_when_asked = []
    monkeypatch.setattr(WorkerGroup, "stop_requested",
                        lambda self: saved_when_asked.append(_latest_step(tmp_path / "run")))
    cfg = run_directory.configure("toy", tmp_path / "run", overrides=[
        "train.steps=4", "train.checkpoint_every=2", "train.log_every=2"])
    loop.train(cfg, tmp_path / "run", progress=False)
    # Calls of 1, 1 and 2 steps (the first call runs one).
    assert saved_when_asked == [0, 2, 4]


class _TwoWorkers:
    """A strategy over this worker and another that restored the step `other`: what
    `check_workers_agree` needs of MultiWorkerMirroredStrategy."""

    cluster_resolver = object()
    num_replicas_in_sync = 2

    def __init__(self, other):
        self.other = other

    def run(self, function):
        return function()

    def reduce(self, op, value, axis):
        assert op == tf.distribute.ReduceOp.SUM and axis is None
        return value + tf.constant([self.other, self.other**2], tf.int64)


def test_workers_that_restored_different_steps_stop_before_training():
    # A worker that cannot see the chief's checkpoints (a run directory not on shared storage)
    # would train from step 0 and wait in collectives the others never join.
    check_workers_agree(_TwoWorkers(40), 40)
    for mine, other in ((40, 0), (0, 40), (3, 5)):
        with pytest.raises(ValueError, match=rf"The workers restored different steps \(this one: "
                                             rf"{mine}\)\. Every worker resumes from the "
                                             "chief's checkpoints, so --run-dir must be on "
                                             "storage that all workers share."):
            check_workers_agree(_TwoWorkers(other), mine)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# The worker processes a test started; the fixture below kills those a failed test left.
_STARTED = []


@pytest.fixture(autouse=True)
def _no_workers_left():
    yield
    while _STARTED:
        process = _STARTED.pop()
        process.kill()
        process.wait()


def _start_workers(tmp_path, run_dirs, *args):
    """Starts `seqzoo train toy` as one worker per run dir, each writing its temporary files
    under `tmp_path/tmp`; returns the processes, whose output lines `_printed_at` times."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(len(run_dirs))]
    (tmp_path / "tmp").mkdir(exist_ok=True)
    processes = []
    for index, run_dir in enumerate(run_dirs):
        env = dict(os.environ, PYTHONPATH=f"{ROOT / 'tests' / 'training'}{os.pathsep}{ROOT}",
                   TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(tmp_path / "tmp"),
                   TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                         "task": {"type": "worker", "index": index}}))
        command = toy_task.cli_command(
            "--run-dir", str(run_dir), "--strategy", "multi_worker_mirrored", "--batch-size", "8",
            "--no-progress", "--set", "train.learning_rate=0.05",
            "--set", f"model.weights_file={tmp_path / 'worker{task}.npz'}", *args,
        )
        process = subprocess.Popen(command, env=env, cwd=tmp_path, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _STARTED.append(process)
        process.lines = []
        process.reader = threading.Thread(target=_read_lines, args=(process,), daemon=True)
        process.reader.start()
        processes.append(process)
    return processes


def _read_lines(process):
    for line in process.stdout:
        process.lines.append((time.monotonic(), line))


def _output(process):
    return "".join(line for _, line in process.lines)


def _printed_at(process, text):
    """When `process` printed a line holding `text` (infinity if it did not).

    Time bounds end there rather than at the process's exit: under load TensorFlow's own
    teardown of a multi-worker process took 10-18 s after Python had finished (CI failed on it).
    """
    return next((at for at, line in process.lines if text in line), math.inf)


def _outputs(processes, timeout=180):
    """(returncode, output) of each process once it ended; kills them all after `timeout`."""
    try:
        for p in processes:
            p.wait(timeout=timeout)
            p.reader.join()
    finally:
        for p in processes:
            p.kill()
    return [(p.returncode, _output(p)) for p in processes]


def _run_workers(tmp_path, run_dirs, *args):
    """Runs `seqzoo train toy` as one worker per run dir; returns (returncode, output) of each."""
    return _outputs(_start_workers(tmp_path, run_dirs, *args))


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


def _latest_step(run_dir):
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    return 0 if latest is None else int(latest.rsplit("-", 1)[1])


def _wait_for_checkpoint_after(step, run_dir, processes):
    deadline = time.monotonic() + STARTUP
    while _latest_step(run_dir) <= step:
        for p in processes:
            assert p.poll() is None, _outputs(processes)
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    return _latest_step(run_dir)


def test_workers_stop_together_resume_and_end_as_one_device(tmp_path, monkeypatch):
    from seqzoo.training import tasks

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")
    run_dir = tmp_path / "run"
    endless = ("--steps", "1000000", "--set", "train.checkpoint_every=20",
               "--set", f"train.worker_timeout={WORKER_TIMEOUT}")

    # Worker 1 dies: the chief stops within the timeout, saying so and where to resume.
    workers = _start_workers(tmp_path, [run_dir, run_dir], *endless)
    _wait_for_checkpoint_after(0, run_dir, workers)
    workers[1].kill()
    killed = time.monotonic()
    (returncode, output), _ = _outputs(workers, timeout=60)
    assert _printed_at(workers[0], "stopped responding") - killed < WORKER_TIMEOUT + 15, output
    assert returncode == 1, output
    saved = _latest_step(run_dir)
    assert (f"worker 1 stopped responding; restart all workers to resume from step {saved}."
            in output), output

    # Both restart from that checkpoint; a SIGTERM to worker 1 makes both save the step they
    # reached and exit.
    workers = _start_workers(tmp_path, [run_dir, run_dir], *endless)
    _wait_for_checkpoint_after(saved, run_dir, workers)
    workers[1].send_signal(signal.SIGTERM)
    results = _outputs(workers, timeout=60)
    stopped = {int(re.search(r"Interrupted at step (\d+)", output).group(1))
               for _, output in results}
    for returncode, output in results:
        assert returncode == 130, output
        assert f"Resuming from step {saved} " in output, output
    assert len(stopped) == 1 and _latest_step(run_dir) == stopped.pop() > saved
    stopped = _latest_step(run_dir)

    # Both restart from the SIGTERM's checkpoint and finish the run with equal weights.
    final = stopped + 8
    results = _run_workers(tmp_path, [run_dir, run_dir], "--steps", str(final))
    for returncode, output in results:
        assert returncode == 0, output
        assert f"Resuming from step {stopped} " in output, output
    assert _latest_step(run_dir) == final
    chief, other = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    for key in chief.files:
        np.testing.assert_array_equal(chief[key], other[key])
    # Only the chief writes into the run directory, one event file per run; worker 1 wrote
    # into temporary directories it removed, but for the one of the run it was killed in.
    assert len(list((run_dir / "logs").iterdir())) == 3
    assert len([p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("seqzoo-")]) == 1
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"]["weights_file"] == str(tmp_path / "worker{task}.npz")

    # Each worker reads every other example, and a resumed run skips the batches trained on, so
    # the interrupted run of two workers ends where one device's uninterrupted run does.
    saved["train"]["strategy"] = "one_device"
    saved["model"]["weights_file"] = str(tmp_path / "one_device.npz")
    loop.train(run_config.resolve(base=saved), tmp_path / "one_device", progress=False)
    single = np.load(tmp_path / "one_device.npz")
    for key in chief.files:
        assert not np.allclose(chief[key], 0.0)
        np.testing.assert_allclose(chief[key], single[key], rtol=1e-5, atol=1e-6)



def _wait_for(path, processes):
    deadline = time.monotonic() + STARTUP
    while not path.exists():
        for p in processes:
            assert p.poll() is None, _outputs(processes)
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.02)


# Settings of the runs below: endless (a later --steps wins), and for the first start of a run
# directory, whose model settings the restarts keep, an evaluation that takes minutes (it writes
# worker{task}.npz as it starts).
ENDLESS = ("--steps", "1000000", "--set", f"train.worker_timeout={WORKER_TIMEOUT}")
SLOW_EVALUATION = ENDLESS + ("--set", "model.evaluation_passes=10000000")


def _sigterm_in_evaluation(tmp_path, run_dir, signalled, *args):
    """Runs two workers into an evaluation, sends SIGTERM to worker `signalled` and returns the
    outputs once both exited with code 130 within seconds."""
    (tmp_path / "worker0.npz").unlink(missing_ok=True)
    workers = _start_workers(tmp_path, [run_dir, run_dir], *args)
    _wait_for(tmp_path / "worker0.npz", workers)
    workers[signalled].send_signal(signal.SIGTERM)
    sent = time.monotonic()
    results = _outputs(workers, timeout=60)
    for worker, (returncode, output) in zip(workers, results):
        assert _printed_at(worker, "Interrupted") - sent < 10, output
        assert returncode == 130, output
    return [output for _, output in results]


def test_workers_stop_together_in_evaluations_and_when_the_chief_freezes(tmp_path):
    run_dir = tmp_path / "run"
    # In the evaluation at step 3, a SIGTERM to worker 1 ends both: step 3 is saved, though
    # train.checkpoint_every would not have saved it.
    for output in _sigterm_in_evaluation(tmp_path, run_dir, 1, *SLOW_EVALUATION,
                                         "--set", "train.eval_every=3",
                                         "--set", "train.checkpoint_every=100"):
        assert "Interrupted at step 3; checkpoint saved" in output, output
    assert _latest_step(run_dir) == 3

    # Restarted, without evaluations: SIGSTOP freezes the chief's heartbeats with it, and
    # worker 1 names it (the coordination service the chief leads went quiet, or its steps
    # stalled and the chief does not answer a probe).
    workers = _start_workers(tmp_path, [run_dir, run_dir], *ENDLESS,
                             "--set", "train.eval_every=0", "--set", "train.checkpoint_every=20")
    try:
        _wait_for_checkpoint_after(3, run_dir, workers)
        workers[0].send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        workers[1].wait(timeout=60)
        workers[1].reader.join()
        output = _output(workers[1])
        frozen_for = _printed_at(workers[1], "stopped responding") - stopped
        assert frozen_for < WORKER_TIMEOUT + 15, output
        assert workers[1].returncode == 1, output
        saved = _latest_step(run_dir)
        assert (f"worker 0 stopped responding; restart all workers to resume from step {saved}."
                in output), output
    finally:
        for worker in workers:
            worker.kill()
            worker.send_signal(signal.SIGCONT)
            worker.wait()

    # Restarted, they resume there and train to the end; a SIGTERM to the chief in the final
    # evaluation ends both, the final checkpoint kept and no metrics written. The chief leads the
    # coordination service, so it waits until worker 1 has heard the stop before it exits.
    final = saved + 3
    for output in _sigterm_in_evaluation(tmp_path, run_dir, 0, *ENDLESS, "--steps", str(final),
                                         "--set", "train.eval_every=0"):
        assert f"Resuming from step {saved} " in output, output
        assert (f"Interrupted during the final evaluation; the checkpoint of step {final} is "
                "kept") in output, output
    assert _latest_step(run_dir) == final
    assert not (run_dir / "metrics.json").exists()


def test_a_worker_that_hangs_but_heartbeats_stops_the_run_within_the_timeout(tmp_path):
    run_dir = tmp_path / "run"
    # Worker 1's input pipeline hangs at its 50th batch; its heartbeats go on.
    workers = _start_workers(tmp_path, [run_dir, run_dir], "--steps", "1000000",
                             "--set", "train.checkpoint_every=20",
                             "--set", f"train.worker_timeout={WORKER_TIMEOUT}",
                             "--set", "model.stall_worker=1",
                             "--set", "model.stall_after_batches=50")
    _wait_for_checkpoint_after(20, run_dir, workers)
    _check_the_hung_worker_stops_the_run(tmp_path, workers, time.monotonic(), 40,
                                         ", stuck outside the collectives (e.g. reading its data)")


def _check_the_hung_worker_stops_the_run(tmp_path, workers, hung_since, saved_step, where):
    """Checks that both `workers` exit 1 within the timeout of `hung_since`, worker 1 saying it
    made no progress `where` and the chief naming it with the step `saved_step` to resume from,
    which the run directory holds."""
    (chief_status, chief), (stuck_status, stuck) = _outputs(workers, timeout=60)
    for worker, message in zip(workers, ("stopped responding", "made no progress")):
        assert _printed_at(worker, message) - hung_since < WORKER_TIMEOUT + 15, (chief, stuck)
    assert _latest_step(tmp_path / "run") == saved_step
    assert chief_status == 1, chief
    assert (f"worker 1 stopped responding; restart all workers to resume from step {saved_step}."
            in chief), chief
    assert stuck_status == 1, stuck
    assert f"this worker (worker 1) made no progress for 3 s{where}; it stops." in stuck, stuck
    # Its temporary output directory is gone with it.
    assert not [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("seqzoo-")]


def test_a_worker_that_hangs_in_an_evaluation_stops_the_run_within_the_timeout(tmp_path):
    run_dir = tmp_path / "run"
    # Worker 1's evaluation at step 3 computes for longer than the timeout, in one TensorFlow
    # call its main thread waits in, while the chief waits for it: no stall. Its evaluation at
    # step 6 hangs, as one waiting for its validation data does, while its heartbeats go on.
    workers = _start_workers(tmp_path, [run_dir, run_dir], *ENDLESS,
                             "--set", "train.eval_every=3", "--set", "train.checkpoint_every=3",
                             "--set", "model.slow_evaluation_worker=1",
                             "--set", f"model.slow_evaluation_seconds={WORKER_TIMEOUT + 1}",
                             "--set", "model.stall_worker=1",
                             "--set", "model.stall_after_evaluations=1")
    _wait_for_checkpoint_after(0, run_dir, workers)
    first_evaluation = time.monotonic()
    _wait_for_checkpoint_after(3, run_dir, workers)
    saved = time.monotonic()
    assert saved - first_evaluation > WORKER_TIMEOUT
    _check_the_hung_worker_stops_the_run(
        tmp_path, workers, saved, 6,
        " in its evaluation (it computed nothing, e.g. waiting for its validation data)")
