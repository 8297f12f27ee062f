"""A run directory: what `seqzoo train` writes and resumes from, and `seqzoo export` reads.

```
runs/NAME/
  config.yaml     the resolved settings the checkpoints were trained with
  checkpoints/    model, optimizer and step (tf.train.CheckpointManager)
  assets/         what the task built once: vocabularies, fitted starting weights
  logs/           TensorBoard scalars
  metrics.json    the final validation metrics
```

A directory holds a run once it has a checkpoint. Until then (a first run that failed on a bad
data file, or was stopped before its first checkpoint) its files pin nothing: the next run
starts afresh with its own settings. A run with checkpoints resumes with its saved settings,
and refuses settings that would make it a different experiment.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import yaml

from seqzoo.training import config as run_config

# What a resumed run may change: how long and how it runs, not what it trains on or how.
RESUMABLE_SETTINGS = ("train.steps", "train.strategy", "train.checkpoint_every",
                      "train.keep_checkpoints", "train.eval_every", "train.log_every",
                      "train.steps_per_execution", "train.jit_compile",
                      "train.early_stopping_metric", "train.early_stopping_mode",
                      "train.early_stopping_patience", "train.accumulation_steps",
                      "train.worker_timeout")


class RunDirectory:
    """The files of one run (see the module docstring) and the questions asked about them.

    Args:
        path: the directory; it need not exist yet.

    Example:

    >>> run = RunDirectory("runs/sentiment")
    >>> run.latest_checkpoint()
    'runs/sentiment/checkpoints/ckpt-600'
    """

    # Everything a run writes; `clear` removes these and nothing else the directory holds.
    ENTRIES = ("config.yaml", "checkpoints", "assets", "logs", "metrics.json")

    def __init__(self, path):
        self.path = pathlib.Path(path)

    @property
    def config_file(self) -> pathlib.Path:
        return self.path / "config.yaml"

    @property
    def checkpoints_dir(self) -> pathlib.Path:
        return self.path / "checkpoints"

    @property
    def assets_dir(self) -> pathlib.Path:
        return self.path / "assets"

    @property
    def logs_dir(self) -> pathlib.Path:
        return self.path / "logs"

    @property
    def metrics_file(self) -> pathlib.Path:
        return self.path / "metrics.json"

    def latest_checkpoint(self) -> str | None:
        """Path prefix of the newest checkpoint, or None when the directory holds no run."""
        import tensorflow as tf

        return tf.train.latest_checkpoint(str(self.checkpoints_dir))

    def saved_settings(self) -> dict | None:
        """The settings of the run this directory holds, or None when it holds none (no
        checkpoint yet, whatever config.yaml says)."""
        if self.latest_checkpoint() is None or not self.config_file.is_file():
            return None
        return yaml.safe_load(self.config_file.read_text()) or {}

    def clear(self) -> None:
        """Removes the run's files (see `ENTRIES`), leaving anything else in the directory; a
        directory without the `config.yaml` every run writes first holds no run and is left
        alone (its `logs/` or `assets/` are someone else's)."""
        if not self.config_file.is_file():
            return
        for name in self.ENTRIES:
            entry = self.path / name
            if entry.is_dir():
                shutil.rmtree(entry)
            elif entry.exists():
                entry.unlink()

    def save_config(self, config: run_config.RunConfig) -> None:
        run_config.save(config, self.path)

    def write_metrics(self, metrics: dict[str, float]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.metrics_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.metrics_file)


def configure(task: str | None, run_dir=None, *, config_file=None,
              overrides: list[str] | None = None, fresh: bool = False,
              fresh_flag: str = "--fresh") -> run_config.RunConfig:
    """Resolves the settings of a run: defaults < the run's saved settings < `config_file` <
    `overrides`.

    The saved settings are the base only when `run_dir` holds a run (has a checkpoint) and
    `fresh` is false; the run is then resumed, and may only change `RESUMABLE_SETTINGS`.

    Args:
        task: task name; may be None when `run_dir` holds a run.
        run_dir: the run directory, if any.
        config_file: optional YAML file with `task`, `data`, `train` and `model` sections.
        overrides: `key=value` strings, e.g. `["train.steps=100", "model.units=8"]`.
        fresh: ignore the run `run_dir` holds (training with `fresh=True` deletes it).
        fresh_flag: the caller's flag for `fresh`, named in the error messages.

    Returns:
        The resolved `RunConfig`.

    Raises:
        ValueError: a bad setting, or a resumed run given settings that differ from its own
            (the message lists them and says how to start afresh).

    Example:
        >>> cfg = configure("sentiment", "runs/sentiment", overrides=["train.steps=10"])
        >>> cfg.train.steps
        10
    """
    saved = None if run_dir is None or fresh else RunDirectory(run_dir).saved_settings()
    if saved is None:
        return run_config.resolve(task=task, config_file=config_file, overrides=overrides)
    fresh_hint = f"pass {fresh_flag} to delete it and start over, or train into another --run-dir"
    if task is not None and saved.get("task") != task:
        raise ValueError(
            f"Run directory {str(run_dir)!r} holds a {saved.get('task')!r} run, not {task!r}; "
            f"{fresh_hint}."
        )
    config = run_config.resolve(task=task, config_file=config_file, overrides=overrides,
                                base=saved)
    changed = [(key, old, new) for key, old, new in _differences(
        run_config.resolve(base=saved).to_dict(), config.to_dict())
        if key not in RESUMABLE_SETTINGS]
    if changed:
        listed = "; ".join(f"{key} {old!r} -> {new!r}" for key, old, new in changed)
        raise ValueError(
            f"Run directory {str(run_dir)!r} holds a run with checkpoints trained with other "
            f"settings ({listed}). Leave those settings out to resume it (only "
            f"{', '.join(RESUMABLE_SETTINGS)} may change), or {fresh_hint}."
        )
    return config


def _differences(before: dict, after: dict, prefix: str = ""):
    """(dotted key, old, new) of every leaf that differs between two nested dicts."""
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            yield from _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            yield f"{prefix}{key}", old, new


def restore(run_dir):
    """Rebuilds a trained run's task and model from `run_dir`.

    Args:
        run_dir: a run directory written by `seqzoo.training.loop.train`.

    Returns:
        `(task, model)`: the prepared task (vocabularies reloaded from the run's assets) and the
        model with the weights of the latest checkpoint.

    Example:
        >>> task, model = restore("runs/sentiment")
        >>> module = task.export_module(model)
    """
    from seqzoo.training.checkpoints import Checkpoints
    from seqzoo.training.tasks import build_task

    run = RunDirectory(run_dir)
    config = run_config.load(run.path)
    if run.latest_checkpoint() is None:
        raise ValueError(
            f"Run directory {str(run.path)!r} has no checkpoint; train it first "
            f"(`seqzoo train {config.task} --run-dir {run.path}`)."
        )
    task = build_task(config, run.path)
    task.prepare()
    model = task.build_model()
    Checkpoints(model).restore_latest(run.checkpoints_dir)
    return task, model
