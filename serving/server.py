"""The model server: any SavedModel behind TF Serving's REST and gRPC APIs."""

from __future__ import annotations

import logging
import threading

from tensorflow.core.protobuf import config_pb2

from seqzoo.serving.batching_parameters import BatchingParameters
from seqzoo.serving.grpc_server import GrpcServer
from seqzoo.serving.model_registry import ModelRegistry
from seqzoo.serving.rest_limits import RestLimits
from seqzoo.serving.rest_server import RestServer
from seqzoo.serving.serving_error import ServingError

log = logging.getLogger(__name__)


class ModelServer:
    """Serves SavedModels the way TF Serving does, so TF Serving's clients work unchanged.

    It depends on TensorFlow and the TF Serving protos only: it serves any SavedModel laid out as
    `BASE/VERSION/saved_model.pb`, loaded with TF Serving's loader. Which versions are served
    follows TF Serving's model management (see `ModelRegistry`): version policies, labels,
    warmup replay before a version becomes available, failed versions reported in the status.
    Requests without a version get the latest available one. The directories are polled for new
    versions, and a version is only seen once its directory holds `saved_model.pb` under a
    numeric name.

    Args:
        models_dir: directory whose subdirectories are models (`models/NAME/VERSION/`).
        model_name: with `model_base_path`, serve one model under this name (TF Serving's flags).
        model_base_path: the directory of that model's versions.
        model_config_file: instead, TF Serving's model config file (text `ModelServerConfig`:
            names, base paths, version policies, labels).
        host: interface both servers bind.
        rest_port: REST port; 0 picks a free one (read back from `.rest_port`).
        grpc_port: gRPC port; 0 picks a free one (read back from `.grpc_port`).
        poll_seconds: how often to look for new or removed versions; 0 disables polling.
        config_poll_seconds: how often to re-read `model_config_file`; 0 (the default, as TF
            Serving's `--model_config_file_poll_wait_seconds`) reads it once.
        allow_version_labels_for_unavailable_models: as TF Serving's flag of that name.
        rest_limits: what one REST request may cost (`RestLimits`: body size, read timeout,
            tensor elements).
        rest_num_threads: threads computing REST answers at once (TF Serving's
            `--rest_api_num_threads`); None: 4 per CPU, as TF Serving.
        grpc_max_threads: threads answering gRPC calls at once (TF Serving's flag of that name).
        grpc_arguments: gRPC server arguments, as TF Serving's `--grpc_channel_arguments`
            (e.g. `{"grpc.max_receive_message_length": 1 << 20}`).
        metrics_path: REST path of the Prometheus metrics (TF Serving's
            `prometheus_config.path` in `--monitoring_config_file`); None serves none.
        batching: TF Serving's `BatchingParameters` (`--enable_batching`,
            `--batching_parameters_file`): concurrent predict requests over both protocols are
            merged into batched model calls; None (the default) runs each alone.
        session_config: the `tf.compat.v1.ConfigProto` of every model's session (TF Serving's
            `--tensorflow_*_parallelism` flags, or `session_config` in
            `--platform_config_file`); None: TensorFlow's defaults.
        per_model_batching: TF Serving's `--enable_per_model_batching_parameters` (with
            `batching`): only versions whose directory holds a `batching_params.pbtxt` are
            batched, by its parameters, on the batch threads of `batching`.

    Example:
    ```python
    server = ModelServer("models", rest_port=0, grpc_port=0)
    server.start()
    Client(rest_port=server.rest_port, grpc_port=server.grpc_port).status("sentiment")
    server.stop(drain_seconds=10)
    ```
    """

    def __init__(self, models_dir=None, *, model_name: str | None = None, model_base_path=None,
                 model_config_file=None, host: str = "127.0.0.1", rest_port: int = 8501,
                 grpc_port: int = 8500, poll_seconds: float = 2.0, config_poll_seconds: float = 0,
                 allow_version_labels_for_unavailable_models: bool = False,
                 rest_limits: RestLimits | None = None, rest_num_threads: int | None = None,
                 grpc_max_threads: int = 8,
                 grpc_arguments: dict[str, int | str] | None = None,
                 metrics_path: str | None = None, batching: BatchingParameters | None = None,
                 session_config: config_pb2.ConfigProto | None = None,
                 per_model_batching: bool = False):
        for key, value in (("poll_seconds", poll_seconds),
                           ("config_poll_seconds", config_poll_seconds)):
            if value < 0:
                raise ValueError(f"{key} must be >= 0. Received: {key}={value}")
        if config_poll_seconds and model_config_file is None:
            raise ValueError("config_poll_seconds re-reads model_config_file; give one.")
        self.registry = ModelRegistry(
            models_dir, model_name=model_name, model_base_path=model_base_path,
            model_config_file=model_config_file,
            allow_version_labels_for_unavailable_models=allow_version_labels_for_unavailable_models,
            batching=batching, session_config=session_config,
            per_model_batching=per_model_batching)
        self.host = host
        self._requested_ports = (rest_port, grpc_port)
        self._rest_options = {"limits": rest_limits, "metrics_path": metrics_path,
                              "num_threads": rest_num_threads}
        self._grpc_options = {"max_workers": grpc_max_threads, "arguments": grpc_arguments}
        self._rest: RestServer | None = None
        self._grpc: GrpcServer | None = None
        self._stopped = threading.Event()
        self._pollers = [
            threading.Thread(target=self._every, args=(seconds, action, what), name=what,
                             daemon=True)
            for seconds, action, what in (
                (poll_seconds, self.registry.poll, "model-poller"),
                (config_poll_seconds, self.registry.reload_config_file, "config-poller"))
            if seconds
        ]

    @property
    def rest_port(self) -> int:
        return self._rest.port if self._rest else self._requested_ports[0]

    @property
    def grpc_port(self) -> int:
        return self._grpc.port if self._grpc else self._requested_ports[1]

    def start(self) -> "ModelServer":
        """Loads the models found now, then serves in background threads; returns at once."""
        if self._rest is not None:
            raise ValueError("This ModelServer was already started; make a new one to restart.")
        # Both ports are bound before the (possibly long) first load, so a busy port fails at once.
        rest_port, grpc_port = self._requested_ports
        grpc_server = GrpcServer(self.registry, self.host, grpc_port, **self._grpc_options)
        try:
            rest_server = RestServer(self.registry, self.host, rest_port, **self._rest_options)
        except OSError as err:
            grpc_server.stop().wait()
            raise ValueError(f"Could not bind the REST port {self.host}:{rest_port}: {err}") from None
        try:
            self.registry.start()
        except ValueError:
            grpc_server.stop().wait()
            rest_server.stop()
            raise
        self._grpc, self._rest = grpc_server, rest_server
        self._grpc.start()
        self._rest.start()
        for poller in self._pollers:
            poller.start()
        log.info("Serving gRPC on %s:%d and REST on %s:%d", self.host, self.grpc_port,
                 self.host, self.rest_port)
        return self

    def _every(self, seconds: float, action, what: str) -> None:
        while not self._stopped.wait(seconds):
            try:
                action()
            except (OSError, ServingError) as err:
                # A directory that vanished for a moment, or a config file being rewritten: the
                # models stay as they are until a later poll succeeds, as in TF Serving.
                log.warning("%s: %s", what, err)

    def stop(self, drain_seconds: float = 0) -> None:
        """Stops as TF Serving's users expect on SIGTERM: both servers refuse new requests at
        once, the requests already accepted are answered (for up to `drain_seconds`; later ones
        are cancelled), then every version is unloaded."""
        self._stopped.set()
        for poller in self._pollers:
            if poller.is_alive():
                poller.join()
        grpc_stopped = self._grpc.stop(drain_seconds) if self._grpc is not None else None
        if self._rest is not None:
            unanswered = self._rest.stop(drain_seconds)
            if unanswered:
                log.warning("%d REST request(s) still running after the %g s drain were dropped",
                            unanswered, drain_seconds)
        if grpc_stopped is not None:
            grpc_stopped.wait()
        self.registry.unload_all()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
