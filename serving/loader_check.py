"""Checking SavedModel versions against TF Serving's loader, without TF Serving (`seqzoo check`).

A version passes when it loads the way TF Serving loads it (session loader: tag `serve`, restore
op, init op) and every record of its `assets.extra/tf_serving_warmup_requests` answers through
the signature it names, which is what TF Serving requires before it serves a version.
"""

from __future__ import annotations

import dataclasses
import pathlib

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from seqzoo.serving.model_registry import numeric_versions
from seqzoo.serving.servable import WARMUP_FILE, Servable
from seqzoo.serving.serving_error import ServingError


@dataclasses.dataclass
class LoaderCheck:
    """The outcome of loading one version under TF Serving's loader.

    Args:
        path: the version directory.
        error: what failed (None when the version loaded and every warmup record answered).
        replayed: warmup records replayed.
        signatures: the callable signatures of the version.
        warmed: the signatures the warmup records reached.
    """

    path: pathlib.Path
    error: str | None = None
    replayed: int = 0
    signatures: tuple[str, ...] = ()
    warmed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def _sorted_versions(path: pathlib.Path) -> list[pathlib.Path]:
    versions = numeric_versions(path)
    return [versions[number] for number in sorted(versions)]


def version_dirs(path: str | pathlib.Path) -> list[pathlib.Path]:
    """The version directories under `path`: a version itself (it holds `saved_model.pb`), every
    version of a model directory, or every version of every model of a models directory."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a directory; give a version directory "
                         "(models/NAME/VERSION), a model directory or a models directory.")
    found = _sorted_versions(path) or [
        version for child in sorted(path.iterdir())
        if child.is_dir() and not child.name.startswith(".") for version in _sorted_versions(child)]
    if not found:
        raise ValueError(f"No SavedModel version under {str(path)!r}: expected VERSION/"
                         "saved_model.pb or NAME/VERSION/saved_model.pb below it.")
    return found


def _warmed_signatures(path: pathlib.Path) -> tuple[str, ...]:
    names = set()
    for record in tf.data.TFRecordDataset(str(path / WARMUP_FILE)):
        entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = entry.WhichOneof("log_type")
        if kind == "multi_inference_log":
            names.update(task.model_spec.signature_name or "serving_default"
                         for task in entry.multi_inference_log.request.tasks)
        elif kind is not None:
            names.add(getattr(entry, kind).request.model_spec.signature_name or "serving_default")
    return tuple(sorted(names))


def check_version(path: str | pathlib.Path, name: str = "model") -> LoaderCheck:
    """Loads one version with TF Serving's loader and replays its warmup records."""
    path = pathlib.Path(path)
    try:
        servable = Servable(name, 0, path)
    except (tf.errors.OpError, OSError, ValueError, RuntimeError) as err:
        message = err.message if isinstance(err, tf.errors.OpError) else str(err)
        return LoaderCheck(path, error=f"does not load: {message.strip()}")
    try:
        replayed = servable.warmup()
    except ServingError as err:
        return LoaderCheck(path, error=str(err), signatures=tuple(servable.signature_names))
    finally:
        servable.close()
    warmed = _warmed_signatures(path) if replayed else ()
    return LoaderCheck(path, replayed=replayed, signatures=tuple(servable.signature_names),
                       warmed=warmed)
