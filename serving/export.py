"""Export to versioned SavedModels that TF Serving (and our ModelServer) load.

Layout: `models_dir/NAME/VERSION/{saved_model.pb, variables/, assets/,
assets.extra/tf_serving_warmup_requests}`, plus `models_dir/models.config`, the TF Serving model
config listing every model under the container's mount point (used by docker-compose.yml).

Every export passes through `export_model`, which makes sure TF Serving can serve it:
- The SavedModel's object graph holds the signatures and the state they read, with each Keras
  variable saved as the `tf.Variable` behind it. Saved as a Keras object inside a `tf.Module`, a
  Keras 3 variable writes a restore op that fills a copy the signatures never read, so TF
  Serving's session loader leaves their variables uninitialised (keras-team/keras#20095).
- Signatures shaped like TF Serving's Classify or Regress API (one input `inputs` of serialized
  `tf.Example`s; outputs `classes` and/or `scores`, or one output `outputs`) get that method name,
  which `tf.saved_model.save` cannot write, so the Classify/Regress endpoints accept them.
- Warmup records are written for every signature the task's warmup inputs cover, then the
  version is loaded with TF Serving's loader and every record replayed before it is moved into
  place: an export TF Serving would refuse is never published.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.saved_model import fingerprinting_utils
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from seqzoo.serving.loader_check import check_version
from seqzoo.serving.model_registry import numeric_versions
from seqzoo.serving.servable import (DEFAULT_SIGNATURE, INIT_OP_SIGNATURE_KEY, WARMUP_FILE,
                                     read_signature_defs)

MODEL_CONFIG_FILE = "models.config"
CONTAINER_MODELS_DIR = "/models"


def next_version(base_path: str | pathlib.Path) -> int:
    """One more than the highest existing version (1 for a new model)."""
    versions = numeric_versions(pathlib.Path(base_path))
    return max(versions, default=0) + 1


def serving_root(module: tf.Module) -> tf.Module:
    """The object to save with `module`'s signatures: every variable, lookup table and asset
    reachable from `module`, each Keras variable replaced by the `tf.Variable` it wraps.

    Keras 3 saves a `keras.Variable` by mapping it to a new variable initialised from an
    uninitialised copy of its `tf.Variable`; the checkpoint restore op then fills the new
    variable while the signatures read the copy. TF Serving restores through that op, so every
    signature would fail with "Could not find variable". Saving the `tf.Variable` itself maps
    the restore op and the signatures to the same variable.
    """
    state, seen, queue = [], set(), [module]
    while queue:
        obj = queue.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, keras.Variable):
            state.append(obj.value)
            continue
        if isinstance(obj, (tf.Variable, tf.saved_model.experimental.TrackableResource,
                            tf.saved_model.Asset)):
            state.append(obj)
        queue.extend(tf.train.TrackableView.children(obj, save_type="savedmodel").values())
    root = tf.Module()
    root.state = state
    return root


def api_method(signature) -> str:
    """TF Serving's method name for a SignatureDef by the shape of its inputs and outputs:
    classify (`inputs` strings in; `classes` strings and/or `scores` floats out), regress
    (`inputs` strings in; `outputs` floats out), predict otherwise."""
    inputs = {key: tf.as_dtype(info.dtype) for key, info in signature.inputs.items()}
    if inputs != {tf.saved_model.CLASSIFY_INPUTS: tf.string}:
        return tf.saved_model.PREDICT_METHOD_NAME
    outputs = {key: tf.as_dtype(info.dtype) for key, info in signature.outputs.items()}
    if outputs and outputs.items() <= {(tf.saved_model.CLASSIFY_OUTPUT_CLASSES, tf.string),
                                       (tf.saved_model.CLASSIFY_OUTPUT_SCORES, tf.float32)}:
        return tf.saved_model.CLASSIFY_METHOD_NAME
    if outputs == {tf.saved_model.REGRESS_OUTPUTS: tf.float32}:
        return tf.saved_model.REGRESS_METHOD_NAME
    return tf.saved_model.PREDICT_METHOD_NAME


def _set_api_methods(path: pathlib.Path) -> None:
    """Gives classify- and regress-shaped signatures their TF Serving method name in place."""
    pb_path = path / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(pb_path.read_bytes())
    changed = False
    for meta_graph in saved_model.meta_graphs:
        for signature in meta_graph.signature_def.values():
            method = api_method(signature)
            if signature.method_name != method:
                signature.method_name = method
                changed = True
    if changed:
        pb_path.write_bytes(saved_model.SerializeToString())
        # The fingerprint holds a checksum of saved_model.pb.
        fingerprinting_utils.write_fingerprint(str(path))


def _feature(values) -> tf.train.Feature:
    flat = np.asarray(values, dtype=object).reshape(-1).tolist()
    if all(isinstance(v, (str, bytes)) for v in flat):
        return tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[v.encode("utf-8") if isinstance(v, str) else v for v in flat]))
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in flat):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=flat))
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in flat]))


def warmup_requests(signature_defs: dict, name: str,
                    inputs: dict[str, list]) -> list[prediction_log_pb2.PredictionLog]:
    """TF Serving warmup records (`PredictionLog`s) from a task's warmup inputs.

    Every example (index into the lists of `inputs`) becomes one Predict request of batch size 1
    to each signature it covers: to each predict signature whose inputs are all among `inputs`,
    and to each classify/regress signature, its `inputs` one serialized `tf.Example` holding one
    feature per entry of `inputs`. TF Serving's Predict accepts classify and regress signatures
    and fetches all their outputs, the tensors its Classify and Regress fetch, so the record warms
    the same session executors; and a warmup reader that knows only `predict_log` records (as
    some tools do) replays every record.

    Args:
        signature_defs: the SavedModel's SignatureDefs by name (inputs, dtypes, method names).
        name: the model name written into the requests.
        inputs: lists of example values by input name (one value per example in each list).
    """
    if not inputs:
        return []
    sizes = {key: len(values) for key, values in inputs.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"Warmup inputs must have one value per example each; received {sizes}.")
    callable_signatures = {key: signature for key, signature in signature_defs.items()
                           if key != INIT_OP_SIGNATURE_KEY}
    predict = {key: signature for key, signature in callable_signatures.items()
               if signature.method_name == tf.saved_model.PREDICT_METHOD_NAME
               and set(signature.inputs) <= set(inputs)}
    by_example = {key: signature for key, signature in callable_signatures.items()
                  if signature.method_name != tf.saved_model.PREDICT_METHOD_NAME}
    # Classify/Regress examples carry every warmup input as a feature; otherwise each warmup
    # input must be an input of a signature it warms up.
    unused = set() if by_example else set(inputs) - {
        key for signature in predict.values() for key in signature.inputs}
    if unused or not (predict or by_example):
        accepted = sorted({key for s in signature_defs.values() for key in s.inputs})
        raise ValueError(
            f"Warmup inputs {sorted(unused or inputs)} are not all the inputs of any signature; "
            f"signature inputs: {accepted}. A signature is warmed up when every one of its "
            "inputs is given."
        )
    logs = []
    for index in range(next(iter(sizes.values()))):
        for key in sorted(predict, key=lambda k: (k != DEFAULT_SIGNATURE, k)):
            tensors = {}
            for input_name, info in predict[key].inputs.items():
                dtype = tf.as_dtype(info.dtype)
                array = np.asarray([inputs[input_name][index]],
                                   dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
                tensors[input_name] = tf.make_tensor_proto(array, dtype=dtype)
            logs.append(_predict_log(name, key, tensors))
        example = tf.train.Example(features=tf.train.Features(feature={
            feature: _feature(values[index]) for feature, values in inputs.items()}))
        serialized = tf.make_tensor_proto([example.SerializeToString()], dtype=tf.string)
        for key in sorted(by_example):
            logs.append(_predict_log(name, key, {tf.saved_model.CLASSIFY_INPUTS: serialized}))
    return logs


def _predict_log(name: str, signature_name: str, tensors: dict) -> prediction_log_pb2.PredictionLog:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature_name
    for input_name, proto in tensors.items():
        request.inputs[input_name].CopyFrom(proto)
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))


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


def save_for_serving(module: tf.Module, path: str | pathlib.Path, name: str,
                     warmup_inputs: dict[str, list] | None = None) -> int:
    """Writes `module.signatures` as a SavedModel that TF Serving serves, and proves it.

    The SavedModel holds the state the signatures read (see `serving_root`), classify- and
    regress-shaped signatures get their TF Serving method names, the warmup inputs become the
    warmup records of every signature they cover, and the result is loaded with TF Serving's
    loader and every record replayed.

    Args:
        module: a `tf.Module` whose `signatures` maps names to `tf.function`s with an
            `input_signature`.
        path: the directory to write (it must not exist or be empty).
        name: the model name written into the warmup requests.
        warmup_inputs: example values by input name (see `Task.warmup_inputs`).

    Returns:
        The number of warmup records written (and replayed).

    Raises:
        ValueError: warmup inputs that fit no signature, or a SavedModel that does not answer
            under TF Serving's loader.
    """
    path = pathlib.Path(path)
    signatures = dict(module.signatures)
    tf.saved_model.save(serving_root(module), str(path), signatures=signatures)
    _set_api_methods(path)
    logs = warmup_requests(read_signature_defs(path), name, warmup_inputs or {})
    if logs:
        (path / WARMUP_FILE).parent.mkdir(parents=True, exist_ok=True)
        with tf.io.TFRecordWriter(str(path / WARMUP_FILE)) as writer:
            for entry in logs:
                writer.write(entry.SerializeToString())
    check = check_version(path, name)
    if not check.ok:
        raise ValueError(f"The SavedModel of {name!r} fails under TF Serving's loader: "
                         f"{check.error}")
    return len(logs)


def export_model(task, model, models_dir: str | pathlib.Path, name: str,
                 version: int | None = None) -> pathlib.Path:
    """Saves `task.export_module(model)` as version `version` (default: the next) of `name`.

    The SavedModel is written into a hidden temporary directory beside the versions, checked
    under TF Serving's loader (every warmup record must answer) and renamed into place, so a
    polling server never sees a half-written or unservable version. An existing version is
    never overwritten.

    Args:
        task: a `seqzoo.training.tasks.base.Task` (gives the export module and warmup inputs).
        model: the trained Keras model.
        models_dir: root of the model directories (`models/`).
        name: the model name (directory and TF Serving model name).
        version: the version number; default one more than the highest existing one.

    Returns:
        The path of the new version directory.

    Raises:
        ValueError: a bad name or version, or an export that fails under TF Serving's loader
            (no version is written then).

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
    if DEFAULT_SIGNATURE not in module.signatures:
        raise ValueError(
            f"The export module of task {task.name!r} has signatures {sorted(module.signatures)}; "
            f"it needs at least {DEFAULT_SIGNATURE!r}."
        )
    base_path.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base_path))
    try:
        save_for_serving(module, tmp, name, task.warmup_inputs())
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
