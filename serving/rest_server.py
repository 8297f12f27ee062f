"""The REST half of the model server: TF Serving's `/v1/models/...` API on aiohttp's HTTP server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import re
import socket
import threading

import grpc
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
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
_JSON = "application/json"
# Worker threads per CPU answering REST requests, as TF Serving's `--rest_api_num_threads`.
THREADS_PER_CPU = 4


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


def _json_answer(status: int, payload: dict) -> tuple[int, str, bytes]:
    return status, _JSON, json.dumps(payload).encode("utf-8")


def _error_answer(err: ServingError | _BodyTooLarge) -> tuple[int, str, bytes]:
    """TF Serving's error body `{"error": "..."}` with the status of the error's code."""
    if isinstance(err, _BodyTooLarge):
        return _json_answer(413, {"error": str(err)})
    return _json_answer(err.http_status, {"error": err.message})


class _RestApi:
    """TF Serving's REST API apart from HTTP: what a request's headers allow, and the answer to
    a whole request. `answer` blocks (model calls are session runs): it runs in worker threads."""

    def __init__(self, registry: ModelRegistry, limits: RestLimits, metrics_path: str | None):
        self.registry = registry
        self.limits = limits
        self.metrics_path = metrics_path

    def body_length(self, headers) -> int | None:
        """The length of the body the headers announce (None when it comes in chunks), refused
        before any of it is read when it is over the limit."""
        if headers.get("Transfer-Encoding", "identity").lower() == "chunked":
            return None
        length = int(headers.get("Content-Length") or 0)
        if length > self.limits.max_body_bytes:
            raise _BodyTooLarge(length, self.limits.max_body_bytes)
        return length

    def answer(self, method: str, target: str, body: bytes) -> tuple[int, str, bytes]:
        """`(status, content type, body)` of the response to a request for `target` (path and
        query); errors in TF Serving's form `{"error": "..."}`."""
        path = target.split("?", 1)[0]
        try:
            if method == "GET" and path == self.metrics_path:
                return 200, serving_metrics.CONTENT_TYPE, self.registry.metrics.exposition()
            return _json_answer(200, self._route(method, target, path, body))
        except ServingError as err:
            return _error_answer(err)
        except Exception as err:  # a server bug must still answer, in TF Serving's error form
            log.exception("Internal error answering %s %s", method, target)
            return _json_answer(500, {"error": f"Internal error: {err}"})

    def _route(self, method: str, target: str, path: str, body: bytes) -> dict:
        registry = self.registry
        match = _ROUTE.match(path)
        verb = match and match["verb"]
        if not match or (method, verb) not in _ACCEPTED:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Malformed request: {method} {target}. Accepted: GET /v1/models/NAME"
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
                return self._predict(servable, request)
            signature_name, examples = json_examples.parse_request(request)
            if verb == ":classify":
                return json_examples.format_classification(
                    servable.classify(signature_name, examples))
            return json_examples.format_regression(servable.regress(signature_name, examples))

    def _predict(self, servable, request) -> dict:
        signature_name = request.get("signature_name", "") if isinstance(request, dict) else ""
        if not isinstance(signature_name, str):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"'signature_name' must be a string; received {signature_name!r}.")
        specs = servable.input_specs(signature_name)
        inputs, row_format = json_tensors.parse_predict_request(request, specs,
                                                                self.limits.max_elements)
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


