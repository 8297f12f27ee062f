"""Which models and versions the server holds, managed as TF Serving manages them: the model
config, version policies and labels, loading, unloading and the states it reports."""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import threading
import time

import grpc
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from seqzoo.serving.batch_scheduler import BatchScheduler
from seqzoo.serving.batching_parameters import BatchingParameters, read_batching_parameters
from seqzoo.serving.servable import Servable
from seqzoo.serving.serving_error import ServingError
from seqzoo.serving.serving_metrics import ServingMetrics

log = logging.getLogger(__name__)

State = get_model_status_pb2.ModelVersionStatus.State
# Read at every request: the enum wrapper's attribute lookup costs more than the rest of `get`.
_AVAILABLE = State.AVAILABLE
PLATFORM = "tensorflow"
# TF Serving's per-model batching parameters, in a version directory.
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"


def numeric_versions(base_path: pathlib.Path) -> dict[int, pathlib.Path]:
    """Version directories of a model: numeric names holding a `saved_model.pb`.

    Anything else (the hidden temp dirs of an export in progress, stray files) is ignored, so a
    half-written version is never loaded.
    """
    if not base_path.is_dir():
        return {}
    return {int(child.name): child for child in base_path.iterdir()
            if child.name.isdigit() and (child / "saved_model.pb").is_file()}


def aspired_versions(config: model_server_config_pb2.ModelConfig, on_disk) -> set[int]:
    """The versions a model's `model_version_policy` asks for among those on disk: `latest`
    (the default, `num_versions` highest, 1 when unset), `all`, or `specific` ones."""
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(on_disk)
    if kind == "specific":
        return set(on_disk) & set(policy.specific.versions)
    count = max(policy.latest.num_versions, 1) if kind == "latest" else 1
    return set(sorted(on_disk)[-count:])


