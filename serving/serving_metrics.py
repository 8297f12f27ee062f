"""TF Serving's metrics in Prometheus' text format, under TF Serving's own names.

TF Serving's Prometheus exporter names a metric after its TensorFlow monitoring path with `/`
turned into `:` (`/tensorflow/serving/request_count` is `:tensorflow:serving:request_count`)
and writes counters without a `_total` suffix; dashboards and alerts written for TF Serving read
these names, so they are kept exactly. `--monitoring_config_file` is TF Serving's text
`MonitoringConfig`, whose message is not in tensorflow-serving-api: it is declared here with TF
Serving's field names and numbers.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import threading
import time

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from seqzoo.serving.serving_error import ServingError
from seqzoo.serving.text_proto_file import read_text_proto

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PATH = "/monitoring/prometheus/metrics"
# TF Serving's latency buckets, in microseconds: scale 10, growth 1.8, 33 buckets (~20 minutes).
LATENCY_BUCKETS = tuple(10 * 1.8 ** i for i in range(33))

# TF Serving's batching_session samplers: batch sizes in buckets 1, 2, 4, ... 8192; the time a
# request waits in the batch queue in microseconds, scale 100, growth 1.2, 52 buckets (~1 s).
BATCH_SIZE_BUCKETS = tuple(2.0 ** i for i in range(14))
QUEUING_BUCKETS = tuple(100 * 1.2 ** i for i in range(52))

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
LOAD_ATTEMPTS = ":tensorflow:cc:saved_model:load_attempt_count"
LOAD_LATENCY = ":tensorflow:cc:saved_model:load_latency"
INPUT_BATCH_SIZE = ":tensorflow:serving:batching_session:input_batch_size"
PROCESSED_BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
PADDING_SIZE = ":tensorflow:serving:batching_session:padding_size"
QUEUING_LATENCY = ":tensorflow:serving:batching_session:queuing_latency"


def _monitoring_config_class():
    file = descriptor_pb2.FileDescriptorProto(
        name="seqzoo/monitoring_config.proto", package="tensorflow.serving", syntax="proto3")
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
                         label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2,
                         type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                         label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    config = file.message_type.add(name="MonitoringConfig")
    config.field.add(name="prometheus_config", number=1,
                     type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                     type_name=".tensorflow.serving.PrometheusConfig",
                     label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def read_monitoring_config(path) -> str | None:
    """The metrics path that TF Serving's monitoring config file at `path` enables (None when
    `prometheus_config.enable` is false); ValueError for a file that does not parse."""
    config = read_text_proto(path, _monitoring_config_class()(), "monitoring config",
                             'prometheus_config { enable: true path: "/metrics" }')
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    path = prometheus.path or DEFAULT_PATH
    if not path.startswith("/"):
        raise ValueError(f"prometheus_config.path must start with '/'; received {path!r}.")
    return path


class _Histogram:
    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS):
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        if index < len(self.bounds):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def buckets(self) -> list[tuple[str, int]]:
        cumulative, rows = 0, []
        for bound, count in zip(self.bounds, self.counts):
            cumulative += count
            rows.append((floatToGoString(bound), cumulative))
        rows.append(("+Inf", self.count))
        return rows


# Each histogram: its help, its labels and its bucket bounds.
_HISTOGRAMS = {
    REQUEST_LATENCY: ("Distribution of wall time (in microseconds) for Tensorflow Serving "
                      "request.", ("model_name", "API", "entrypoint"), LATENCY_BUCKETS),
    INPUT_BATCH_SIZE: ("Batch sizes of the requests entering the batch queues.", (),
                       BATCH_SIZE_BUCKETS),
    PROCESSED_BATCH_SIZE: ("Batch sizes of the merged model calls, padding included.", (),
                           BATCH_SIZE_BUCKETS),
    PADDING_SIZE: ("Examples added to merged batches to reach an allowed batch size.",
                   ("execution_batch_size",), BATCH_SIZE_BUCKETS),
    QUEUING_LATENCY: ("Microseconds requests waited in the batch queues.",
                      ("thread_pool_name",), QUEUING_BUCKETS),
}


class ServingMetrics:
    """Counts requests and model loads as TF Serving does, for its Prometheus endpoint.

    Metrics: `:tensorflow:serving:request_count{model_name, status}` (status as TF Serving names
    gRPC codes: OK, INVALID_ARGUMENT, NOT_FOUND, ...), `:tensorflow:serving:request_latency
    {model_name, API, entrypoint}` (a histogram in microseconds, API Predict/Classify/Regress/
    MultiInference/GetModelMetadata, entrypoint GRPC or REST),
    `:tensorflow:cc:saved_model:load_attempt_count{model_path, status}` (success or fail),
    `:tensorflow:cc:saved_model:load_latency{model_path}` (microseconds spent loading) and,
    when requests are batched, TF Serving's batching histograms
    `:tensorflow:serving:batching_session:input_batch_size` (each request's),
    `...:processed_batch_size` (each merged call's, padding included),
    `...:padding_size{execution_batch_size}` and `...:queuing_latency{thread_pool_name}`
    (microseconds each request waited in its queue).

    Example:
    ```python
    metrics = ServingMetrics()
    with metrics.request("sentiment", "Predict", "REST"):
        ...  # answer it; a ServingError raised here is counted under its code
    metrics.exposition()  # bytes in Prometheus' text format
    ```
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: collections.Counter = collections.Counter()
        self._histograms: dict[str, dict[tuple, _Histogram]] = {name: {} for name in _HISTOGRAMS}
        self._loads: collections.Counter = collections.Counter()
        self._load_micros: collections.Counter = collections.Counter()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    @contextlib.contextmanager
    def request(self, model_name: str, api: str, entrypoint: str):
        """Counts and times the request answered inside the block: OK, the code of a
        `ServingError` raised, INVALID_ARGUMENT for another ValueError or TypeError (a bad input
        tensor), INTERNAL for anything else."""
        start, status = time.perf_counter(), "OK"
        try:
            yield
        except ServingError as err:
            status = err.code.name
            raise
        except (TypeError, ValueError):
            status = "INVALID_ARGUMENT"
            raise
        except Exception:
            status = "INTERNAL"
            raise
        finally:
            micros = (time.perf_counter() - start) * 1e6
            with self._lock:
                self._requests[model_name, status] += 1
                self._observe(REQUEST_LATENCY, (model_name, api, entrypoint), micros)

    def _observe(self, name: str, labels: tuple, value: float) -> None:
        histogram = self._histograms[name].get(labels)
        if histogram is None:
            histogram = self._histograms[name][labels] = _Histogram(_HISTOGRAMS[name][2])
        histogram.add(value)

    def record_input_batch_size(self, size: int) -> None:
        """A request of `size` examples entered a batch queue."""
        with self._lock:
            self._observe(INPUT_BATCH_SIZE, (), size)

    def record_batch(self, processed_size: int, padding_size: int, queuing_micros: list[float],
                     thread_pool_name: str) -> None:
        """A merged call of `processed_size` examples (`padding_size` of them padding) on the
        requests that waited `queuing_micros` in their queue."""
        with self._lock:
            self._observe(PROCESSED_BATCH_SIZE, (), processed_size)
            self._observe(PADDING_SIZE, (str(processed_size),), padding_size)
            for micros in queuing_micros:
                self._observe(QUEUING_LATENCY, (thread_pool_name,), micros)

    def record_load(self, model_path: str, succeeded: bool, seconds: float) -> None:
        """One attempt to load the version at `model_path` (its warmup included)."""
        with self._lock:
            self._loads[model_path, "success" if succeeded else "fail"] += 1
            if succeeded:
                self._load_micros[model_path] += round(seconds * 1e6)

    def collect(self):
        """The histograms that have samples, for prometheus-client's registry (the counters
        are written by `exposition`, see there)."""
        with self._lock:
            samples = {name: {labels: (histogram.buckets(), histogram.total)
                              for labels, histogram in histograms.items()}
                       for name, histograms in self._histograms.items() if histograms}
        for name, by_labels in samples.items():
            documentation, label_names, _ = _HISTOGRAMS[name]
            family = HistogramMetricFamily(name, documentation, labels=label_names)
            for labels, (buckets, total) in sorted(by_labels.items()):
                family.add_metric(list(labels), buckets, total)
            yield family

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (`CONTENT_TYPE`).

        prometheus-client names a counter's samples `NAME_total`; TF Serving's exporter writes
        `NAME`, which is what queries written for TF Serving read, so the counters are written
        here as TF Serving writes them (prometheus-client's parser reads them as counters).
        """
        with self._lock:
            counters = [
                (REQUEST_COUNT, "The total number of requests.", ("model_name", "status"),
                 dict(self._requests)),
                (LOAD_ATTEMPTS, "The number of times a SavedModel was successfully loaded.",
                 ("model_path", "status"), dict(self._loads)),
                (LOAD_LATENCY, "Latency in microseconds for SavedModels that were successfully "
                 "loaded.", ("model_path",),
                 {(path,): micros for path, micros in self._load_micros.items()}),
            ]
        text = "".join(_counter_text(*counter) for counter in counters)
        return text.encode("utf-8") + generate_latest(self._registry)


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _counter_text(name: str, documentation: str, label_names, values: dict) -> str:
    lines = [f"# HELP {name} {documentation}", f"# TYPE {name} counter"]
    for labels, value in sorted(values.items()):
        pairs = ",".join(f'{key}="{_label_value(label)}"' for key, label in zip(label_names, labels))
        lines.append(f"{name}{{{pairs}}} {floatToGoString(value)}")
    return "\n".join(lines) + "\n"
