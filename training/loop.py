"""The custom distributed training loop behind `seqzoo train`.

Keras 3 `model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the loop is
written out: the model and optimizer are built in `strategy.scope()`, batches come from
`strategy.distribute_datasets_from_function`, and each step runs in a `tf.function` through
`strategy.run`. A run directory holds `config.yaml`, `checkpoints/`, TensorBoard `logs/` and
`metrics.json`; training again into the same directory resumes from its latest checkpoint, past
the batches already seen.
"""

from __future__ import annotations

import contextlib
import json
import math
import pathlib
import shutil
import signal
import tempfile
import threading
import time

import keras
import numpy as np
import tensorflow as tf
import yaml
from tensorflow.core.framework import summary_pb2

from seqzoo.training import config as run_config
from seqzoo.training.strategy import is_chief, make_strategy, worker_id
from seqzoo.training.tasks import get_task_class

# What `tf.summary.scalar` attaches, written directly because that wrapper needs the tensorboard
# package, which training does not depend on.
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
)

_OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def configure(task: str | None, run_dir=None, *, config_file=None,
              overrides: list[str] | None = None) -> run_config.RunConfig:
    """Resolves the config of a run: defaults < `run_dir/config.yaml` < `config_file` < overrides.

    Args:
        task: task name; may be None when `run_dir` already holds a run.
        run_dir: the run directory, if any; its saved config is the base when it exists (a
            resumed run rebuilds the same model).
        config_file: optional YAML file with `task`, `data`, `train` and `model` sections.
        overrides: `key=value` strings, e.g. `["train.steps=100", "model.units=8"]`.

    Returns:
        The resolved `RunConfig`.

    Example:
        >>> cfg = configure("sentiment", "runs/sentiment", overrides=["train.steps=10"])
        >>> cfg.train.steps
        10
    """
    base = None
    if run_dir is not None and (pathlib.Path(run_dir) / "config.yaml").is_file():
        base = yaml.safe_load((pathlib.Path(run_dir) / "config.yaml").read_text()) or {}
    if base and task is not None and base.get("task") != task:
        raise ValueError(
            f"Run directory {str(run_dir)!r} holds a {base.get('task')!r} run, not {task!r}; "
            "pass another --run-dir (or the same task to resume it)."
        )
    return run_config.resolve(task=task, config_file=config_file, overrides=overrides, base=base)


def make_optimizer(train: run_config.TrainConfig) -> keras.optimizers.Optimizer:
    """The optimizer named by `train.optimizer`; gradient clipping is done by the loop."""
    return _OPTIMIZERS[train.optimizer](learning_rate=train.learning_rate)


def make_train_step(strategy, task, model, optimizer, train: run_config.TrainConfig, step=None):
    """Builds the distributed training step.

    Each replica's loss is its per-example losses summed and divided by the global batch size,
    plus `model.losses` divided by the number of replicas, so that the gradients summed across
    replicas equal the gradient of the global-batch mean on one device.

    Args:
        strategy: the `tf.distribute.Strategy` the model and optimizer were built under.
        task: the `Task` whose `compute_loss` gives per-example losses and metrics.
        model: the Keras model.
        optimizer: the Keras optimizer, built on `model.trainable_variables`.
        train: loop settings; `batch_size` (global) and `clip_norm` are used.
        step: optional integer variable incremented in the same graph as the update, so a
            checkpoint never pairs weights with the wrong step.

    Returns:
        A `tf.function` taking a distributed iterator and returning `(loss, metrics)`: scalar
        tensors averaged over the global batch.

    Example:
        >>> step_fn = make_train_step(strategy, task, model, optimizer, cfg.train)
        >>> loss, metrics = step_fn(iter(distributed_dataset))
    """
    global_batch_size = train.batch_size
    clip_norm = float(train.clip_norm)

    def replica_step(batch):
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            per_example_loss, per_example_metrics = task.compute_loss(model, batch, training=True)
            loss = tf.nn.compute_average_loss(per_example_loss, global_batch_size=global_batch_size)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        grads = tape.gradient(loss, variables)
        if clip_norm > 0:
            # The optimizer sums gradients across replicas itself, so the norm of the summed
            # gradient is found here and its clipping factor applied to the local parts.
            summed = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, [g for g in grads if g is not None]
            )
            norm = tf.linalg.global_norm(summed)
            factor = clip_norm / tf.maximum(norm, clip_norm)
            grads = [None if g is None else g * factor for g in grads]
        optimizer.apply_gradients(zip(grads, variables))
        metrics = {
            name: tf.nn.compute_average_loss(
                tf.cast(value, loss.dtype), global_batch_size=global_batch_size
            )
            for name, value in per_example_metrics.items()
        }
        return loss, metrics

    @tf.function
    def train_step(iterator):
        loss, metrics = strategy.run(replica_step, args=(next(iterator),))
        if step is not None:
            step.assign_add(1)
        # One reduce per tensor: MultiWorkerMirroredStrategy fails on a nest of them.
        return tf.nest.map_structure(
            lambda value: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None),
            (loss, metrics),
        )

    return train_step


