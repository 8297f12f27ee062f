"""TF Serving's `--platform_config_file`: the session config and batching of the TensorFlow
platform, read from a text `PlatformConfigMap`."""

from __future__ import annotations

import dataclasses

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    wrappers_pb2,
)
from tensorflow.core.protobuf import config_pb2

from seqzoo.serving import batching_parameters
from seqzoo.serving.batching_parameters import BatchingParameters
from seqzoo.serving.text_proto_file import read_text_proto

PLATFORM = "tensorflow"
ADAPTER_CONFIG = "tensorflow.serving.SavedModelBundleSourceAdapterConfig"
EXAMPLE = (
    'platform_configs { key: "tensorflow" value { source_adapter_config { '
    "[type.googleapis.com/tensorflow.serving.SavedModelBundleSourceAdapterConfig] { "
    "legacy_config { session_config { inter_op_parallelism_threads: -1 } } } } } }")


@dataclasses.dataclass(frozen=True)
class PlatformConfig:
    """What TF Serving's `--platform_config_file` sets for the TensorFlow platform: the
    `session_config` every SavedModel's session is created with, and the request batching of
    `batching_parameters` (None: no batching), both from the `legacy_config`
    (`SessionBundleConfig`) of its `SavedModelBundleSourceAdapterConfig`.

    With the file, TF Serving ignores `--enable_batching`, `--batching_parameters_file` and the
    `--tensorflow_*_parallelism` flags; the whole `ConfigProto` is available, e.g.
    `inter_op_parallelism_threads: -1` (run every op in the calling thread) or
    `experimental { executor_type: "SINGLE_THREADED_EXECUTOR" }`.

    Args:
        session_config: the `tf.compat.v1.ConfigProto` of every session.
        batching: the `BatchingParameters`, or None.

    Example:
    ```python
    config = read_platform_config("platform.config")
    ModelServer("models", session_config=config.session_config, batching=config.batching)
    ```
    """

    session_config: config_pb2.ConfigProto
    batching: BatchingParameters | None = None


def _add_with_dependencies(pool, file) -> None:
    for dependency in file.dependencies:
        _add_with_dependencies(pool, dependency)
    try:
        pool.FindFileByName(file.name)
    except KeyError:
        pool.AddSerializedFile(file.serialized_pb)


def _pool():
    """A descriptor pool holding TF Serving's `PlatformConfigMap` and what it refers to. The
    messages are declared with TF Serving's names (tensorflow-serving-api does not ship them),
    and only the `SessionBundleConfig` fields this server honours: a file setting any other
    is refused by the parser, naming the field."""
    pool = descriptor_pool.DescriptorPool()
    for module in (wrappers_pb2, any_pb2, config_pb2):
        _add_with_dependencies(pool, module.DESCRIPTOR)
    pool.Add(batching_parameters.file_descriptor())
    types = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="seqzoo/platform_config.proto", package="tensorflow.serving", syntax="proto3",
        dependency=[any_pb2.DESCRIPTOR.name, config_pb2.DESCRIPTOR.name,
                    "seqzoo/batching_parameters.proto"])
    bundle = file.message_type.add(name="SessionBundleConfig")
    bundle.field.add(name="session_target", number=1, type=types.TYPE_STRING,
                     label=types.LABEL_OPTIONAL)
    for number, name, type_name in ((2, "session_config", ".tensorflow.ConfigProto"),
                                    (3, "batching_parameters",
                                     ".tensorflow.serving.BatchingParameters")):
        bundle.field.add(name=name, number=number, type=types.TYPE_MESSAGE,
                         label=types.LABEL_OPTIONAL, type_name=type_name)
    adapter = file.message_type.add(name="SavedModelBundleSourceAdapterConfig")
    adapter.field.add(name="legacy_config", number=1000, type=types.TYPE_MESSAGE,
                      label=types.LABEL_OPTIONAL,
                      type_name=".tensorflow.serving.SessionBundleConfig")
    platform = file.message_type.add(name="PlatformConfig")
    platform.field.add(name="source_adapter_config", number=1, type=types.TYPE_MESSAGE,
                       label=types.LABEL_OPTIONAL, type_name=".google.protobuf.Any")
    config_map = file.message_type.add(name="PlatformConfigMap")
    entry = config_map.nested_type.add(name="PlatformConfigsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=types.TYPE_STRING, label=types.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=types.TYPE_MESSAGE, label=types.LABEL_OPTIONAL,
                    type_name=".tensorflow.serving.PlatformConfig")
    config_map.field.add(name="platform_configs", number=1, type=types.TYPE_MESSAGE,
                         label=types.LABEL_REPEATED,
                         type_name=".tensorflow.serving.PlatformConfigMap.PlatformConfigsEntry")
    pool.Add(file)
    return pool


def read_platform_config(path) -> PlatformConfig:
    """The `PlatformConfig` of TF Serving's `--platform_config_file` at `path`.

    Raises:
        ValueError: the file does not parse, sets a field this server does not honour, names a
            platform other than "tensorflow" or another source adapter, or holds a value
            TensorFlow would abort on.
    """
    pool = _pool()
    config_map = read_text_proto(
        path, message_factory.GetMessageClass(
            pool.FindMessageTypeByName("tensorflow.serving.PlatformConfigMap"))(),
        "platform config", f"{EXAMPLE} (of SessionBundleConfig, this server reads "
        "session_target \"\", session_config and batching_parameters)", descriptor_pool=pool)
    where = f"Platform config file {str(path)!r}"
    others = sorted(set(config_map.platform_configs) - {PLATFORM})
    if others or PLATFORM not in config_map.platform_configs:
        raise ValueError(f"{where}: this server serves the {PLATFORM!r} platform only; the file "
                         f"configures {sorted(config_map.platform_configs)}.")
    adapter_config = config_map.platform_configs[PLATFORM].source_adapter_config
    if adapter_config.TypeName() != ADAPTER_CONFIG:
        raise ValueError(f"{where}: the source_adapter_config must be a {ADAPTER_CONFIG} "
                         f"(SavedModels); received {adapter_config.TypeName() or 'none'!r}.")
    adapter = message_factory.GetMessageClass(pool.FindMessageTypeByName(ADAPTER_CONFIG))()
    adapter_config.Unpack(adapter)
    bundle = adapter.legacy_config
    if bundle.session_target:
        raise ValueError(f"{where}: session_target {bundle.session_target!r} is not supported; "
                         "this server runs the models in its own process (leave it empty).")
    session_config = config_pb2.ConfigProto.FromString(bundle.session_config.SerializeToString())
    if session_config.intra_op_parallelism_threads < 0:
        # TensorFlow aborts the whole process when it makes this thread pool.
        raise ValueError(f"{where}: session_config.intra_op_parallelism_threads must be >= 0 "
                         f"(0: TensorFlow chooses); received "
                         f"{session_config.intra_op_parallelism_threads}. A negative "
                         "inter_op_parallelism_threads runs the ops in the calling thread.")
    batching = (batching_parameters.from_message(bundle.batching_parameters, where)
                if bundle.HasField("batching_parameters") else None)
    return PlatformConfig(session_config, batching)
