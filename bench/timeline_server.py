"""`seqzoo serve` (or the protocol floor) with a timeline of each request, for `bench serve`.

Runs the server's own entry point in this process after wrapping its request handlers
(gRPC Predict and the REST answer) and the servable's session run, so that each request leaves
four `time.perf_counter_ns()` stamps: handler start and end, session run start and end (0, 0
without a run). The clock is the machine's monotonic one, the same in every process, so the
bench's own stamps around each call split a request's round trip into: client to handler (the
client's sending, the kernel, the server's library and its hand-off to a handler thread), the
handler (the server's code and the session run) and handler to client. Stamping costs a few
hundred nanoseconds per request and nothing is logged; on SIGUSR1 the stamps so far are written
to OUT (an `.npy` of int64 rows, one per request, in the order above).

    python -m bench.timeline_server OUT serve SEQZOO_SERVE_ARGUMENTS...
    python -m bench.timeline_server OUT floor ANSWERS_FILE
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time

import numpy as np

_records: list[tuple[int, int, int, int]] = []
_run_stamps = threading.local()


def _timed_run(run):
    @functools.wraps(run)
    def wrapper(*args, **kwargs):
        start = time.perf_counter_ns()
        try:
            return run(*args, **kwargs)
        finally:
            _run_stamps.last = (start, time.perf_counter_ns())
    return wrapper


def _timed_handler(handler):
    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        _run_stamps.last = (0, 0)
        start = time.perf_counter_ns()
        try:
            return handler(*args, **kwargs)
        finally:
            _records.append((start, time.perf_counter_ns(), *_run_stamps.last))
    return wrapper


def _write(path: str) -> None:
    partial = f"{path}.partial.npy"
    np.save(partial, np.array(_records, dtype=np.int64).reshape(-1, 4))
    os.replace(partial, path)


def main(argv: list[str]) -> int:
    path, kind, *arguments = argv
    signal.signal(signal.SIGUSR1, lambda signum, frame: _write(path))
    if kind == "floor":
        from bench import protocol_floor

        service = protocol_floor._CannedPredictions
        service.Predict = _timed_handler(service.Predict)
        return protocol_floor.main(arguments)
    from seqzoo.serving import cli, grpc_server, rest_server, servable

    servable.Servable._run = _timed_run(servable.Servable._run)
    grpc_server._PredictionService.Predict = _timed_handler(
        grpc_server._PredictionService.Predict)
    rest_server._RestApi.answer = _timed_handler(rest_server._RestApi.answer)
    return cli.main([kind, *arguments])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
