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

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from seqzoo.serving.serving_error import ServingError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PATH = "/monitoring/prometheus/metrics"
# TF Serving's latency buckets, in microseconds: scale 10, growth 1.8, 33 buckets (~20 minutes).
LATENCY_BUCKETS = tuple(10 * 1.8 ** i for i in range(33))

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
LOAD_ATTEMPTS = ":tensorflow:cc:saved_model:load_attempt_count"
LOAD_LATENCY = ":tensorflow:cc:saved_model:load_latency"


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
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as err:
        raise ValueError(f"Cannot read the monitoring config file {str(path)!r}: {err}") from None
    config = _monitoring_config_class()()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise ValueError(
            f"Monitoring config file {str(path)!r} is not a text MonitoringConfig ({err}); "
            'expected e.g. prometheus_config { enable: true path: "/metrics" }') from None
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    path = prometheus.path or DEFAULT_PATH
    if not path.startswith("/"):
        raise ValueError(f"prometheus_config.path must start with '/'; received {path!r}.")
    return path


class _Histogram:
    def __init__(self):
        self.counts = [0] * len(LATENCY_BUCKETS)
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        index = bisect.bisect_left(LATENCY_BUCKETS, value)
        if index < len(LATENCY_BUCKETS):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def buckets(self) -> list[tuple[str, int]]:
        cumulative, rows = 0, []
        for bound, count in zip(LATENCY_BUCKETS, self.counts):
            cumulative += count
            rows.append((floatToGoString(bound), cumulative))
        rows.append(("+Inf", self.count))
        return rows


class ServingMetrics:
    """Counts requests and model loads as TF Serving does, for its Prometheus endpoint.

    Metrics: `:tensorflow:serving:request_count{model_name, status}` (status as TF Serving names
    gRPC codes: OK, INVALID_ARGUMENT, NOT_FOUND, ...), `:tensorflow:serving:request_latency
    {model_name, API, entrypoint}` (a histogram in microseconds, API Predict/Classify/Regress/
    MultiInference/GetModelMetadata, entrypoint GRPC or REST),
    `:tensorflow:cc:saved_model:load_attempt_count{model_path, status}` (success or fail) and
    `:tensorflow:cc:saved_model:load_latency{model_path}` (microseconds spent loading).

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
        self._latencies: dict[tuple[str, str, str], _Histogram] = collections.defaultdict(
            _Histogram)
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
                self._latencies[model_name, api, entrypoint].add(micros)

    def record_load(self, model_path: str, succeeded: bool, seconds: float) -> None:
        """One attempt to load the version at `model_path` (its warmup included)."""
        with self._lock:
            self._loads[model_path, "success" if succeeded else "fail"] += 1
            if succeeded:
                self._load_micros[model_path] += round(seconds * 1e6)

    def collect(self):
        """The latency histogram, for prometheus-client's registry (the counters are written
        by `exposition`, see there)."""
        with self._lock:
            latencies = {key: (hist.buckets(), hist.total) for key, hist in self._latencies.items()}
        histogram = HistogramMetricFamily(
            REQUEST_LATENCY, "Distribution of wall time (in microseconds) for Tensorflow Serving "
            "request.", labels=("model_name", "API", "entrypoint"))
        for labels, (buckets, total) in sorted(latencies.items()):
            histogram.add_metric(list(labels), buckets, total)
        yield histogram

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