class _MalformedHTTP(logging.Filter):
    """Drops aiohttp's ERROR record, with a traceback, of each request it cannot parse (a bad
    Content-Length, a garbled request line): the client's mistake, answered 400, not the
    server's; a hostile client could fill the log with them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], HttpProcessingError))


logging.getLogger("aiohttp.server").addFilter(_MalformedHTTP())


class _Connection(asyncio.Protocol):
    """One client connection: aiohttp's protocol for it, watched so that a request which does
    not arrive in time (a client that sends half a request line and stalls, or an idle
    keep-alive connection) closes it. aiohttp itself bounds neither."""

    def __init__(self, protocol: asyncio.Protocol, connections: "_Connections"):
        self.protocol = protocol
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport):
        self.transport = transport
        self.protocol.connection_made(transport)
        self.connections.opened(self)

    def data_received(self, data):
        self.protocol.data_received(data)

    def eof_received(self):
        return self.protocol.eof_received()

    def connection_lost(self, exc):
        self.connections.closed(self)
        self.protocol.connection_lost(exc)

    def pause_writing(self):
        self.protocol.pause_writing()

    def resume_writing(self):
        self.protocol.resume_writing()


class _Connections:
    """The open connections, whether each is answering a request, and their arrival deadlines;
    a drain closes idle connections at once and waits for busy ones. Used on the event loop's
    thread only."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_seconds: float):
        self.loop = loop
        self.timeout_seconds = timeout_seconds
        self.draining = False
        self._by_transport: dict[asyncio.BaseTransport, _Connection] = {}
        self._busy = 0
        self._all_idle = asyncio.Event()
        self._all_idle.set()

    def opened(self, connection: _Connection) -> None:
        if self.draining:  # accepted just before the listening socket closed
            connection.transport.close()
            return
        self._by_transport[connection.transport] = connection
        self._wait_for_request(connection)

    def closed(self, connection: _Connection) -> None:
        self._by_transport.pop(connection.transport, None)
        self._settle(connection)

    def busy(self, transport) -> None:
        """A request arrived (its headers): a drain waits for its answer."""
        connection = self._by_transport.get(transport)
        if connection is not None and not connection.busy:
            connection.busy = True
            connection.timer.cancel()
            self._busy += 1
            self._all_idle.clear()

    def idle(self, transport) -> None:
        """The request was answered: the next one must arrive in time."""
        connection = self._by_transport.get(transport)
        if connection is not None:
            self._settle(connection)
            if self.draining:
                transport.close()
            else:
                self._wait_for_request(connection)

    def _wait_for_request(self, connection: _Connection) -> None:
        connection.timer = self.loop.call_later(self.timeout_seconds, self._expire, connection)

    def _expire(self, connection: _Connection) -> None:
        if not connection.busy:
            connection.transport.close()

    def _settle(self, connection: _Connection) -> None:
        if connection.timer is not None:
            connection.timer.cancel()
        if connection.busy:
            connection.busy = False
            self._busy -= 1
            if not self._busy:
                self._all_idle.set()

    async def drain(self, timeout: float) -> int:
        """Closes idle connections and waits up to `timeout` seconds for the busy ones to
        answer; returns how many were still busy."""
        self.draining = True
        for connection in list(self._by_transport.values()):
            if not connection.busy:
                connection.transport.close()
        try:
            await asyncio.wait_for(self._all_idle.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return self._busy


class RestServer:
    """Serves a `ModelRegistry` over TF Serving's REST API, on aiohttp's HTTP server.

    Endpoints: `GET /v1/models/NAME[/versions/N|/labels/LABEL]` (status), `GET .../metadata`
    (signature defs), `POST .../NAME[/versions/N|/labels/LABEL]:predict` (row `instances` or
    columnar `inputs`), `...:classify` and `...:regress` (`examples` of features). Errors answer
    `{"error": "..."}` with TF Serving's HTTP status for the error's code. Requests are bounded
    by `limits` (413 for a large body, before it is read; 400 for too deep or too many values;
    408 for a body that does not arrive in time, and a connection whose next request does not
    begin in time is closed).

    One event loop, in a background thread, reads and writes every connection; the answers
    (JSON parsing, model calls) are computed by `num_threads` worker threads, so a long model
    call holds up no other client.

    Args:
        registry: the models to serve.
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it back from `.port`).
        limits: the `RestLimits` of each request.
        metrics_path: where `GET` answers the registry's metrics in Prometheus' text format
            (TF Serving's `prometheus_config.path`); None serves none.
        num_threads: threads computing answers at once (TF Serving's `--rest_api_num_threads`);
            None: 4 per CPU, as TF Serving.

    Example:
    ```python
    server = RestServer(ModelRegistry("models"), port=0)
    server.start()
    print(server.port)
    server.stop(drain_seconds=10)
    ```
    """

    def __init__(self, registry: ModelRegistry, host: str = "127.0.0.1", port: int = 8501,
                 limits: RestLimits | None = None, metrics_path: str | None = None,
                 num_threads: int | None = None):
        if num_threads is not None and num_threads <= 0:
            raise ValueError(f"num_threads must be > 0. Received: num_threads={num_threads}")
        listening = socket.create_server((host, port))
        self.port = listening.getsockname()[1]
        self._api = _RestApi(registry, limits or RestLimits(), metrics_path)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            num_threads or THREADS_PER_CPU * (os.cpu_count() or 1), thread_name_prefix="rest")
        self._loop = asyncio.new_event_loop()
        self._connections = _Connections(self._loop, self._api.limits.timeout_seconds)
        self._web = web.Server(self._handle, loop=self._loop, access_log=None)
        self._listener = self._loop.run_until_complete(self._loop.create_server(
            lambda: _Connection(self._web(), self._connections), sock=listening))
        self._thread = threading.Thread(target=self._loop.run_forever, name="rest-server",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_seconds: float = 0) -> int:
        """Stops accepting connections, closes idle ones, and waits up to `drain_seconds` for
        the requests being answered; returns how many were not answered in time."""
        if self._thread.is_alive():
            unanswered = asyncio.run_coroutine_threadsafe(
                self._stop(drain_seconds), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        else:
            unanswered = self._loop.run_until_complete(self._stop(drain_seconds))
        self._loop.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        return unanswered

    async def _stop(self, drain_seconds: float) -> int:
        self._listener.close()  # the listening socket: new connections are refused
        unanswered = await self._connections.drain(drain_seconds)
        # The requests still running are cancelled (aiohttp reads a timeout of 0 as none).
        await self._web.shutdown(0.001)
        running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        return unanswered

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self._connections.busy(request.transport)
        try:
            status, content_type, data, close = await self._respond(request)
            response = web.Response(status=status, body=data,
                                    headers={"Content-Type": content_type})
            if close or self._connections.draining:
                response.force_close()
            # Written here rather than by aiohttp after the return, so that the connection is
            # idle (and may be closed by a drain) only once its answer is out.
            await response.prepare(request)
            await response.write_eof()
            return response
        finally:
            self._connections.idle(request.transport)

    async def _respond(self, request: web.BaseRequest) -> tuple[int, str, bytes, bool]:
        """`(status, content type, body, close the connection after)`."""
        try:
            try:
                length = self._api.body_length(request.headers)
            except _BodyTooLarge:
                # A client that asks first (curl does for large bodies) is refused before it
                # sends; one that sends it all before reading the answer gets the answer once
                # the body is read and dropped unparsed.
                if request.headers.get("Expect", "").lower() != "100-continue":
                    await self._read(request, None, keep=False)
                raise
            if request.headers.get("Expect", "").lower() == "100-continue":
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await self._read(request, length, keep=True)
        except (_BodyTooLarge, ServingError) as err:
            return *_error_answer(err), True
        except TimeoutError as err:
            # The rest of this request may still come: the connection cannot be reused.
            timeout = self._api.limits.timeout_seconds
            return *_json_answer(408, {"error": f"Request timed out: {err}. A request must "
                                                f"arrive within {timeout:g} s."}), True
        status, content_type, data = await self._loop.run_in_executor(
            self._pool, self._api.answer, request.method, request.raw_path, body)
        return status, content_type, data, False

    async def _read(self, request: web.BaseRequest, length: int | None, keep: bool) -> bytes:
        """The body, which must arrive within the timeout; `length` None: chunked, bounded by
        the body limit as it comes."""
        limit = self._api.limits.max_body_bytes
        chunks, received = [], 0
        try:
            async with asyncio.timeout(self._api.limits.timeout_seconds):
                while chunk := await request.content.readany():
                    received += len(chunk)
                    if keep and length is None and received > limit:
                        raise _BodyTooLarge(received, limit)
                    if keep:
                        chunks.append(chunk)
        except TimeoutError:
            expected = "" if length is None else f" of {length}"
            raise TimeoutError(f"the body arrived incomplete ({received}{expected} bytes)") from None
        except RequestPayloadError as err:  # e.g. a malformed chunk
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"The request body is malformed: {err}") from None
        return b"".join(chunks)
