"""Which models and versions the server holds: discovery on disk, loading, lookup."""

from __future__ import annotations

import logging
import pathlib
import threading

import grpc
from tensorflow_serving.apis import get_model_status_pb2

from serving.servable import Servable
from serving.serving_error import ServingError

log = logging.getLogger(__name__)


def numeric_versions(base_path: pathlib.Path) -> dict[int, pathlib.Path]:
    """Version directories of a model: numeric names holding a `saved_model.pb`.

    Anything else (the hidden temp dirs of an export in progress, stray files) is ignored, so a
    half-written version is never loaded.
    """
    if not base_path.is_dir():
        return {}
    return {int(child.name): child for child in base_path.iterdir()
            if child.name.isdigit() and (child / "saved_model.pb").is_file()}


class ModelRegistry:
    """The SavedModels being served, kept in step with the directories they come from.

    Either `models_dir` (each subdirectory is a model, named after it; new subdirectories are
    picked up) or `model_name` with `model_base_path` (one model, as TF Serving's flags). Every
    version found is loaded; requests without a version get the latest one.

    Args:
        models_dir: a directory of models `NAME/VERSION/saved_model.pb`.
        model_name: name of the single model to serve (with `model_base_path`).
        model_base_path: directory of that model's numeric version directories.

    Example:
    ```python
    registry = ModelRegistry("models")
    registry.poll()
    registry.get("sentiment").predict("serving_default", {"text": ...})
    ```
    """

    def __init__(self, models_dir=None, *, model_name: str | None = None,
                 model_base_path=None):
        if (models_dir is None) == (model_base_path is None):
            raise ValueError(
                "Give either models_dir or model_name with model_base_path. Received: "
                f"models_dir={models_dir}, model_base_path={model_base_path}"
            )
        if model_base_path is not None and not model_name:
            raise ValueError(f"model_base_path needs a model_name. Received: model_name={model_name!r}")
        self.models_dir = pathlib.Path(models_dir) if models_dir is not None else None
        self._fixed = ({model_name: pathlib.Path(model_base_path)}
                       if model_base_path is not None else {})
        self._servables: dict[str, dict[int, Servable]] = {}
        self._failed: set[pathlib.Path] = set()
        self._lock = threading.Lock()

    def _base_paths(self) -> dict[str, pathlib.Path]:
        if self._fixed:
            return self._fixed
        if not self.models_dir.is_dir():
            return {}
        return {child.name: child for child in self.models_dir.iterdir()
                if child.is_dir() and not child.name.startswith(".")}

    def poll(self) -> None:
        """Loads versions that appeared and drops versions whose directories went away."""
        found = {name: numeric_versions(path) for name, path in self._base_paths().items()}
        for name, versions in found.items():
            for version, path in sorted(versions.items()):
                if version in self._servables.get(name, {}) or path in self._failed:
                    continue
                try:
                    servable = Servable(name, version, path)
                    replayed = servable.warmup()
                except Exception as err:  # a broken version must not take the server down
                    log.error("Could not load %s version %d from %s: %s", name, version, path, err)
                    self._failed.add(path)
                    continue
                with self._lock:
                    self._servables.setdefault(name, {})[version] = servable
                log.info("Serving %s version %d (%d warmup requests)", name, version, replayed)
        with self._lock:
            for name in list(self._servables):
                kept = {v: s for v, s in self._servables[name].items() if v in found.get(name, {})}
                if kept:
                    self._servables[name] = kept
                else:
                    del self._servables[name]

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._servables)

    def versions(self, name: str) -> list[int]:
        with self._lock:
            return sorted(self._servables.get(name, {}))

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable of `name` at `version` (latest when None); NOT_FOUND when not loaded."""
        if label:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Version labels are not supported (received label {label!r}); ask for a version "
                "number or for the latest version.",
            )
        with self._lock:
            versions = self._servables.get(name, {})
            if version is None and versions:
                return versions[max(versions)]
            if version is not None and version in versions:
                return versions[version]
        wanted = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {wanted}")

    def status(self, name: str, version: int | None = None,
               label: str | None = None) -> get_model_status_pb2.GetModelStatusResponse:
        """TF Serving's model status: every loaded version (or the one asked for), AVAILABLE."""
        if version is not None or label:
            versions = [self.get(name, version, label).version]
        else:
            # With nothing loaded, get() raises the NOT_FOUND TF Serving answers.
            versions = self.versions(name) or [self.get(name).version]
        response = get_model_status_pb2.GetModelStatusResponse()
        for number in sorted(versions, reverse=True):
            entry = response.model_version_status.add()
            entry.version = number
            entry.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
            entry.status.SetInParent()  # error_code OK, shown as TF Serving shows it
        return response
