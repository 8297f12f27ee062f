"""The model server: any SavedModel behind TF Serving's REST and gRPC APIs."""

from __future__ import annotations

import logging
import threading

from seqzoo.serving.grpc_server import GrpcServer
from seqzoo.serving.model_registry import ModelRegistry
from seqzoo.serving.rest_server import RestServer

log = logging.getLogger(__name__)


class ModelServer:
    """Serves SavedModels the way TF Serving does, so TF Serving's clients work unchanged.

    It depends on TensorFlow and the TF Serving protos only: it serves any SavedModel laid out as
    `BASE/VERSION/saved_model.pb`. Every version found is loaded (its warmup requests replayed);
    requests without a version get the latest. The directories are polled for new versions, and a
    version is only visible once its directory holds `saved_model.pb` under a numeric name.

    Args:
        models_dir: directory whose subdirectories are models (`models/NAME/VERSION/`).
        model_name: with `model_base_path`, serve one model under this name (TF Serving's flags).
        model_base_path: the directory of that model's versions.
        model_config_file: instead, TF Serving's model config file (text `ModelServerConfig`
            listing names and base paths), re-read on every poll.
        host: interface both servers bind.
        rest_port: REST port; 0 picks a free one (read back from `.rest_port`).
        grpc_port: gRPC port; 0 picks a free one (read back from `.grpc_port`).
        poll_seconds: how often to look for new or removed versions; 0 disables polling.

    Example:
    ```python
    server = ModelServer("models", rest_port=0, grpc_port=0)
    server.start()
    Client(rest_port=server.rest_port, grpc_port=server.grpc_port).status("sentiment")
    server.stop()
    ```
    """

    def __init__(self, models_dir=None, *, model_name: str | None = None, model_base_path=None,
                 model_config_file=None, host: str = "127.0.0.1", rest_port: int = 8501, grpc_port: int = 8500,
                 poll_seconds: float = 2.0):
        if poll_seconds < 0:
            raise ValueError(f"poll_seconds must be >= 0. Received: poll_seconds={poll_seconds}")
        self.registry = ModelRegistry(models_dir, model_name=model_name,
                                      model_base_path=model_base_path,
                                      model_config_file=model_config_file)
        self.host = host
        self.poll_seconds = poll_seconds
        self._requested_ports = (rest_port, grpc_port)
        self._rest: RestServer | None = None
        self._grpc: GrpcServer | None = None
        self._stopped = threading.Event()
        self._poller: threading.Thread | None = None

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
        self.registry.poll()
        rest_port, grpc_port = self._requested_ports
        self._grpc = GrpcServer(self.registry, self.host, grpc_port)
        try:
            self._rest = RestServer(self.registry, self.host, rest_port)
        except OSError as err:
            self._grpc = None
            raise ValueError(f"Could not bind the REST port {self.host}:{rest_port}: {err}") from None
        self._grpc.start()
        self._rest.start()
        if self.poll_seconds:
            self._poller = threading.Thread(target=self._poll, name="model-poller", daemon=True)
            self._poller.start()
        log.info("Serving gRPC on %s:%d and REST on %s:%d", self.host, self.grpc_port,
                 self.host, self.rest_port)
        return self

    def _poll(self) -> None:
        while not self._stopped.wait(self.poll_seconds):
            try:
                self.registry.poll()
            except OSError as err:  # e.g. the models directory vanished for a moment
                log.warning("Polling the model directories failed: %s", err)

    def stop(self) -> None:
        """Stops polling and closes both servers (in-flight requests finish first)."""
        self._stopped.set()
        if self._poller is not None:
            self._poller.join()
        if self._rest is not None:
            self._rest.stop()
        if self._grpc is not None:
            self._grpc.stop()

    def wait(self) -> None:
        """Blocks until `stop()` is called (from another thread or a signal handler)."""
        self._stopped.wait()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
