"""The REST half of the model server: TF Serving's `/v1/models/...` API over stdlib HTTP."""

from __future__ import annotations

import http.server
import json
import logging
import re
import socket
import threading
import time

import grpc
from google.protobuf import json_format

from seqzoo.serving import json_examples, json_tensors, serving_metrics
from seqzoo.serving.model_registry import ModelRegistry
from seqzoo.serving.rest_limits import RestLimits
from seqzoo.serving.serving_error import ServingError

log = logging.getLogger(__name__)

_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<verb>/metadata|:predict|:classify|:regress)?$"
)
_APIS = {":predict": "Predict", ":classify": "Classify", ":regress": "Regress"}
_ACCEPTED = {("GET", None), ("GET", "/metadata"), ("POST", ":predict"), ("POST", ":classify"),
             ("POST", ":regress")}


def _proto_json(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class _BodyTooLarge(Exception):
    """A request body over `RestLimits.max_body_bytes` (HTTP 413)."""

    def __init__(self, length: int, limit: int):
        super().__init__(f"Request body of {length} bytes is larger than the limit of {limit} "
                         "bytes (--rest_api_max_body_bytes); send fewer examples per request "
                         "or raise the limit.")


class _Handler(http.server.BaseHTTPRequestHandler):
    # Keep-alive connections: clients reuse one connection for many requests.
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    server_version = "seqzoo-model-server"
    server: "_HTTPServer"

    def setup(self):
        # A per-read timeout: a client that stalls mid-request (or an idle keep-alive one) holds
        # its thread only this long.
        self.timeout = self.server.limits.timeout_seconds
        super().setup()
        self.server.connections.opened(self.connection)

    def finish(self):
        self.server.connections.closed(self.connection)
        super().finish()

    def handle(self):
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection and self.server.connections.idle(self.connection):
            self.handle_one_request()

    def parse_request(self) -> bool:
        # The request line has arrived: from here the request is accepted, and a drain waits
        # for its answer.
        self.server.connections.busy(self.connection)
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        # A client that asks first (curl does for large bodies) is refused before it sends.
        try:
            self._content_length()
        except (ServingError, _BodyTooLarge) as err:
            self._send(*_error_answer(err), close=True)
            return False
        return super().handle_expect_100()

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's parameter name
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding", "identity").lower() != "identity":
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "Transfer-Encoding is not supported; send the body with a "
                               "Content-Length header.")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Invalid Content-Length {self.headers.get('Content-Length')!r}.")
        if length > self.server.limits.max_body_bytes:
            raise _BodyTooLarge(length, self.server.limits.max_body_bytes)
        return length

    def _read_body(self) -> bytes:
        """The request body, which must arrive within the timeout. A body over the limit is
        read and dropped unparsed, so that a client that sends it all before reading the answer
        gets the 413; a request whose body cannot be delimited closes the connection."""
        try:
            length = self._content_length()
        except _BodyTooLarge:
            self.close_connection = True
            self._read(int(self.headers["Content-Length"]), keep=False)
            raise
        except ServingError:
            self.close_connection = True
            raise
        return self._read(length, keep=True)

    def _read(self, length: int, keep: bool) -> bytes:
        deadline = time.monotonic() + self.server.limits.timeout_seconds
        chunks, received = [], 0
        while received < length:
            chunk = self.rfile.read1(min(length - received, 1 << 20))
            if not chunk or time.monotonic() > deadline:
                raise TimeoutError(f"the body arrived incomplete ({received} of {length} bytes)")
            if keep:
                chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)

    def _answer(self, method: str):
        try:
            body = self._read_body()
            if method == "GET" and self.path.split("?", 1)[0] == self.server.metrics_path:
                self._send_metrics()
                return
            status, payload = 200, self._route(method, body)
        except (ServingError, _BodyTooLarge) as err:
            status, payload = _error_answer(err)
        except TimeoutError as err:
            # The rest of this request may still come: the connection cannot be reused.
            self.close_connection = True
            status, payload = 408, {"error": f"Request timed out: {err}. A request must arrive "
                                             f"within {self.server.limits.timeout_seconds:g} s."}
        except Exception as err:  # a server bug must still answer, in TF Serving's error form
            log.exception("Internal error answering %s %s", method, self.path)
            status, payload = 500, {"error": f"Internal error: {err}"}
        self._send(status, payload, close=self.close_connection or self.server.connections.draining)

    def _send_metrics(self) -> None:
        data = self.server.registry.metrics.exposition()
        self.send_response(200)
        self.send_header("Content-Type", serving_metrics.CONTENT_TYPE)
        self._send_body(data, close=self.server.connections.draining)

    def _send(self, status: int, payload: dict, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self._send_body(json.dumps(payload).encode("utf-8"), close)

    def _send_body(self, data: bytes, close: bool) -> None:
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str, body: bytes) -> dict:
        registry: ModelRegistry = self.server.registry
        match = _ROUTE.match(self.path.split("?", 1)[0])
        verb = match and match["verb"]
        if not match or (method, verb) not in _ACCEPTED:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Malformed request: {method} {self.path}. Accepted: GET /v1/models/NAME"
                "[/versions/N|/labels/LABEL][/metadata], POST /v1/models/NAME"
                "[/versions/N|/labels/LABEL]:(predict|classify|regress).",
            )
        name, label = match["name"], match["label"]
        version = int(match["version"]) if match["version"] else None
        if verb is None:
            return _proto_json(registry.status(name, version, label))
        if verb == "/metadata":
            servable = registry.get(name, version, label)
            return {
                "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
                "metadata": {"signature_def": _proto_json(servable.signature_def_map())},
            }
        with registry.metrics.request(name, _APIS[verb], "REST"):
            servable = registry.get(name, version, label)
            request = _json_body(body)
            if verb == ":predict":
                return self._predict(servable, request, self.server.limits.max_elements)
            signature_name, examples = json_examples.parse_request(request)
            if verb == ":classify":
                return json_examples.format_classification(
                    servable.classify(signature_name, examples))
            return json_examples.format_regression(servable.regress(signature_name, examples))

    @staticmethod
    def _predict(servable, request, max_elements: int) -> dict:
        signature_name = request.get("signature_name", "") if isinstance(request, dict) else ""
        if not isinstance(signature_name, str):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"'signature_name' must be a string; received {signature_name!r}.")
        specs = servable.input_specs(signature_name)
        inputs, row_format = json_tensors.parse_predict_request(request, specs, max_elements)
        outputs = servable.predict(signature_name, inputs)
        return json_tensors.format_predict_response(outputs, row_format)


