"""The installed `seqzoo` command: one file per command, its own output only, fast answers.

These run the console script the user runs (`.venv/bin/seqzoo`), in a separate process.
"""

import importlib
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from seqzoo.serving.cli import COMMANDS, build_parser
from seqzoo.serving.cli import main as seqzoo
from seqzoo.training import config as run_config
from seqzoo.training import run_directory
from seqzoo.training.tasks import SUMMARIES, TASKS

SEQZOO = os.path.join(os.path.dirname(sys.executable), "seqzoo")
# A line TensorFlow's C++ side writes (absl or TF's own format), or absl's banner about them.
TF_LOG_LINE = re.compile(r"^([IWEF]\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |"
                         r"WARNING: All log messages before absl)", re.MULTILINE)
HEAVY = ("tensorflow", "keras", "tensorflow_serving")


def _run(*args, env=None, timeout=300):
    return subprocess.run([SEQZOO, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def _imported(stderr: str) -> set[str]:
    """The modules a run imported, from its PYTHONPROFILEIMPORTTIME lines."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_command_lives_in_the_file_named_after_it():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(subparsers.choices) == list(COMMANDS)
    for name, parser in subparsers.choices.items():
        module = importlib.import_module(f"seqzoo.serving.cli.{name}")
        assert module.__file__.endswith(os.path.join("cli", f"{name}.py"))
        assert parser.get_default("func") is module.run


def test_train_help_lists_every_task_with_a_line_and_shows_defaults():
    result = _run("train", "--help")
    assert result.returncode == 0
    for name in TASKS:
        assert re.search(rf"^  {name} +{re.escape(SUMMARIES[name])}$", result.stdout,
                         re.MULTILINE), name
    defaults = run_config.TrainConfig()
    # Argparse wraps help lines; the tasks' own budgets are those their runs start with.
    text = " ".join(result.stdout.split())
    captioning, frames = (run_directory.configure(task).train
                          for task in ("captioning", "frame_labeling"))
    assert (f"(default: {defaults.steps}; captioning {captioning.steps}, frame_labeling "
            f"{frames.steps})") in text
    assert f"(default: {defaults.batch_size}; frame_labeling {frames.batch_size})" in text
    assert f"(default: {defaults.strategy}:" in result.stdout
    assert "1950-2049" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "nosuch"],
     f"seqzoo train: error: Unknown task 'nosuch'; accepted: {', '.join(sorted(TASKS))}.\n"),
    (["train", "sentiment", "--data", "file:typo.tsv"],
     "seqzoo train: error: Data file 'typo.tsv' does not exist."),
    (["train", "sentiment", "--data", "tfds"], "Bad data source 'tfds'; accepted: builtin"),
    (["export", "no_such_run"], "'no_such_run' is not a run directory: it has no config.yaml"),
    (["attention", "no_such_run", "hello"], "'no_such_run' is not a directory; give a run"),
])
def test_argument_errors_come_before_tensorflow_loads(args, message):
    result = _run(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 2
    assert message in result.stderr
    assert _heavy(_imported(result.stderr)) == []


def test_output_is_the_commands_own_and_tensorflow_logs_come_with_verbose(tmp_path):
    args = ["gradients", "--length", "3", "--units", "2", "--batch", "1", "--cells", "gru",
            "--out", str(tmp_path / "flow.png")]
    quiet = _run(*args)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout.splitlines()[0].split() == ["t", "-", "k", "gru"]
    assert quiet.stdout.splitlines()[-1] == f"Drawn to {tmp_path / 'flow.png'}"
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    verbose = subprocess.run([SEQZOO, *args, "--verbose"], capture_output=True, text=True,
                             timeout=300, env=env)
    assert verbose.returncode == 0
    assert verbose.stdout == quiet.stdout
    assert TF_LOG_LINE.search(verbose.stderr), verbose.stderr


def test_serve_warns_of_a_models_dir_that_does_not_exist(tmp_path):
    missing = tmp_path / "no_such_dir"
    process = subprocess.Popen(
        [SEQZOO, "serve", "--models-dir", str(missing), "--port", "0", "--rest_api_port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr.readline().startswith(
            f"seqzoo serve: warning: --models-dir '{missing}' does not exist (yet); nothing is "
            "served until models are exported there.")
        assert process.stdout.readline().startswith("Serving no models yet: gRPC on 127.0.0.1:")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not TF_LOG_LINE.search(process.stderr.read())
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("via", ["rest", "grpc"])
def test_predict_answers_without_tensorflow_over_each_protocol_alone(server, via):
    # The other protocol's port is closed: each protocol works alone.
    closed = str(_closed_port())
    ports = (["--rest_api_port", str(server.rest_port), "--port", closed] if via == "rest" else
             ["--grpc", "--port", str(server.grpc_port), "--rest_api_port", closed])
    started = time.perf_counter()
    result = _run("predict", "toy", "hi", "hello there", *ports,
                  env={"PYTHONPROFILEIMPORTTIME": "1"})
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "hi", "  label: short", "  length: 2", "hello there", "  label: long", "  length: 11"]
    assert _heavy(_imported(result.stderr)) == []
    # Generous (a quiet machine answers in a few tenths of a second; importing TensorFlow alone
    # takes seconds), so that a loaded machine does not fail it.
    assert elapsed < 10, elapsed


def test_export_of_a_run_that_never_saved_a_checkpoint_says_so(tmp_path, capsys):
    # The first run of a typo'd data file leaves a config but no checkpoint: export must say
    # the run is untrained, not repeat the data error.
    config = run_config.resolve("sentiment", overrides=["data=file:typo.tsv"])
    run_config.save(config, tmp_path)
    assert seqzoo(["export", str(tmp_path), "--models-dir", str(tmp_path / "models")]) == 2
    assert "has no checkpoint; train it first" in capsys.readouterr().err
