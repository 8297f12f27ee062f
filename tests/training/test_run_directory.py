"""Run directories: a failed first run pins nothing, a resumed run refuses other settings and says
how to start over (`--fresh`), and interrupts at step 0 or in an evaluation say what happened; the
installed command names the recurrent kernels it trains with."""

import io
import os
import signal
import subprocess
import sys

import pytest
import yaml

import toy_task
from seqzoo.serving import cli
from seqzoo.training import loop, run_directory
from seqzoo.training.progress_display import ProgressDisplay, run_summary
from seqzoo.training.run_directory import RunDirectory
from seqzoo.training.tasks.sentiment import SentimentTask

SEQZOO = os.path.join(os.path.dirname(sys.executable), "seqzoo")


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    from seqzoo.training import tasks

    monkeypatch.setitem(tasks.TASKS, "toy", "toy_task:ToyTask")
    monkeypatch.setattr(cli, "COMMANDS", ("train",))


def _train(run_dir, *args):
    return cli.main(["train", "toy", "--run-dir", str(run_dir), "--strategy", "one_device",
                     "--batch-size", "8", "--no-progress", *args])


def _saved(run_dir):
    return yaml.safe_load((run_dir / "config.yaml").read_text())


def test_failed_first_run_does_not_pin_its_settings(tmp_path, capsys):
    run_dir = tmp_path / "run"
    # NaN targets from the first batch on: the run fails before its first checkpoint.
    assert _train(run_dir, "--steps", "5", "--set", "model.nan_after_batches=0",
                  "--set", "model.noise=0.5") == 2
    assert "loss became nan at step 1" in capsys.readouterr().err
    assert _saved(run_dir)["model"]["noise"] == 0.5
    (run_dir / "assets").mkdir()
    (run_dir / "assets" / "vocabulary.txt").write_text("stale")

    assert _train(run_dir, "--steps", "3") == 0
    out = capsys.readouterr().out
    assert "Resuming" not in out
    assert (_saved(run_dir)["model"]["noise"], _saved(run_dir)["model"]["nan_after_batches"]) == (
        0.1, -1)
    assert not (run_dir / "assets").exists()  # the failed run's assets went with it
    assert RunDirectory(run_dir).latest_checkpoint().endswith("ckpt-3")


