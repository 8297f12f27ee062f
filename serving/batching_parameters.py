"""TF Serving's `--batching_parameters_file`: the text `BatchingParameters` and its defaults.

The message is TF Serving's own (`tensorflow_serving/servables/tensorflow/
session_bundle_config.proto`), which tensorflow-serving-api does not ship: it is declared here
with TF Serving's field names, numbers and wrapper types, so a file written for TF Serving (e.g.
`max_batch_size { value: 32 }`) parses here unchanged and a misspelt field is refused by name.
This module imports protobuf only, so that `seqzoo serve` refuses a bad file before TensorFlow
loads.
"""

from __future__ import annotations

import dataclasses
import functools
import os

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

from seqzoo.serving.text_proto_file import read_text_proto

# TF Serving's names for the batch threads: a file that names none, and --enable_batching alone.
DEFAULT_THREAD_POOL_NAME = "batch_threads"
MODEL_SERVER_THREAD_POOL_NAME = "model_server_batch_threads"


def _default_num_batch_threads() -> int:
    # TF Serving's default is port::MaxParallelism(): the cores this process may run on.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """How the model server merges concurrent requests into one model call (TF Serving's
    `BatchingParameters`; every default is TF Serving's for a field the file leaves out).

    Args:
        max_batch_size: most examples in one merged call; a request with more is refused
            (INVALID_ARGUMENT), as in TF Serving.
        batch_timeout_micros: how long the first request of a batch may wait for others before
            the batch runs anyway. With 0 a batch runs as soon as a batch thread is free, so
            requests merge only while every batch thread is busy.
        max_enqueued_batches: batches each queue (one per model version, signature and set of
            outputs) may hold waiting; a request that needs one more gets UNAVAILABLE (HTTP 503).
        num_batch_threads: threads running merged calls, shared by every model.
        thread_pool_name: names the batch threads (and labels the queuing latency metric).
        allowed_batch_sizes: if given, increasing sizes ending at `max_batch_size`; a merged
            batch is padded up to the next one (with copies of its first example, whose outputs
            are dropped), so the model only sees these sizes.
        pad_variable_length_inputs: merge requests whose inputs differ in dimensions after the
            first (e.g. time) by padding each input to the longest with its own first element,
            as TF Serving does; without it such requests are not merged with each other.

    Example:
    ```python
    parameters = read_batching_parameters("batching.config")
    BatchingParameters(max_batch_size=8, allowed_batch_sizes=(2, 4, 8))
    ```
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=_default_num_batch_threads)
    thread_pool_name: str = DEFAULT_THREAD_POOL_NAME
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        object.__setattr__(self, "allowed_batch_sizes", tuple(self.allowed_batch_sizes))
        for key, least in (("max_batch_size", 1), ("batch_timeout_micros", 0),
                           ("max_enqueued_batches", 1), ("num_batch_threads", 1)):
            value = getattr(self, key)
            if value < least:
                raise ValueError(f"{key} must be >= {least}. Received: {key}={value}")
        sizes = self.allowed_batch_sizes
        if any(size < 1 for size in sizes) or any(b <= a for a, b in zip(sizes, sizes[1:])):
            raise ValueError("allowed_batch_sizes must be positive and increasing. Received: "
                             f"allowed_batch_sizes={list(sizes)}")
        if sizes and sizes[-1] != self.max_batch_size:
            raise ValueError(
                "The last entry of allowed_batch_sizes must equal max_batch_size. Received: "
                f"allowed_batch_sizes={list(sizes)}, max_batch_size={self.max_batch_size}")

    def padded_size(self, size: int) -> int:
        """The batch size a merged batch of `size` examples is run at."""
        return next((allowed for allowed in self.allowed_batch_sizes if allowed >= size), size)


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The file declaring TF Serving's `tensorflow.serving.BatchingParameters` (it imports
    `google/protobuf/wrappers.proto`), to add to a descriptor pool."""
    label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    file = descriptor_pb2.FileDescriptorProto(
        name="seqzoo/batching_parameters.proto", package="tensorflow.serving", syntax="proto3",
        dependency=[wrappers_pb2.DESCRIPTOR.name])
    message = file.message_type.add(name="BatchingParameters")
    for number, name, wrapper in ((1, "max_batch_size", "Int64Value"),
                                  (2, "batch_timeout_micros", "Int64Value"),
                                  (3, "max_enqueued_batches", "Int64Value"),
                                  (4, "num_batch_threads", "Int64Value"),
                                  (5, "thread_pool_name", "StringValue")):
        message.field.add(name=name, number=number, label=label,
                          type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                          type_name=f".google.protobuf.{wrapper}")
    message.field.add(name="allowed_batch_sizes", number=6,
                      type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, label=label,
                      type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL)
    return file


@functools.cache  # a pool per call would be built again at every version's load
def _message_class():
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file_descriptor())
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def from_message(message, where: str) -> BatchingParameters:
    """The `BatchingParameters` of a parsed `tensorflow.serving.BatchingParameters` message, TF
    Serving's defaults for the fields it leaves out; a ValueError starting with `where` (the
    file it came from) and naming the field for a bad value."""
    wrapped = {field.name: getattr(message, field.name).value
               for field in message.DESCRIPTOR.fields
               if field.message_type is not None and message.HasField(field.name)}
    try:
        return BatchingParameters(
            **wrapped, allowed_batch_sizes=tuple(message.allowed_batch_sizes),
            pad_variable_length_inputs=message.pad_variable_length_inputs)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def read_batching_parameters(path) -> BatchingParameters:
    """The `BatchingParameters` of TF Serving's `--batching_parameters_file` at `path`, TF
    Serving's defaults for the fields it leaves out; ValueError naming the field for a file
    that does not parse or holds a bad value."""
    message = read_text_proto(path, _message_class()(), "batching parameters",
                              "max_batch_size { value: 32 } batch_timeout_micros { value: 1000 }")
    return from_message(message, f"Batching parameters file {str(path)!r}")
