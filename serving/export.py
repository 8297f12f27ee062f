"""Export to versioned SavedModels that TF Serving (and our ModelServer) load.

Layout: `models_dir/NAME/VERSION/{saved_model.pb, variables/, assets/,
assets.extra/tf_serving_warmup_requests}`, plus `models_dir/models.config`, the TF Serving model
config listing every model under the container's mount point (used by docker-compose.yml).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from seqzoo.serving.model_registry import numeric_versions
from seqzoo.serving.servable import DEFAULT_SIGNATURE, WARMUP_FILE, read_signature_defs

MODEL_CONFIG_FILE = "models.config"
CONTAINER_MODELS_DIR = "/models"


def next_version(base_path: str | pathlib.Path) -> int:
    """One more than the highest existing version (1 for a new model)."""
    versions = numeric_versions(pathlib.Path(base_path))
    return max(versions, default=0) + 1


def warmup_requests(signature_def, name: str,
                    inputs: dict[str, list]) -> list[prediction_log_pb2.PredictionLog]:
    """One `PredictionLog` per example of `inputs` (batch size 1) for `serving_default`, whose
    `SignatureDef` gives the input names and dtypes."""
    if not inputs:
        return []
    dtypes = {key: tf.as_dtype(info.dtype) for key, info in signature_def.inputs.items()}
    unknown = sorted(set(inputs) - set(dtypes))
    if unknown:
        raise ValueError(
            f"Warmup inputs {unknown} are not inputs of {DEFAULT_SIGNATURE}; accepted: {sorted(dtypes)}."
        )
    sizes = {key: len(values) for key, values in inputs.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"Warmup inputs must have one value per example each; received {sizes}.")
    logs = []
    for index in range(next(iter(sizes.values()))):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.model_spec.signature_name = DEFAULT_SIGNATURE
        for key, values in inputs.items():
            dtype = dtypes[key]
            array = np.asarray([values[index]],
                               dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
            request.inputs[key].CopyFrom(tf.make_tensor_proto(array, dtype=dtype))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_model_config(models_dir: str | pathlib.Path,
                       container_dir: str = CONTAINER_MODELS_DIR) -> pathlib.Path:
    """Writes `models_dir/models.config` (TF Serving's `--model_config_file`) naming every model
    of `models_dir` at `container_dir/NAME`, where docker-compose.yml mounts `./models`."""
    models_dir = pathlib.Path(models_dir)
    config = model_server_config_pb2.ModelServerConfig()
    for child in sorted(models_dir.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and numeric_versions(child):
            entry = config.model_config_list.config.add()
            entry.name = child.name
            entry.base_path = f"{container_dir.rstrip('/')}/{child.name}"
            entry.model_platform = "tensorflow"
    path = models_dir / MODEL_CONFIG_FILE
    tmp = path.with_name(f".{MODEL_CONFIG_FILE}.tmp")
    tmp.write_text(text_format.MessageToString(config))
    tmp.replace(path)
    return path


def export_model(task, model, models_dir: str | pathlib.Path, name: str,
                 version: int | None = None) -> pathlib.Path:
    """Saves `task.export_module(model)` as version `version` (default: the next) of `name`.

    The SavedModel is written into a hidden temporary directory beside the versions and renamed
    into place, so a polling server never sees a half-written version. An existing version is
    never overwritten.

    Args:
        task: a `seqzoo.training.tasks.base.Task` (gives the export module and warmup inputs).
        model: the trained Keras model.
        models_dir: root of the model directories (`models/`).
        name: the model name (directory and TF Serving model name).
        version: the version number; default one more than the highest existing one.

    Returns:
        The path of the new version directory.

    Example:
    ```python
    path = export_model(task, model, "models", "sentiment")  # models/sentiment/1
    ```
    """
    if not name or name.startswith(".") or "/" in name or os.sep in name:
        raise ValueError(f"A model name must be a plain directory name. Received: name={name!r}")
    base_path = pathlib.Path(models_dir) / name
    if version is None:
        version = next_version(base_path)
    elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be a positive integer. Received: version={version!r}")
    final = base_path / str(version)
    if final.exists():
        raise ValueError(
            f"Version {version} of model {name!r} already exists at {final}; versions are never "
            f"overwritten. Omit the version to export as {next_version(base_path)}, or give an "
            "unused number."
        )
    module = task.export_module(model)
    signatures = dict(module.signatures)
    if DEFAULT_SIGNATURE not in signatures:
        raise ValueError(
            f"The export module of task {task.name!r} has signatures {sorted(signatures)}; "
            f"it needs at least {DEFAULT_SIGNATURE!r}."
        )
    if "signatures" in vars(module):
        # tf.saved_model.save reserves the attribute for the signatures it writes itself.
        delattr(module, "signatures")
    base_path.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base_path))
    try:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        signature_def = read_signature_defs(tmp)[DEFAULT_SIGNATURE]
        logs = warmup_requests(signature_def, name, task.warmup_inputs())
        if logs:
            (tmp / WARMUP_FILE).parent.mkdir(parents=True, exist_ok=True)
            with tf.io.TFRecordWriter(str(tmp / WARMUP_FILE)) as writer:
                for entry in logs:
                    writer.write(entry.SerializeToString())
        try:
            os.rename(tmp, final)
        except OSError:
            raise ValueError(
                f"Version {version} of model {name!r} appeared at {final} while exporting; "
                "it was left as it is."
            ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    os.chmod(final, 0o755)
    write_model_config(models_dir)
    return final


def export_run(run_dir: str | pathlib.Path, models_dir: str | pathlib.Path,
               name: str | None = None, version: int | None = None) -> pathlib.Path:
    """Restores the latest checkpoint of a run and exports it (name defaults to the task's)."""
    from seqzoo.training import run_directory

    task, model = run_directory.restore(run_dir)
    return export_model(task, model, models_dir, name or task.name, version)
