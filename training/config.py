"""Run configuration: dataclasses with defaults, overridden by a YAML file and `--set key=value`.

A run is described by a `RunConfig`: the task name, the data source, the loop settings (`train`)
and the task's own settings (`model`, a dataclass each task declares as `Task.Config`). The
resolved config is written to `RUN_DIR/config.yaml`, so export and resume rebuild the same model.
"""

from __future__ import annotations

import dataclasses
import pathlib
import typing
from typing import Any, ClassVar

import yaml

from seqzoo.training.checked_config import CheckedConfig, above, at_least, one_of

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
JIT_COMPILE = ("auto", "on", "off")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
EARLY_STOPPING_MODES = ("max", "min")


@dataclasses.dataclass
class TrainConfig(CheckedConfig):
    """Settings of the training loop, shared by every task.

    Args:
        steps: total optimizer steps of the run (a resumed run stops at the same total).
        batch_size: global batch size, split evenly across replicas.
        accumulation_steps: each replica's batch is split into this many micro-batches whose
            gradients are summed, one after the other, before one update: the update of the
            whole batch with the activation memory of a micro-batch.
        learning_rate: learning rate of the optimizer.
        optimizer: "adam", "sgd" or "rmsprop".
        clip_norm: global-norm gradient clipping; 0 disables it.
        checkpoint_every: save a checkpoint every this many steps (and always on exit).
        keep_checkpoints: how many checkpoints to keep.
        eval_every: evaluate on the validation split every this many steps; 0 only at the end.
        early_stopping_metric: a validation metric of the task (e.g. "accuracy"); when set,
            the run stops once it has not improved for `early_stopping_patience` evaluations
            in a row. "" (default) trains for `steps` steps.
        early_stopping_mode: "max" when larger values of the metric are better, else "min".
        early_stopping_patience: evaluations without improvement before stopping.
        log_every: write TensorBoard scalars and report progress every this many steps.
        steps_per_execution: at most this many steps per call of the compiled step function.
            A call also ends at every logging, checkpoint and evaluation step, so with the
            default the host waits on the device once per logging window (where NaN losses are
            caught, keeping the last good checkpoint).
        jit_compile: compile the step with XLA: "on", "off" (default), or "auto" (on where XLA
            can compile it: one replica per worker and no string ops in the model). Off by
            default: on CPUs, XLA made the recurrent layers' train steps slower in
            `bench recurrent`.
        strategy: "auto", "one_device", "mirrored" or "multi_worker_mirrored".
        worker_timeout: in a multi-worker run, the seconds a worker may miss the heartbeats of
            TensorFlow's coordination service, or the steps may make no progress (a worker
            hangs but heartbeats), before the others take it as lost: they stop (exit
            non-zero) saying which worker it was and from which step all of them resume once
            restarted. Keep it above the time of one step; checkpoint saves and evaluations
            are not counted, since the workers agree on a stop after them, but a worker that
            computes nothing for that long in its evaluation (it waits for its data) stops as
            hung.
        mixed_precision: "float32", or float32 weights with computations in "mixed_float16"
            (for GPUs; the loss is scaled dynamically so small gradients do not underflow) or
            "mixed_bfloat16" (for TPUs and CPUs with bfloat16 units). Model outputs, softmax
            and losses stay float32, and exports are float32.
        seed: seed of data generation, shuffling and weight initialisation.
    """

    section: ClassVar[str] = "train"

    steps: int = at_least(1, 1000)
    batch_size: int = at_least(1, 64)
    accumulation_steps: int = at_least(1, 1)
    learning_rate: float = above(0.0, 1e-3)
    optimizer: str = one_of(OPTIMIZERS, "adam")
    clip_norm: float = at_least(0.0, 1.0)
    checkpoint_every: int = at_least(1, 100)
    keep_checkpoints: int = at_least(1, 3)
    eval_every: int = at_least(0, 0)
    early_stopping_metric: str = ""
    early_stopping_mode: str = one_of(EARLY_STOPPING_MODES, "max")
    early_stopping_patience: int = at_least(1, 3)
    log_every: int = at_least(1, 10)
    steps_per_execution: int = at_least(1, 100)
    jit_compile: str = one_of(JIT_COMPILE, "off")
    strategy: str = one_of(STRATEGIES, "auto")
    worker_timeout: int = at_least(1, 30)
    mixed_precision: str = one_of(PRECISIONS, "float32")
    seed: int = 0


