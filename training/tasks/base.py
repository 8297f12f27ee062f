"""The contract between a model family and the training loop, export and evaluation."""

from __future__ import annotations

import abc
import dataclasses
import functools
import pathlib
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf


class Task(abc.ABC):
    """Glue between one model family, its data and the generic loop.

    The loop (training/loop.py) calls, in order: `prepare()` once on every worker (loads data and
    builds or reloads vocabularies under `run_dir/assets/`, so a resumed run and the export see the
    same ones); `build_model()` inside `strategy.scope()`; `train_dataset()` through
    `strategy.distribute_datasets_from_function`; `compute_loss()` inside `strategy.run`; and
    `evaluate()` on the host. Export (serving/export.py) calls `prepare()`, `build_model()`,
    restores the checkpoint, then `export_module()` and `warmup_inputs()`.

    Subclasses set `name` and `Config` (a dataclass of model and data settings, every field with a
    default, usually a `CheckedConfig` so bad values fail early), optionally `train_defaults`,
    and implement the abstract methods. What every task needs is written here once: the default
    config (`config=None`), the prepared-check (`prepare()` marks the task prepared, and `train_dataset`, `build_model`,
    `evaluate`, `export_module` and `warmup_inputs` of any subclass raise a clear error when
    called before it, as Keras marks a layer built after its `build`), the training batches
    (`shuffled_batches`) and what a run fits or builds once and keeps in its assets
    (`cached_vocabulary`, `cached_weights`). Each task also sets `tiny_run`, the settings of a
    run that takes seconds.
    """

    name: ClassVar[str] = ""
    # `--set` overrides of a run that trains for seconds and still exports every signature: tests
    # that cover every registered task (e.g. under TF Serving's loader) train each with them.
    tiny_run: ClassVar[tuple[str, ...]] = ("train.steps=2", "train.batch_size=8")
    # Loop settings this task trains with by default, over TrainConfig's (e.g. more steps).
    train_defaults: ClassVar[dict] = {}

    @dataclasses.dataclass
    class Config:
        pass

    def __init__(self, config=None, data: str = "builtin",
                 run_dir: str | pathlib.Path | None = None, seed: int = 0):
        self.config = config if config is not None else self.Config()
        self.data = data
        self.run_dir = pathlib.Path(run_dir) if run_dir is not None else None
        self.seed = seed
        self.prepared = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "prepare" in own:
            cls.prepare = _marking_prepared(own["prepare"])
        for method in _NEED_PREPARED:
            if method in own:
                setattr(cls, method, _requiring_prepared(own[method]))

    @property
    def assets_dir(self) -> pathlib.Path | None:
        return None if self.run_dir is None else self.run_dir / "assets"

    @abc.abstractmethod
    def prepare(self) -> None:
        """Loads the data source and builds (or reloads from `assets_dir`) vocabularies."""

    @abc.abstractmethod
    def train_dataset(self, global_batch_size: int,
                      input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """An endless, seeded, shuffled dataset of per-replica batches, sharded by `input_context`.

        The per-replica batch size is `input_context.get_per_replica_batch_size(global_batch_size)`
        (or the global one without a context); batches are `drop_remainder=True` so every replica
        sees the same shape.
        """

    def shuffled_batches(self, dataset: tf.data.Dataset, size: int, global_batch_size: int,
                         input_context: tf.distribute.InputContext | None = None
                         ) -> tf.data.Dataset:
        """What `train_dataset` returns, made from a finite dataset of `size` examples: this input
        pipeline's shard, shuffled with the task's seed, repeated and batched to the per-replica
        batch size (`drop_remainder=True`), prefetched."""
        batch_size = global_batch_size
        if input_context is not None:
            batch_size = input_context.get_per_replica_batch_size(global_batch_size)
            dataset = dataset.shard(input_context.num_input_pipelines,
                                    input_context.input_pipeline_id)
        return (dataset.shuffle(size, seed=self.seed, reshuffle_each_iteration=True)
                .repeat()
                .batch(batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))

    def cached_weights(self, filename: str, fit) -> list:
        """Weights fitted once per run: read from `assets_dir/filename` when a previous
        `prepare()` saved them there (so a resumed run and its export never refit), else
        `fit()`'s list of arrays, saved there."""
        return self._cached(filename, fit, _read_arrays, _write_arrays)

    def cached_vocabulary(self, filename: str, build) -> list[str]:
        """A vocabulary (or any list of names) built once per run: read from
        `assets_dir/filename`, one entry per line, when a previous `prepare()` wrote it (so a
        resumed run and its export use the same ids whatever the data now holds), else
        `build()`'s list of strings, written there."""
        return self._cached(filename, build, _read_lines, _write_lines)

    def _cached(self, filename, compute, read, write):
        path = None if self.assets_dir is None else self.assets_dir / filename
        if path is not None and path.is_file():
            return read(path)
        value = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path, value)
        return value

    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """Builds the Keras model (called inside `strategy.scope()`); weights are created here."""

    @abc.abstractmethod
    def compute_loss(self, model: keras.Model, batch, training: bool):
        """Returns `(per_example_loss, per_example_metrics)`.

        `per_example_loss` has shape [per_replica_batch]; the loop sums it and divides by the
        global batch size (so gradients are correct under any number of replicas) and adds
        `model.losses`. `per_example_metrics` maps a metric name to a [per_replica_batch] float
        tensor averaged the same way (e.g. accuracy as 0/1 per example).
        """

    def update_losses(self, model: keras.Model, batch, training: bool):
        """Yields the losses of one training step, one per optimizer update, each as a
        zero-argument function returning what `compute_loss` returns; the loop calls each under
        its own gradient tape and updates the weights before asking for the next.

        One by default, `compute_loss` on the whole batch. A task training with truncated
        backpropagation through time yields one per chunk of its sequences, each starting from
        the state the previous chunk ended in.
        """
        yield lambda: self.compute_loss(model, batch, training)

    @abc.abstractmethod
    def evaluate(self, model: keras.Model) -> dict[str, float]:
        """Metrics on the validation split (e.g. accuracy, BLEU), computed on the host."""

    @abc.abstractmethod
    def export_module(self, model: keras.Model) -> tf.Module:
        """A `tf.Module` tracking `model` whose `.signatures` dict maps signature names (at least
        "serving_default") to `tf.function`s with an `input_signature`; raw inputs in (text,
        images, observations), labels/captions/translations out."""

    def warmup_inputs(self) -> dict[str, list]:
        """Example inputs by input name, one value per example in each list. Export writes them
        as TF Serving warmup requests (batch size 1) to every signature whose inputs they all
        cover, and as `tf.Example` features to classify/regress signatures; TF Serving replays
        them before it serves a version, and export checks every one answers."""
        return {}


# The methods that read what `prepare()` loads; the Task base checks it ran before each of them.
_NEED_PREPARED = ("train_dataset", "build_model", "evaluate", "export_module", "warmup_inputs")


def _marking_prepared(prepare):
    @functools.wraps(prepare)
    def wrapper(self, *args, **kwargs):
        result = prepare(self, *args, **kwargs)
        self.prepared = True
        return result
    return wrapper


def _requiring_prepared(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.prepared:
            raise ValueError(f"{type(self).__name__}.prepare() must be called before "
                             f"{method.__name__}().")
        return method(self, *args, **kwargs)
    return wrapper


def _read_arrays(path):
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _write_arrays(path, arrays):
    np.savez(path, *arrays)


def _read_lines(path):
    return path.read_text(encoding="utf-8").split("\n")


def _write_lines(path, lines):
    path.write_text("\n".join(lines), encoding="utf-8")