def _fingerprint(path: pathlib.Path) -> tuple:
    """What changes when a version directory's files are rewritten (names, sizes, times)."""
    try:
        return tuple(sorted((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                            for p in path.rglob("*")))
    except OSError:
        return ()


def _error_of(err: Exception) -> ServingError:
    if isinstance(err, ServingError):
        return err
    if isinstance(err, tf.errors.OpError):
        return ServingError.from_tf_error(err)
    return ServingError(grpc.StatusCode.UNKNOWN, f"{type(err).__name__}: {err}")


def _per_model_batching_parameters(path: pathlib.Path) -> BatchingParameters | None:
    """The parameters of the version's `batching_params.pbtxt`, None without one."""
    file = path / PER_MODEL_BATCHING_FILE
    if not file.is_file():
        return None
    try:
        return read_batching_parameters(file)
    except ValueError as err:
        raise _invalid(str(err)) from None


@dataclasses.dataclass
class _Version:
    path: pathlib.Path
    state: int = State.START
    servable: Servable | None = None
    error: ServingError | None = None
    # The directory as it was when loading failed; a failed version is retried once it changes.
    failed_files: tuple | None = None


def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def validated_config(config: model_server_config_pb2.ModelServerConfig
                     ) -> dict[str, model_server_config_pb2.ModelConfig]:
    """The models of a `ModelServerConfig` by name, or INVALID_ARGUMENT saying what is wrong."""
    if config.WhichOneof("config") != "model_config_list":
        raise _invalid("The ModelServerConfig must hold a model_config_list (custom_model_config is "
                       "not supported).")
    models = {}
    for entry in config.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise _invalid(f"Every model config needs a name and a base_path; received "
                           f"{text_format.MessageToString(entry, as_one_line=True)!r}.")
        if entry.name in models:
            raise _invalid(f"Illegal to list model {entry.name} multiple times in config list")
        if entry.model_platform not in ("", PLATFORM):
            raise _invalid(f"Model {entry.name} has model_platform {entry.model_platform!r}; this "
                           f"server serves TensorFlow SavedModels (model_platform: \"{PLATFORM}\").")
        policy = entry.model_version_policy
        if policy.WhichOneof("policy_choice") == "specific" and not policy.specific.versions:
            raise _invalid(f"Model {entry.name}: model_version_policy specific {{}} lists no "
                           "versions; give at least one `versions: N`.")
        for label, version in entry.version_labels.items():
            if version < 1:
                raise _invalid(f"Model {entry.name}: label {label!r} points at version {version}; "
                               "versions are positive numbers.")
        models[entry.name] = entry
    return models


def read_config_file(path: pathlib.Path) -> model_server_config_pb2.ModelServerConfig:
    """Parses TF Serving's text `ModelServerConfig` file; ValueError when missing or malformed."""
    if not path.is_file():
        raise ValueError(f"Model config file {str(path)!r} does not exist.")
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(path.read_text(), config)
    except text_format.ParseError as err:
        raise ValueError(
            f"Model config file {str(path)!r} is not a text ModelServerConfig: {err}"
        ) from None
    return config


class ModelRegistry:
    """The SavedModels being served, kept in step with their directories as TF Serving does.

    The models come from one of three sources, as TF Serving's flags: `model_config_file` (TF
    Serving's text `ModelServerConfig`: names, base paths, version policies and labels; relative
    base paths are taken from the working directory), `model_name` with `model_base_path` (one
    model), or `models_dir`, our addition, where each subdirectory is a model named after it
    (new ones are picked up). `reload_config` replaces the config while serving (gRPC
    `HandleReloadConfigRequest`).

    `poll()` brings the loaded versions in line with the directories: each model's version policy
    (`latest` 1 by default, `latest { num_versions: N }`, `all`, `specific`) picks the aspired
    versions among those on disk; aspired versions are loaded with TF Serving's loader and their
    warmup requests replayed, and become AVAILABLE only if every one answers. Versions no longer
    aspired are unloaded once an aspired version is available (so a model never goes dark while
    its new version loads or if it fails). A version that fails to load is reported in `status`
    as END with its error, and retried when its directory changes. Unloaded versions stay in
    `status` as END, as in TF Serving.

    Args:
        models_dir: a directory of models `NAME/VERSION/saved_model.pb`.
        model_name: name of the single model to serve (with `model_base_path`).
        model_base_path: directory of that model's numeric version directories.
        model_config_file: a TF Serving model config file (`model_config_list`).
        allow_version_labels_for_unavailable_models: as TF Serving's flag, let a new label point
            at a version that is not AVAILABLE yet; otherwise such a config is refused.
        batching: TF Serving's `BatchingParameters` (`--enable_batching`): concurrent predict
            calls of every served version are merged by one `BatchScheduler`
            (`.batch_scheduler`, its threads shared by all models); None runs each call alone.
        session_config: the `tf.compat.v1.ConfigProto` every version's session is created with
            (TF Serving's `session_config`); None: TensorFlow's defaults.
        per_model_batching: TF Serving's `--enable_per_model_batching_parameters` (with
            `batching`): a version is batched only if its directory holds a
            `batching_params.pbtxt` (a text `BatchingParameters` read whole, TF Serving's
            defaults for what it leaves out, its thread fields unused), by its parameters;
            the batch threads stay those of `batching`. A file that does not parse makes
            that version's load fail.

    Example:
    ```python
    registry = ModelRegistry(model_config_file="models/models.config")
    registry.poll()
    registry.get("sentiment", label="stable").predict("serving_default", {"text": ...})
    ```
    """

    def __init__(self, models_dir=None, *, model_name: str | None = None,
                 model_base_path=None, model_config_file=None,
                 allow_version_labels_for_unavailable_models: bool = False,
                 batching: BatchingParameters | None = None,
                 session_config: config_pb2.ConfigProto | None = None,
                 per_model_batching: bool = False):
        if per_model_batching and batching is None:
            raise ValueError("per_model_batching chooses each model's batching parameters; it "
                             "needs batching (the batch threads) too.")
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
        self.allow_version_labels_for_unavailable_models = (
            allow_version_labels_for_unavailable_models)
        self._config: dict[str, model_server_config_pb2.ModelConfig] = {}
        if model_base_path is not None:
            self._config = {model_name: model_server_config_pb2.ModelConfig(
                name=model_name, base_path=str(model_base_path), model_platform=PLATFORM)}
        elif self.model_config_file is not None:
            try:
                self._config = validated_config(read_config_file(self.model_config_file))
            except ServingError as err:  # a bad file is an error at start, not only in a log
                raise ValueError(f"Model config file {str(self.model_config_file)!r}: "
                                 f"{err.message}") from None
        self._models: dict[str, dict[int, _Version]] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self.metrics = ServingMetrics()  # load attempts here, requests in the servers
        self.batch_scheduler = (BatchScheduler(batching, self.metrics)
                                if batching is not None else None)
        self._session_config = session_config
        self._per_model_batching = per_model_batching
        self._lock = threading.Lock()  # guards _config, _models and _labels
        self._changing = threading.Lock()  # one poll or reload at a time

    # --- keeping in step with the config and the directories ----------------------------------

    def _model_configs(self) -> dict[str, model_server_config_pb2.ModelConfig]:
        if self.models_dir is None:
            with self._lock:
                return dict(self._config)
        if not self.models_dir.is_dir():
            return {}
        return {child.name: model_server_config_pb2.ModelConfig(
                    name=child.name, base_path=str(child), model_platform=PLATFORM)
                for child in sorted(self.models_dir.iterdir())
                if child.is_dir() and not child.name.startswith(".")}

    def start(self) -> None:
        """The first load: every model's aspired versions, then the config's labels (checked
        against what loaded; a label on a version that is not AVAILABLE is a ValueError unless
        `allow_version_labels_for_unavailable_models`)."""
        self.poll()
        with self._changing:
            try:
                labels = self._checked_labels(self._model_configs(), previous={})
            except ServingError as err:
                raise ValueError(err.message) from None
            with self._lock:
                self._labels = labels

    def poll(self) -> None:
        """Loads the aspired versions that are not loaded and unloads the versions no longer
        needed, for every model of the config."""
        with self._changing:
            configs = self._model_configs()
            for name, config in configs.items():
                self._poll_model(name, config)
            with self._lock:
                gone = [name for name in self._models if name not in configs]
            for name in gone:
                self._unload(name, [v for v, e in self._models[name].items()
                                    if e.state == State.AVAILABLE])

    def _poll_model(self, name: str, config) -> None:
        on_disk = numeric_versions(pathlib.Path(config.base_path))
        aspired = aspired_versions(config, on_disk)
        with self._lock:
            versions = self._models.setdefault(name, {})
            to_load = []
            for number in sorted(aspired, reverse=True):
                entry = versions.get(number)
                if entry is None or entry.path != on_disk[number]:
                    entry = versions[number] = _Version(on_disk[number])
                if entry.state == State.AVAILABLE:
                    continue
                if entry.failed_files is not None and entry.failed_files == _fingerprint(entry.path):
                    continue
                entry.state, entry.error = State.LOADING, None
                to_load.append(number)
        for number in to_load:
            self._load(name, number, versions[number])
        self._unload(name, self._unneeded(versions, aspired))

    def _load(self, name: str, number: int, entry: _Version) -> None:
        start = time.perf_counter()
        try:
            scheduler, parameters = self.batch_scheduler, None
            if self._per_model_batching:
                parameters = _per_model_batching_parameters(entry.path)
                scheduler = scheduler if parameters is not None else None
            servable = Servable(name, number, entry.path, scheduler, self._session_config,
                                parameters)
            replayed = servable.warmup()
        except Exception as err:  # a broken version must not take the server down
            self.metrics.record_load(str(entry.path), False, time.perf_counter() - start)
            error = _error_of(err)
            log.error("Could not load %s version %d from %s: %s", name, number, entry.path, error)
            with self._lock:
                entry.state, entry.error = State.END, error
                entry.failed_files = _fingerprint(entry.path)
            return
        self.metrics.record_load(str(entry.path), True, time.perf_counter() - start)
        with self._lock:
            entry.state, entry.servable, entry.failed_files = State.AVAILABLE, servable, None
        log.info("Serving %s version %d (%d warmup requests replayed)", name, number, replayed)

    @staticmethod
    def _unneeded(versions: dict[int, _Version], aspired: set[int]) -> list[int]:
        """Available versions that are not aspired, unloaded as TF Serving's availability
        preserving policy does: only once an aspired version is available (or none is aspired),
        keeping at most the newest of them meanwhile."""
        available = {v for v, entry in versions.items() if entry.state == State.AVAILABLE}
        extra = sorted(available - aspired)
        if not aspired or available & aspired:
            return extra
        return extra[:-1]

    def _unload(self, name: str, numbers: list[int]) -> None:
        for number in numbers:
            with self._lock:
                entry = self._models[name][number]
                entry.state = State.UNLOADING
                servable, entry.servable = entry.servable, None
            # Requests holding the servable finish first: the session closes with its last user.
            del servable
            with self._lock:
                entry.state = State.END
            log.info("Unloaded %s version %d", name, number)

    def unload_all(self) -> None:
        """Runs the batches still queued, then unloads every version (at shutdown, as TF
        Serving does)."""
        if self.batch_scheduler is not None:
            self.batch_scheduler.stop()
        with self._changing:
            with self._lock:
                loaded = {name: [v for v, e in versions.items() if e.state == State.AVAILABLE]
                          for name, versions in self._models.items()}
            for name, numbers in loaded.items():
                self._unload(name, numbers)

    # --- the config ---------------------------------------------------------------------------

    def _checked_labels(self, configs, previous) -> dict[str, dict[str, int]]:
        """The labels of `configs`, each pointing at an AVAILABLE version (or, with
        `allow_version_labels_for_unavailable_models`, a new or unmoved label at any version)."""
        labels = {}
        with self._lock:
            for name, config in configs.items():
                for label, version in config.version_labels.items():
                    entry = self._models.get(name, {}).get(version)
                    available = entry is not None and entry.state == State.AVAILABLE
                    moved = previous.get(name, {}).get(label, version) != version
                    if not available and not (self.allow_version_labels_for_unavailable_models
                                              and not moved):
                        raise ServingError(
                            grpc.StatusCode.FAILED_PRECONDITION,
                            f"Request to assign label to version {version} of model {name}, "
                            "which is not currently available for inference",
                        )
                    labels.setdefault(name, {})[label] = version
        return labels

    def reload_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Replaces the whole config (TF Serving's `HandleReloadConfigRequest`): models missing
        from it are unloaded, new ones loaded before it returns. A config that is invalid, or
        labels a version that is not AVAILABLE, raises `ServingError` and changes nothing."""
        models = validated_config(config)
        with self._changing:
            with self._lock:
                previous = dict(self._labels)
            labels = self._checked_labels(models, previous)
            with self._lock:
                self._config, self._labels = models, labels
                self.models_dir = None
        self.poll()

    def reload_config_file(self) -> None:
        """Re-reads `model_config_file` and applies it as `reload_config` does."""
        try:
            config = read_config_file(self.model_config_file)
        except ValueError as err:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from None
        self.reload_config(config)

    # --- lookups ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Models with at least one AVAILABLE version."""
        with self._lock:
            return sorted(name for name, versions in self._models.items()
                          if any(e.state == State.AVAILABLE for e in versions.values()))

    def versions(self, name: str) -> list[int]:
        """The AVAILABLE versions of `name`."""
        with self._lock:
            return sorted(v for v, e in self._models.get(name, {}).items()
                          if e.state == State.AVAILABLE)

    def _labelled(self, name: str, label: str) -> int:
        with self._lock:
            version = self._labels.get(name, {}).get(label)
        if version is None:
            raise _invalid(f"Unrecognized servable version label: {label}")
        return version

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable of `name` at `version` or `label` (latest AVAILABLE when neither);
        NOT_FOUND when it is not available, INVALID_ARGUMENT for an unknown label."""
        if label:
            version = self._labelled(name, label)
        with self._lock:
            versions = {v: e.servable for v, e in self._models.get(name, {}).items()
                        if e.state == _AVAILABLE}
        if version is None and versions:
            return versions[max(versions)]
        if version is not None and version in versions:
            return versions[version]
        wanted = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {wanted}")

    def status(self, name: str, version: int | None = None,
               label: str | None = None) -> get_model_status_pb2.GetModelStatusResponse:
        """TF Serving's model status: the state of every version the server has seen (or of the
        one asked for), with the error of a failed load."""
        if label:
            version = self._labelled(name, label)
        with self._lock:
            entries = dict(self._models.get(name, {}))
            states = {v: (e.state, e.error) for v, e in entries.items()}
        if not states:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Could not find any versions of model {name}")
        if version is not None:
            if version not in states:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find version {version} of model {name}")
            states = {version: states[version]}
        response = get_model_status_pb2.GetModelStatusResponse()
        for number in sorted(states, reverse=True):
            state, error = states[number]
            entry = response.model_version_status.add()
            entry.version = number
            entry.state = state
            entry.status.SetInParent()  # error_code OK, shown as TF Serving shows it
            if error is not None:
                entry.status.error_code = error.code.value[0]
                entry.status.error_message = error.message
        return response
