"""The REST half of the model server: TF Serving's `/v1/models/...` API over stdlib HTTP."""

from __future__ import annotations

import http.server
import json
import logging
import re
import threading

import grpc
from google.protobuf import json_format

from seqzoo.serving import json_examples, json_tensors
from seqzoo.serving.model_registry import ModelRegistry
from seqzoo.serving.serving_error import ServingError

log = logging.getLogger(__name__)

_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<verb>/metadata|:predict|:classify|:regress)?$"
)
_ACCEPTED = {("GET", None), ("GET", "/metadata"), ("POST", ":predict"), ("POST", ":classify"),
             ("POST", ":regress")}


def _proto_json(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    # Keep-alive connections: clients reuse one connection for many requests.
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    server_version = "seqzoo-model-server"

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's parameter name
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")

    def _answer(self, method: str):
        # The body is always read, so a rejected request leaves the connection usable.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            length = 0
        body = self.rfile.read(length) if length > 0 else b""
        try:
            status, payload = 200, self._route(method, body)
        except ServingError as err:
            status, payload = err.http_status, {"error": err.message}
        except Exception as err:  # a server bug must still answer, in TF Serving's error form
            log.exception("Internal error answering %s %s", method, self.path)
            status, payload = 500, {"error": f"Internal error: {err}"}
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
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
        servable = registry.get(name, version, label)
        if verb == "/metadata":
            return {
                "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
                "metadata": {"signature_def": _proto_json(servable.signature_def_map())},
            }
        request = _json_body(body)
        if verb == ":predict":
            return self._predict(servable, request)
        signature_name, examples = json_examples.parse_request(request)
        if verb == ":classify":
            return json_examples.format_classification(servable.classify(signature_name, examples))
        return json_examples.format_regression(servable.regress(signature_name, examples))

    @staticmethod
    def _predict(servable, request) -> dict:
        signature_name = request.get("signature_name", "") if isinstance(request, dict) else ""
        if not isinstance(signature_name, str):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"'signature_name' must be a string; received {signature_name!r}.")
        specs = servable.input_specs(signature_name)
        inputs, row_format = json_tensors.parse_predict_request(request, specs)
        outputs = servable.predict(signature_name, inputs)
        return json_tensors.format_predict_response(outputs, row_format)


def _json_body(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"JSON Parse error: {err}") from None


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, registry: ModelRegistry):
        super().__init__(address, _Handler)
        self.registry = registry


class RestServer:
    """Serves a `ModelRegistry` over TF Serving's REST API in a background thread.

    Endpoints: `GET /v1/models/NAME[/versions/N|/labels/LABEL]` (status), `GET .../metadata`
    (signature defs), `POST .../NAME[/versions/N|/labels/LABEL]:predict` (row `instances` or
    columnar `inputs`), `...:classify` and `...:regress` (`examples` of features). Errors answer
    `{"error": "..."}` with TF Serving's HTTP status for the error's code.

    Args:
        registry: the models to serve.
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it back from `.port`).

    Example:
    ```python
    server = RestServer(ModelRegistry("models"), port=0)
    server.start()
    print(server.port)
    server.stop()
    ```
    """

    def __init__(self, registry: ModelRegistry, host: str = "127.0.0.1", port: int = 8501):
        self._server = _HTTPServer((host, port), registry)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="rest-server",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