@dataclasses.dataclass
class RunConfig:
    """Everything needed to rebuild a run: task, data source, loop settings and model settings."""

    task: str
    data: str = "builtin"
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    model: Any = None

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "data": self.data,
            "train": dataclasses.asdict(self.train),
            "model": dataclasses.asdict(self.model) if self.model is not None else {},
        }


def _coerce(value: str, target_type) -> Any:
    """Parses a `--set` string into the type of the dataclass field it overrides."""
    origin = typing.get_origin(target_type)
    if origin is typing.Union or (origin is not None and type(None) in typing.get_args(target_type)):
        args = [a for a in typing.get_args(target_type) if a is not type(None)]
        if value.lower() in ("none", "null"):
            return None
        return _coerce(value, args[0])
    if target_type is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean (true/false), received {value!r}")
    if target_type in (int, float):
        try:
            return target_type(value)
        except ValueError:
            raise ValueError(f"expected {'an integer' if target_type is int else 'a number'}, "
                             f"received {value!r}") from None
    if target_type is str:
        return value
    return yaml.safe_load(value)


def build_dataclass(cls, values: dict | None, section: str):
    """Builds dataclass `cls` from a dict, rejecting unknown keys with the list of valid ones."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"Unknown {section} setting(s) {unknown}; accepted: {', '.join(sorted(fields))}."
        )
    hints = typing.get_type_hints(cls)
    for key, value in list(values.items()):
        if isinstance(value, str) and hints.get(key) is not str:
            try:
                values[key] = _coerce(value, hints[key])
            except (TypeError, ValueError) as err:
                raise ValueError(f"Bad value for {section}.{key}: {err}") from None
    return cls(**values)


def parse_overrides(items: list[str] | None) -> dict:
    """Turns ["train.steps=10", "model.units=8", "data=file:x.tsv"] into a nested dict."""
    nested: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value (e.g. train.steps=100); received {item!r}.")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) > 2 or parts[0] not in ("task", "data", "train", "model"):
            raise ValueError(
                f"--set key {key!r} is not one of: data, train.<name>, model.<name>."
            )
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve(
    task: str | None = None,
    config_file: str | pathlib.Path | None = None,
    overrides: list[str] | None = None,
    base: dict | None = None,
) -> RunConfig:
    """Resolves defaults (the task's `train_defaults` over `TrainConfig`'s) < `base` (e.g. a run
    dir's saved config) < YAML file < `--set` overrides."""
    from seqzoo.training.tasks import get_task_class

    raw: dict = dict(base or {})
    if config_file is not None:
        path = pathlib.Path(config_file)
        if not path.is_file():
            raise ValueError(f"Config file {str(path)!r} does not exist.")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"Config file {str(path)!r} must hold a mapping at top level.")
        raw = _merge(raw, loaded)
    raw = _merge(raw, parse_overrides(overrides))
    if task is not None:
        raw["task"] = task
    if not raw.get("task"):
        raise ValueError("No task given; name one (e.g. `seqzoo train sentiment`).")
    unknown = sorted(set(raw) - {"task", "data", "train", "model"})
    if unknown:
        raise ValueError(f"Unknown config section(s) {unknown}; accepted: task, data, train, model.")
    task_cls = get_task_class(raw["task"])
    return RunConfig(
        task=raw["task"],
        data=str(raw.get("data", "builtin")),
        train=build_dataclass(TrainConfig, {**task_cls.train_defaults, **(raw.get("train") or {})},
                              "train"),
        model=build_dataclass(task_cls.Config, raw.get("model"), "model"),
    )


def save(config: RunConfig, run_dir: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(run_dir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    tmp.replace(path)
    return path


def load(run_dir: str | pathlib.Path, overrides: list[str] | None = None) -> RunConfig:
    """Loads the config a run directory was trained with, optionally overridden."""
    path = pathlib.Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ValueError(
            f"{str(run_dir)!r} is not a run directory: it has no config.yaml "
            "(create one with `seqzoo train TASK --run-dir DIR`)."
        )
    return resolve(base=yaml.safe_load(path.read_text()) or {}, overrides=overrides)
