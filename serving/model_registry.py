"""Which models and versions the server holds: discovery on disk, loading, lookup."""

from __future__ import annotations

import logging
import pathlib
import threading

import grpc
from google.protobuf import text_format
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from seqzoo.serving.servable import Servable
from seqzoo.serving.serving_error import ServingError

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

    One of three sources, as TF Serving's flags: `models_dir` (each subdirectory is a model,
    named after it; new subdirectories are picked up), `model_name` with `model_base_path` (one
    model), or `model_config_file` (TF Serving's text `ModelServerConfig`, re-read on every poll;
    relative base paths are taken from the working directory, as TF Serving does). Every version
    found is loaded; requests without a version get the latest one.

    Args:
        models_dir: a directory of models `NAME/VERSION/saved_model.pb`.
        model_name: name of the single model to serve (with `model_base_path`).
        model_base_path: directory of that model's numeric version directories.
        model_config_file: a TF Serving model config file (`model_config_list`).

    Example:
    ```python
    registry = ModelRegistry("models")
    registry.poll()
    registry.get("sentiment").predict("serving_default", {"text": ...})
    ```
    """

    def __init__(self, models_dir=None, *, model_name: str | None = None,
                 model_base_path=None, model_config_file=None):
        given = [models_dir is not None, model_base_path is not None,
                 model_config_file is not None]
        if sum(given) != 1:
            raise ValueError(
                "Give one of models_dir, model_name with model_base_path, or model_config_file. "
                f"Received: models_dir={models_dir}, model_base_path={model_base_path}, "
                f"model_config_file={model_config_file}"
            )
        if (model_base_path is not None) != bool(model_name):
            raise ValueError(
                "model_name and model_base_path go together. Received: "
                f"model_name={model_name!r}, model_base_path={model_base_path}"
            )
        self.models_dir = pathlib.Path(models_dir) if models_dir is not None else None
        self.model_config_file = (pathlib.Path(model_config_file)
                                  if model_config_file is not None else None)
        if self.model_config_file is not None:
            self._read_config()  # a bad file is an error at start, not only in the poll log
        self._fixed = ({model_name: pathlib.Path(model_base_path)}
                       if model_base_path is not None else {})
        self._servables: dict[str, dict[int, Servable]] = {}
        self._failed: set[pathlib.Path] = set()
        self._lock = threading.Lock()

    def _read_config(self) -> dict[str, pathlib.Path]:
        path = self.model_config_file
        if not path.is_file():
            raise ValueError(f"Model config file {str(path)!r} does not exist.")
        config = model_server_config_pb2.ModelServerConfig()
        try:
            text_format.Parse(path.read_text(), config)
        except text_format.ParseError as err:
            raise ValueError(
                f"Model config file {str(path)!r} is not a text ModelServerConfig: {err}"
            ) from None
        return {entry.name: pathlib.Path(entry.base_path)
                for entry in config.model_config_list.config}

    def _base_paths(self) -> dict[str, pathlib.Path]:
        if self._fixed:
            return self._fixed
        if self.model_config_file is not None:
            return self._read_config()
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
