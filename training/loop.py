"""The custom distributed training loop behind `seqzoo train`.

Keras 3 `model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the loop is
written out: the model and optimizer are built in `strategy.scope()`, batches come from
`strategy.distribute_datasets_from_function`, and each step runs in a `tf.function` through
`strategy.run` (see `train_step.py`). Training again into the same run directory resumes from
its latest checkpoint, past the batches already seen (see `run_directory.py`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from seqzoo.training import config as run_config
from seqzoo.training.checkpoints import Checkpoints
from seqzoo.training.early_stopping import EarlyStopping
from seqzoo.training.progress_display import ProgressDisplay, run_summary
from seqzoo.training.recurrent_kernels import kernel_report, reported_kernels
from seqzoo.training.run_directory import RunDirectory
from seqzoo.training.strategy import check_workers_agree, is_chief, make_strategy, worker_id
from seqzoo.training.tasks import build_task
from seqzoo.training.train_step import make_optimizer, make_train_step, precision_policy
from seqzoo.training.training_log import TrainingLog
from seqzoo.training.worker_group import WorkerGroup


def train(config: run_config.RunConfig, run_dir, *, progress: bool = True,
          fresh: bool = False) -> dict[str, float]:
    """Trains `config.task` into `run_dir`, resuming from its latest checkpoint if it has one.

    In a multi-worker run only the chief writes to `run_dir`; the other workers write their
    (identical) checkpoints and logs to a temporary directory that is removed at the end. The
    workers stop together (see `WorkerGroup`): a SIGTERM to any of them makes all save a
    checkpoint of the same step (in any phase: an evaluation in progress ends at once on
    every worker), and a worker that stops responding (or hangs, in its steps or its
    evaluation) for `train.worker_timeout` seconds makes the others stop with `WorkerLost`.
    The chief prints a summary at the end: run directory, last checkpoint, validation metrics
    and the export command.

    Args:
        config: the resolved run config (see `run_directory.configure`).
        run_dir: directory for `config.yaml`, `checkpoints/`, `assets/`, `logs/` and
            `metrics.json`. Files of a run without a checkpoint are replaced.
        progress: show progress every `train.log_every` steps (a bar on a terminal, plain
            lines otherwise).
        fresh: delete the run `run_dir` holds and start over.

    Returns:
        The final validation metrics from `task.evaluate`, also written to `run_dir/metrics.json`.

    Raises:
        ValueError: bad config, a checkpoint that does not fit the model, or a loss or weight
            that became NaN (the last good checkpoint is kept).
        KeyboardInterrupt: on Ctrl-C or SIGTERM (to any worker), after saving a checkpoint.
        WorkerLost: another worker stopped responding; the message says from which step all
            workers resume once restarted.

    Example:
        >>> cfg = configure("sentiment", "runs/sentiment", overrides=["train.steps=200"])
        >>> train(cfg, "runs/sentiment")
        {'accuracy': 0.84}
    """
    strategy = make_strategy(config.train.strategy, config.train.worker_timeout)
    replicas = strategy.num_replicas_in_sync
    if config.train.batch_size % replicas:
        raise ValueError(
            f"train.batch_size={config.train.batch_size} must be a multiple of the number of "
            f"replicas ({replicas}) so every replica gets the same batch size."
        )
    if config.train.batch_size % (replicas * config.train.accumulation_steps):
        raise ValueError(
            f"train.batch_size={config.train.batch_size} must be a multiple of the number of "
            f"replicas ({replicas}) times train.accumulation_steps "
            f"({config.train.accumulation_steps}) so every micro-batch has the same size."
        )
    run = RunDirectory(run_dir)
    chief = is_chief(strategy)
    if chief and (fresh or run.latest_checkpoint() is None):
        run.clear()
    with _output_directory(run, chief, worker_id(strategy)) as out:
        return _train(strategy, config, run, out, chief=chief, progress=progress, fresh=fresh)


@contextlib.contextmanager
def _output_directory(run: RunDirectory, chief: bool, worker: str):
    """The run directory on the chief; a temporary one, removed at the end, elsewhere."""
    if chief:
        yield run
        return
    out = RunDirectory(tempfile.mkdtemp(prefix=f"seqzoo-{worker}-"))
    try:
        yield out
    finally:
        shutil.rmtree(out.path, ignore_errors=True)


def _train(strategy, config, run, out, *, chief, progress, fresh):
    keras.utils.set_random_seed(config.train.seed)
    out.save_config(config)
    try:
        task, model, optimizer, checkpoints, early_stopping = _prepare(
            strategy, config, run, out, fresh=fresh)
    except KeyboardInterrupt:
        print("Interrupted before training started; no checkpoint was written.", flush=True)
        raise
    step = checkpoints.current_step
    if chief and step >= config.train.steps:
        print(f"The run already reached train.steps={config.train.steps}; evaluating its "
              "checkpoint (--steps N trains it further).", flush=True)
    display = ProgressDisplay(config.train.steps) if progress and chief else None
    workers = WorkerGroup(strategy, config.train.worker_timeout, checkpoints.step,
                          scratch=None if chief else out.path)
    with workers.stopping_together(), contextlib.closing(TrainingLog(out.logs_dir, display)) as log:
        try:
            with display or contextlib.nullcontext():
                run_steps(strategy, task, model, optimizer, checkpoints, early_stopping, log,
                          config.train, workers,
                          on_traced=functools.partial(_print_kernels, model) if chief else None)
        except KeyboardInterrupt:
            _report_interrupt(checkpoints, run)
            raise
        except workers.failures as err:
            raise workers.lost(err, checkpoints.saved_step) from None
        step = checkpoints.current_step
        if display:
            # Decoding a validation split can take a while: say what the silence is.
            print(f"Evaluating step {step} on the validation data...", flush=True)
        try:
            metrics = workers.interruptible(task.evaluate, model)
            if metrics is None:
                raise KeyboardInterrupt("SIGTERM to a worker")
            metrics = {name: float(value) for name, value in metrics.items()}
        except KeyboardInterrupt:
            print(f"Interrupted during the final evaluation; the checkpoint of step {step} is "
                  f"kept in {run.checkpoints_dir}. Train again into the same run directory to "
                  "evaluate it.", flush=True)
            raise
        # The summary below shows them; the display would repeat them.
        log.write_validation(step, metrics, show=False)
    out.write_metrics(metrics)
    if chief:
        print(run_summary(run.path, checkpoints.latest_path, step, metrics), flush=True)
    return metrics


def _prepare(strategy, config, run, out, *, fresh):
    """The prepared task, its model and optimizer, their checkpoints and the run's early
    stopping, restored to the run's latest checkpoint (unless `fresh`)."""
    task = build_task(config, out.path)
    task.prepare()
    with strategy.scope(), precision_policy(config.train.mixed_precision):
        model = task.build_model()
        optimizer = make_optimizer(config.train)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    early_stopping = EarlyStopping(config.train)
    checkpoints = Checkpoints(model, optimizer, step, out.checkpoints_dir,
                              keep=config.train.keep_checkpoints,
                              state={"early_stopping": early_stopping})
    # Every worker resumes from the chief's checkpoints (run_dir is shared storage in a cluster).
    resumed = None if fresh else checkpoints.restore_latest(run.checkpoints_dir)
    check_workers_agree(strategy, checkpoints.current_step)
    if resumed is not None:
        print(f"Resuming from step {checkpoints.current_step} ({resumed}).", flush=True)
    return task, model, optimizer, checkpoints, early_stopping