def _json_body(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"JSON Parse error: {err}") from None
    except RecursionError:
        # Nesting deeper than the parser's recursion limit (TF Serving's own crash on such
        # bodies was CVE-2025-0649): the request is at fault, not the server.
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           "JSON Parse error: the body nests arrays or objects too deeply; a "
                           f"tensor has at most {json_tensors.MAX_RANK} dimensions.") from None


def _error_answer(err: ServingError | _BodyTooLarge) -> tuple[int, dict]:
    if isinstance(err, _BodyTooLarge):
        return 413, {"error": str(err)}
    return err.http_status, {"error": err.message}


class _Connections:
    """The open connections of the REST server, and whether each is answering a request, so
    that a drain closes idle keep-alive connections at once and waits for busy ones."""

    def __init__(self):
        self.draining = False
        self._idle: set[socket.socket] = set()
        self._busy: set[socket.socket] = set()
        self._changed = threading.Condition()

    def opened(self, connection: socket.socket) -> None:
        with self._changed:
            self._idle.add(connection)
            if self.draining:  # accepted just before the listening socket closed
                _stop_reading(connection)

    def busy(self, connection: socket.socket) -> None:
        with self._changed:
            self._idle.discard(connection)
            self._busy.add(connection)

    def idle(self, connection: socket.socket) -> bool:
        """Marks `connection` as waiting for its next request; False if it should close."""
        with self._changed:
            self._busy.discard(connection)
            self._changed.notify_all()
            if self.draining:
                return False
            self._idle.add(connection)
            return True

    def closed(self, connection: socket.socket) -> None:
        with self._changed:
            self._idle.discard(connection)
            self._busy.discard(connection)
            self._changed.notify_all()

    def drain(self, timeout: float) -> int:
        """Closes idle connections and waits up to `timeout` seconds for the busy ones to
        answer; returns how many were still busy."""
        with self._changed:
            self.draining = True
            for connection in self._idle:
                _stop_reading(connection)
            self._changed.wait_for(lambda: not self._busy, timeout)
            return len(self._busy)


def _stop_reading(connection: socket.socket) -> None:
    # The handler blocked reading the next request sees the end of the stream and closes.
    try:
        connection.shutdown(socket.SHUT_RD)
    except OSError:
        pass  # already closed by the client


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # server_close() would join every connection's thread, idle keep-alive ones included;
    # `_Connections.drain` waits for the ones answering a request instead.
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, registry: ModelRegistry, limits: RestLimits,
                 metrics_path: str | None):
        super().__init__(address, _Handler)
        self.registry = registry
        self.limits = limits
        self.metrics_path = metrics_path
        self.connections = _Connections()


class RestServer:
    """Serves a `ModelRegistry` over TF Serving's REST API in a background thread.

    Endpoints: `GET /v1/models/NAME[/versions/N|/labels/LABEL]` (status), `GET .../metadata`
    (signature defs), `POST .../NAME[/versions/N|/labels/LABEL]:predict` (row `instances` or
    columnar `inputs`), `...:classify` and `...:regress` (`examples` of features). Errors answer
    `{"error": "..."}` with TF Serving's HTTP status for the error's code. Requests are bounded
    by `limits` (413 for a large body, 400 for too deep or too many values, 408 for a request
    that does not arrive in time).

    Args:
        registry: the models to serve.
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it back from `.port`).
        limits: the `RestLimits` of each request.
        metrics_path: where `GET` answers the registry's metrics in Prometheus' text format
            (TF Serving's `prometheus_config.path`); None serves none.

    Example:
    ```python
    server = RestServer(ModelRegistry("models"), port=0)
    server.start()
    print(server.port)
    server.stop(drain_seconds=10)
    ```
    """

    def __init__(self, registry: ModelRegistry, host: str = "127.0.0.1", port: int = 8501,
                 limits: RestLimits | None = None, metrics_path: str | None = None):
        self._server = _HTTPServer((host, port), registry, limits or RestLimits(), metrics_path)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="rest-server",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_seconds: float = 0) -> int:
        """Stops accepting connections, closes idle ones, and waits up to `drain_seconds` for
        the requests being answered; returns how many were not answered in time."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()  # the listening socket: new connections are refused
        return self._server.connections.drain(drain_seconds)
