"""The cost of the protocols alone: a server on the model server's libraries (grpcio's server with
TF Serving's PredictionService, aiohttp's HTTP server) that answers each Predict request with a
canned answer, computing nothing. `bench serve` measures it beside the real server, so that the
part of a request's latency that serving code can still remove shows: the real server's p50 less
this one's less the model's in-process call.

It parses every gRPC request and serializes every answer, as any server must; over REST it reads
the body and writes the canned bytes from aiohttp's event loop, without the worker threads that
parse JSON and run the model in the real server.

    python -m bench.protocol_floor ANSWERS_FILE

ANSWERS_FILE is a pickle of `{"grpc": {request bytes: response bytes}, "rest": {body: answer}}`
(see `write_answers`); the server prints `gRPC on PORT, REST on PORT` and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import pathlib
import pickle
import signal
import socket
import sys

import grpc
from aiohttp import web
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from seqzoo.serving.grpc_server import DEFAULT_MAX_RECEIVE_BYTES


def write_answers(path: pathlib.Path, grpc_answers: dict, rest_answers: dict) -> None:
    """Writes the canned answers: request bytes to the serialized `PredictResponse` (gRPC), and
    request body to JSON answer bytes (REST)."""
    path.write_bytes(pickle.dumps({"grpc": grpc_answers, "rest": rest_answers}))


class _CannedPredictions(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, answers: dict[bytes, bytes]):
        self._answers = {key: predict_pb2.PredictResponse.FromString(value)
                         for key, value in answers.items()}

    def Predict(self, request, context):
        return self._answers[request.SerializeToString(deterministic=True)]


def main(argv: list[str] | None = None) -> int:
    (answers_file,) = argv if argv is not None else sys.argv[1:]
    answers = pickle.loads(pathlib.Path(answers_file).read_bytes())
    # The model server's gRPC defaults (`--grpc_max_threads` 8, its message size limits).
    grpc_server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8),
                              options=[("grpc.max_send_message_length", -1),
                                       ("grpc.max_receive_message_length",
                                        DEFAULT_MAX_RECEIVE_BYTES),
                                       ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _CannedPredictions(answers["grpc"]), grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()

    rest_answers = answers["rest"]

    async def answer(request: web.BaseRequest) -> web.Response:
        return web.Response(body=rest_answers[await request.read()],
                            headers={"Content-Type": "application/json"})

    async def serve() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        server = web.Server(answer, access_log=None)
        runner = web.ServerRunner(server)
        await runner.setup()
        listening = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(runner, listening).start()
        rest_port = listening.getsockname()[1]
        print(f"gRPC on {grpc_port}, REST on {rest_port}", flush=True)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())
    grpc_server.stop(0).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