def _print_kernels(model, reported):
    """Prints the line naming the kernel each recurrent layer of `model` trains with, if it
    has any, given what the layers `reported` while the step traced."""
    report = kernel_report(model, len(tf.config.list_logical_devices("GPU")), reported)
    if report:
        print(report, flush=True)


def run_steps(strategy, task, model, optimizer, checkpoints, early_stopping, log, train,
              workers, on_traced=None):
    """Trains from the restored step up to `train.steps`, then saves a checkpoint.

    Every step takes one batch per replica; the window means go to `log` every
    `train.log_every` steps, a checkpoint is saved every `train.checkpoint_every` steps and the
    validation metrics are logged every `train.eval_every` steps (0: only at the end), where
    `early_stopping` may end the run before `train.steps`. After each call of the step
    function, and during and after each evaluation, the run stops if a worker of the
    `WorkerGroup` `workers` got SIGTERM.

    After the first call of the step function, `on_traced` (if given) is called with the
    kernels the recurrent layers reported while it traced (see `reported_kernels`).

    Raises:
        ValueError: the loss became NaN or infinite (the last good checkpoint is kept).
        KeyboardInterrupt: a worker got SIGTERM (the caller saves a checkpoint).
    """
    start = checkpoints.current_step
    if start >= train.steps:
        return
    # A resumed run skips the batches already trained on, so it sees the same data as an
    # uninterrupted one; each step takes one batch per replica fed by this input pipeline.
    batches = iter(strategy.distribute_datasets_from_function(
        lambda context: task.train_dataset(train.batch_size, context).skip(
            start * context.num_replicas_in_sync // context.num_input_pipelines)
    ))
    train_step = make_train_step(strategy, task, model, optimizer, train, checkpoints.step)
    current = start
    while current < train.steps:
        started = time.perf_counter()
        with workers.stepping(), (reported_kernels() if on_traced
                                  else contextlib.nullcontext()) as reported:
            # The first call traces and compiles the step function: it runs one step, and its
            # time is left out of the rate shown.
            timed = current != start
            loss, metrics = train_step(batches, _steps_to_next_stop(current, train) if timed
                                       else 1)
        if on_traced:
            on_traced(reported)
            on_traced = None
        loss = float(loss)
        # The step function stops after a non-finite loss, so the step variable names it.
        done, current = checkpoints.current_step - current, checkpoints.current_step
        if not math.isfinite(loss):
            raise ValueError(
                f"The loss became {loss} at step {current}; the run was stopped and the last "
                f"good checkpoint (step {checkpoints.saved_step or 0}) kept. Lower "
                "train.learning_rate, set train.clip_norm, or check the data."
            )
        log.add_step(loss, metrics, time.perf_counter() - started, steps=done, timed=timed)
        if current % train.log_every == 0 or current == train.steps:
            log.write_window(current, learning_rate=float(np.asarray(optimizer.learning_rate)))
        if current % train.checkpoint_every == 0:
            checkpoints.save()
        # After the host work of this step, so that the workers enter the next call of the
        # step function together: a worker still saving (slow under load) must not stall the
        # others' steps for `train.worker_timeout` and be taken as stuck.
        if workers.stop_requested():
            raise KeyboardInterrupt("SIGTERM to a worker")
        if train.eval_every and current % train.eval_every == 0 and current < train.steps:
            metrics = workers.interruptible(task.evaluate, model)
            # The workers a SIGTERM interrupted and those that had finished agree here, so
            # that all of them save this step.
            if workers.stop_requested():
                raise KeyboardInterrupt("SIGTERM to a worker")
            log.write_validation(current, metrics)
            if early_stopping.should_stop(metrics, current):
                print(f"Stopping early at step {current}: validation "
                      f"{train.early_stopping_metric} has not improved for "
                      f"{train.early_stopping_patience} evaluations (best at step "
                      f"{early_stopping.best_step}).", flush=True)
                break
    checkpoints.save()


def _steps_to_next_stop(current: int, train) -> int:
    """Steps from `current` to the next step that logs, saves, evaluates or ends the run,
    at most `train.steps_per_execution`."""
    periods = [train.log_every, train.checkpoint_every] + (
        [train.eval_every] if train.eval_every else [])
    return min([train.steps_per_execution, train.steps - current]
               + [period - current % period for period in periods])


def _report_interrupt(checkpoints: Checkpoints, run: RunDirectory) -> None:
    """Saves the step a Ctrl-C or SIGTERM stopped at, and says where training can resume."""
    # The signal may land between a finished step and the loop's counter, so the step variable
    # (incremented with the update) says what was trained.
    path = checkpoints.save()
    step = checkpoints.current_step
    if path is None:
        print(f"Interrupted at step {step}, before any checkpoint; nothing was saved.",
              flush=True)
        return
    print(f"Interrupted at step {step}; checkpoint saved in {run.checkpoints_dir}. Train "
          "again into the same run directory to resume.", flush=True)