def test_seqzoo_train_after_a_bad_data_file_just_works(tmp_path):
    """The issue's walk through the installed command: `--data file:typo.tsv` is refused at
    once, a file the task cannot read fails its first run, then a run with other settings
    trains (nothing pinned), then that run refuses other settings and says how to start over."""
    run_dir = tmp_path / "runs" / "sentiment"

    def seqzoo_train(*args):
        return subprocess.run(
            [SEQZOO, "train", "sentiment", "--run-dir", str(run_dir), "--strategy", "one_device",
             *(f"--set={setting}" for setting in SentimentTask.tiny_run), *args],
            capture_output=True, text=True, timeout=600, cwd=tmp_path, stdin=subprocess.DEVNULL)

    typo = seqzoo_train("--data", "file:typo.tsv")
    assert typo.returncode == 2
    assert typo.stderr == "seqzoo train: error: Data file 'typo.tsv' does not exist.\n"
    assert not run_dir.exists()

    (tmp_path / "reviews.tsv").write_text("text\tsentiment\ngreat film\tpositive\n")
    unread = seqzoo_train("--data", "file:reviews.tsv", "--set", "model.units=8")
    assert unread.returncode == 2
    assert "lacks column(s) ['label']" in unread.stderr
    assert _saved(run_dir)["data"] == "file:reviews.tsv"

    trained = seqzoo_train("--steps", "3")
    assert trained.returncode == 0, trained.stderr
    assert "Resuming" not in trained.stdout
    # Once, first, without TensorFlow's log lines: the zoo's GRU runs its CPU kernel, its loops
    # not compiled (the sentiment batches are padded to their longest review).
    assert trained.stdout.startswith(
        "Recurrent kernels on the CPU: hoisted-projection CPU for l0_bwd, l0_fwd.\n")
    assert trained.stdout.count("Recurrent kernels") == 1 and trained.stderr == ""
    assert (_saved(run_dir)["data"], _saved(run_dir)["model"]["units"]) == ("builtin", 4)
    assert f"Last checkpoint: {run_dir / 'checkpoints' / 'ckpt-3'} (step 3)" in trained.stdout

    other = seqzoo_train("--set", "model.units=8")
    assert other.returncode == 2
    assert other.stderr.startswith(
        f"seqzoo train: error: Run directory {str(run_dir)!r} holds a run with checkpoints "
        "trained with other settings (model.units 4 -> 8). Leave those settings out")
    assert "pass --fresh to delete it and start over" in other.stderr

    fresh = seqzoo_train("--set", "model.units=8", "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert "Resuming" not in fresh.stdout
    assert _saved(run_dir)["model"]["units"] == 8
    assert RunDirectory(run_dir).latest_checkpoint().endswith("ckpt-2")


def test_resumed_run_lists_other_settings_and_fresh_starts_over(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert _train(run_dir, "--steps", "4", "--set", "model.l2=0.01") == 0
    (run_dir / "notes.txt").write_text("the user's own file")
    capsys.readouterr()

    # More steps, another strategy and log interval are the same experiment, resumed.
    config = run_directory.configure("toy", run_dir, overrides=[
        "train.steps=9", "train.strategy=mirrored", "train.log_every=3"])
    assert (config.train.steps, config.model.l2, config.train.batch_size) == (9, 0.01, 8)

    assert _train(run_dir, "--steps", "6", "--set", "model.l2=0.5",
                  "--set", "train.learning_rate=0.1") == 2
    err = capsys.readouterr().err
    assert ("holds a run with checkpoints trained with other settings (model.l2 0.01 -> 0.5; "
            "train.learning_rate 0.001 -> 0.1)") in err
    assert "pass --fresh to delete it and start over" in err
    assert "train.steps" not in err.split("(only")[0]  # a longer run is not a difference
    assert _saved(run_dir)["model"]["l2"] == 0.01  # the refused attempt wrote nothing

    assert _train(run_dir, "--steps", "2", "--set", "model.l2=0.5", "--fresh") == 0
    assert "Resuming" not in capsys.readouterr().out
    assert _saved(run_dir)["model"]["l2"] == 0.5
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.index")) == [
        "ckpt-2.index"]
    assert (run_dir / "notes.txt").read_text() == "the user's own file"

    # A directory no run wrote into (no config.yaml) keeps its own logs/ and assets/.
    (tmp_path / "project" / "logs").mkdir(parents=True)
    RunDirectory(tmp_path / "project").clear()
    assert (tmp_path / "project" / "logs").is_dir()

    with pytest.raises(ValueError, match="holds a 'toy' run, not 'sentiment'; pass --fresh"):
        run_directory.configure("sentiment", run_dir)


def test_stop_at_step_zero_saves_and_claims_nothing(tmp_path, capsys, monkeypatch):
    def interrupted_step(*args, **kwargs):
        def step(iterator, steps=1):
            raise KeyboardInterrupt
        return step

    monkeypatch.setattr(loop, "make_train_step", interrupted_step)
    assert _train(tmp_path, "--steps", "5") == 130
    out = capsys.readouterr().out
    assert "Interrupted at step 0, before any checkpoint; nothing was saved." in out
    assert "checkpoint saved" not in out
    assert RunDirectory(tmp_path).latest_checkpoint() is None


def test_interrupt_before_training_says_so_without_a_traceback(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # While the task prepares its data (the loop reports it) ...
    monkeypatch.setattr(toy_task.ToyTask, "prepare", interrupted)
    assert _train(tmp_path, "--steps", "5") == 130
    captured = capsys.readouterr()
    assert captured.out == "Interrupted before training started; no checkpoint was written.\n"
    assert captured.err == ""
    # ... and while TensorFlow loads, before the loop (the command line reports it).
    monkeypatch.setattr(run_directory, "configure", interrupted)
    assert _train(tmp_path, "--steps", "5") == 130
    assert capsys.readouterr().err == "seqzoo train: interrupted\n"
    assert RunDirectory(tmp_path).latest_checkpoint() is None


def test_interrupt_in_final_evaluation_says_so_and_a_rerun_evaluates(tmp_path, capsys,
                                                                      monkeypatch):
    evaluate = toy_task.ToyTask.evaluate

    def interrupted(self, model):
        raise KeyboardInterrupt

    monkeypatch.setattr(toy_task.ToyTask, "evaluate", interrupted)
    assert _train(tmp_path, "--steps", "3") == 130
    assert (f"Interrupted during the final evaluation; the checkpoint of step 3 is kept in "
            f"{tmp_path / 'checkpoints'}") in capsys.readouterr().out
    assert not (tmp_path / "metrics.json").exists()

    monkeypatch.setattr(toy_task.ToyTask, "evaluate", evaluate)
    assert _train(tmp_path, "--steps", "3") == 0
    out = capsys.readouterr().out
    assert "Resuming from step 3 " in out and (tmp_path / "metrics.json").is_file()
    assert ("The run already reached train.steps=3; evaluating its checkpoint (--steps N "
            "trains it further).") in out


@pytest.mark.parametrize("strategy", ["one_device", "mirrored"])
def test_a_sigterm_in_an_evaluation_saves_and_stops(tmp_path, capsys, monkeypatch, strategy):
    def sigterm(self, model):
        signal.raise_signal(signal.SIGTERM)
        raise AssertionError("the SIGTERM did not interrupt the evaluation")

    monkeypatch.setattr(toy_task.ToyTask, "evaluate", sigterm)
    args = ("--steps", "6", "--set", "train.eval_every=3", "--set", "train.checkpoint_every=100",
            "--strategy", strategy)
    # The periodic evaluation at step 3: the step is saved though checkpoint_every is not due.
    assert _train(tmp_path, *args) == 130
    assert "Interrupted at step 3; checkpoint saved" in capsys.readouterr().out
    assert RunDirectory(tmp_path).latest_checkpoint().endswith("ckpt-3")
    # The final evaluation of the resumed run: the final checkpoint is kept, no metrics written.
    assert _train(tmp_path, *args) == 130
    assert ("Interrupted during the final evaluation; the checkpoint of step 6 is kept"
            in capsys.readouterr().out)
    assert RunDirectory(tmp_path).latest_checkpoint().endswith("ckpt-6")
    assert not (tmp_path / "metrics.json").exists()


def test_terminal_bar_redraws_one_line_with_window_means_and_validation_on_its_own_line():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    with ProgressDisplay(40, stream) as display:
        display.update(20, {"loss": 0.30361, "accuracy": 0.5}, steps_per_sec=10.0)
        display.validation(20, {"accuracy": 0.51234, "loss": 0.7})
        display.update(40, {"loss": 0.0022, "accuracy": 1.0}, steps_per_sec=20.0)
    first, last = stream.getvalue().split("\r")[1:]
    assert first == "20/40 [==========>.........]  loss 0.3036  accuracy 0.5  10.0 steps/s  " \
                    "0:02 left\x1b[K\nstep 20/40  validation  accuracy 0.5123  loss 0.7\n"
    # The last line shows the last window's means, like every line before it.
    assert last == "40/40 [====================]  loss 0.0022  accuracy 1  20.0 steps/s  " \
                   "0:00 left\x1b[K\n"


def test_the_summary_shows_test_split_metrics_apart_from_validation():
    summary = run_summary("runs/sentiment", "runs/sentiment/ckpt-3", 300, {
        "accuracy": 0.91, "loss": 0.25, "test_accuracy": 0.875, "test_loss": 0.3})
    assert summary.splitlines()[2:4] == ["Validation:      accuracy 0.91  loss 0.25",
                                         "Test:            accuracy 0.875  loss 0.3"]