def build_task(config: run_config.RunConfig, run_dir=None):
    """The (unprepared) task instance `config` describes, keeping its assets under `run_dir`."""
    return get_task_class(config.task)(
        config.model, data=config.data, run_dir=run_dir, seed=config.train.seed
    )


def _restore_latest(checkpoint: tf.train.Checkpoint, directory: pathlib.Path):
    """Restores the newest checkpoint in `directory`; returns its path, or None if there is none."""
    latest = tf.train.latest_checkpoint(str(directory))
    if latest is None:
        return None
    try:
        # Partial: `restore` loads the model alone, without the optimizer's slots.
        checkpoint.restore(latest).expect_partial().assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as err:
        raise ValueError(
            f"Checkpoint {latest!r} does not match the model built from the run's config.yaml "
            f"(was the model config changed?): {err}"
        ) from None
    return latest


def _assert_finite_weights(model: keras.Model, step: int) -> None:
    """Refuses to go on (and so to checkpoint) once any weight is NaN or infinite."""
    for weight in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight))):
            raise ValueError(
                f"Weight {weight.path!r} became NaN or infinite at step {step}; the run was "
                "stopped and the last good checkpoint kept. Lower train.learning_rate or set "
                "train.clip_norm."
            )


def _check_workers_agree(strategy, restored_step: int) -> None:
    """Fails fast, instead of hanging in a collective, when workers resume at different steps."""
    if getattr(strategy, "cluster_resolver", None) is None:
        return
    # All equal exactly when n * sum(x^2) == sum(x)^2 (the variance is zero).
    moments = strategy.run(lambda: tf.constant([restored_step, restored_step**2], tf.int64))
    total, total_square = strategy.reduce(tf.distribute.ReduceOp.SUM, moments, axis=None).numpy()
    if strategy.num_replicas_in_sync * int(total_square) != int(total) ** 2:
        raise ValueError(
            f"The workers restored different steps (this one: {restored_step}). Every worker "
            "resumes from the chief's checkpoints, so --run-dir must be on storage that all "
            "workers share."
        )


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turns SIGTERM (e.g. `docker stop`) into KeyboardInterrupt so both save and exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_json(path: pathlib.Path, values: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def train(config: run_config.RunConfig, run_dir, *, progress: bool = True) -> dict[str, float]:
    """Trains `config.task` into `run_dir`, resuming from its latest checkpoint if it has one.

    In a multi-worker run only the chief writes to `run_dir`; the other workers write their
    (identical) checkpoints and logs to a temporary directory that is removed at the end.

    Args:
        config: the resolved run config (see `configure`).
        run_dir: directory for `config.yaml`, `checkpoints/`, `logs/` and `metrics.json`.
        progress: show a progress bar with loss, metrics and steps per second.

    Returns:
        The final validation metrics from `task.evaluate`, also written to `run_dir/metrics.json`.

    Raises:
        ValueError: bad config, a checkpoint that does not fit the model, or a loss or weight
            that became NaN (the last good checkpoint is kept).
        KeyboardInterrupt: on Ctrl-C or SIGTERM, after saving a checkpoint.

    Example:
        >>> cfg = configure("sentiment", "runs/sentiment", overrides=["train.steps=200"])
        >>> train(cfg, "runs/sentiment")
        {'accuracy': 0.84}
    """
    strategy = make_strategy(config.train.strategy)
    run_dir = pathlib.Path(run_dir)
    chief = is_chief(strategy)
    write_dir = run_dir if chief else pathlib.Path(
        tempfile.mkdtemp(prefix=f"seqzoo-{worker_id(strategy)}-")
    )
    try:
        return _train(strategy, config, run_dir, write_dir, chief=chief, progress=progress)
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _train(strategy, config, run_dir, write_dir, *, chief, progress):
    tc = config.train
    replicas = strategy.num_replicas_in_sync
    if tc.batch_size % replicas:
        raise ValueError(
            f"train.batch_size={tc.batch_size} must be a multiple of the number of replicas "
            f"({replicas}) so every replica gets the same batch size."
        )
    keras.utils.set_random_seed(tc.seed)
    run_config.save(config, write_dir)
    task = build_task(config, write_dir)
    task.prepare()
    with strategy.scope():
        model = task.build_model()
        optimizer = make_optimizer(tc)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    manager = tf.train.CheckpointManager(
        checkpoint, str(write_dir / "checkpoints"), max_to_keep=tc.keep_checkpoints
    )
    # Every worker resumes from the chief's checkpoints (run_dir is shared storage in a cluster).
    resumed = _restore_latest(checkpoint, run_dir / "checkpoints")
    current = saved = int(step.numpy())
    _check_workers_agree(strategy, current)
    if resumed is not None:
        print(f"Resuming from step {current} ({resumed}).", flush=True)

    writer = tf.summary.create_file_writer(str(write_dir / "logs"))
    metrics_path = write_dir / "metrics.json"

    def log(values: dict) -> None:
        with writer.as_default(step=current):
            for name, value in values.items():
                tf.summary.write(name, tf.constant(value, tf.float32), metadata=_SCALAR_METADATA)
        writer.flush()

    def save() -> None:
        nonlocal saved
        _assert_finite_weights(model, current)
        manager.save(checkpoint_number=current)
        saved = current

    def evaluate() -> dict[str, float]:
        metrics = {name: float(value) for name, value in task.evaluate(model).items()}
        log({f"val_{name}": value for name, value in metrics.items()})
        return metrics

    if current < tc.steps:
        # A resumed run skips the batches already trained on, so it sees the same data as an
        # uninterrupted one; each step takes one batch per replica fed by this input pipeline.
        dataset = strategy.distribute_datasets_from_function(
            lambda context: task.train_dataset(tc.batch_size, context).skip(
                current * context.num_replicas_in_sync // context.num_input_pipelines
            )
        )
        iterator = iter(dataset)
        train_step = make_train_step(strategy, task, model, optimizer, tc, step)
        bar = None
        if progress and chief:
            bar = keras.utils.Progbar(tc.steps, stateful_metrics=["steps_per_sec"])
        window: dict[str, float] = {}
        window_steps, window_seconds = 0, 0.0
        with _sigterm_as_interrupt():
            try:
                while current < tc.steps:
                    started = time.perf_counter()
                    loss, metrics = train_step(iterator)
                    loss = float(loss)
                    window_seconds += time.perf_counter() - started
                    current += 1
                    if not math.isfinite(loss):
                        raise ValueError(
                            f"The loss became {loss} at step {current}; the run was stopped and "
                            f"the last good checkpoint (step {saved}) kept. Lower "
                            "train.learning_rate, set train.clip_norm, or check the data."
                        )
                    window_steps += 1
                    for name, value in {"loss": loss, **metrics}.items():
                        window[name] = window.get(name, 0.0) + float(value)
                    if current % tc.log_every == 0 or current == tc.steps:
                        means = {name: total / window_steps for name, total in window.items()}
                        means["steps_per_sec"] = window_steps / max(window_seconds, 1e-9)
                        log({**means, "learning_rate": float(np.asarray(optimizer.learning_rate))})
                        if bar is not None:
                            bar.update(current, values=list(means.items()))
                        window, window_steps, window_seconds = {}, 0, 0.0
                    if current % tc.checkpoint_every == 0:
                        save()
                    if tc.eval_every and current % tc.eval_every == 0 and current < tc.steps:
                        evaluate()
            except KeyboardInterrupt:
                # The signal may land between a finished step and the Python counter's update.
                current = int(step.numpy())
                if current != saved:
                    save()
                print(
                    f"\nInterrupted at step {current}; checkpoint saved in "
                    f"{run_dir / 'checkpoints'}. Train again into the same run directory to "
                    "resume.",
                    flush=True,
                )
                raise
        if current != saved:
            save()
    final = evaluate()
    _write_json(metrics_path, final)
    return final


def restore(run_dir):
    """Rebuilds a trained run's task and model from `run_dir`.

    Args:
        run_dir: a run directory written by `train`.

    Returns:
        `(task, model)`: the prepared task (vocabularies reloaded from the run's assets) and the
        model with the weights of the latest checkpoint.

    Example:
        >>> task, model = restore("runs/sentiment")
        >>> module = task.export_module(model)
    """
    run_dir = pathlib.Path(run_dir)
    config = run_config.load(run_dir)
    task = build_task(config, run_dir)
    task.prepare()
    model = task.build_model()
    if _restore_latest(tf.train.Checkpoint(model=model), run_dir / "checkpoints") is None:
        raise ValueError(
            f"Run directory {str(run_dir)!r} has no checkpoint; train it first "
            f"(`seqzoo train {config.task} --run-dir {run_dir}`)."
        )
    return task, model
