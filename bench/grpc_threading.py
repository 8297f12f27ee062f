"""Would an asyncio gRPC server make request batching pay? An experiment, not part of `make bench`.

With batching on, the model server's gRPC side (grpcio's thread-per-call server) holds a thread
for every call waiting for its batch: a profile of the batched sentiment server showed most of
its Python threads' time in waking and handing requests between threads. This runs the same
Servable behind four minimal Predict servers, each in its own process, and measures requests
per second with 16 clients (and sequential p50), taking turns:

- `threads`: `grpc.server` with a thread pool; each call runs the model in its thread (the
  model server without batching);
- `threads+batch`: the same, with seqzoo's `BatchScheduler` (TF Serving's default parameters,
  two batch threads; the model server with `--enable_batching`);
- `asyncio`: `grpc.aio.server`; each call awaits the model run in a pool of two threads;
- `asyncio+batch`: `grpc.aio.server` where calls queue on the event loop and whatever is queued
  (up to 32) runs as one model call whenever one of two pool threads is free: the batcher with
  the fewest hand-offs (no thread per waiting call, no lock; results resolved on the loop).

    python -m bench.grpc_threading [--task sentiment|translation] [--seconds 6] [--turns 3]
                                   [--quick]   (a smoke run: a 5-step sentiment model)

Servers are minimal (no registry, metrics or input checks beyond the Servable's), so compare the
rows with each other, not with `bench serve`'s table.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

MODES = ("threads", "threads+batch", "asyncio", "asyncio+batch")
CLIENTS = 16
# The asyncio+batch server's largest merged call and its model threads.
MAX_BATCH, MODEL_THREADS = 32, 2


def serve(mode: str, version_dir: str, port_file: str) -> None:
    """One server of `mode` for the model at `version_dir`; writes its port to `port_file`."""
    import grpc
    import numpy as np
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from seqzoo.serving.batch_scheduler import BatchScheduler
    from seqzoo.serving.batching_parameters import BatchingParameters
    from seqzoo.serving.grpc_server import _fill_tensor_proto, _ndarray
    from seqzoo.serving.servable import Servable

    scheduler = (BatchScheduler(BatchingParameters(num_batch_threads=MODEL_THREADS))
                 if mode == "threads+batch" else None)
    path = pathlib.Path(version_dir)
    servable = Servable(path.parent.name, int(path.name), path, batch_scheduler=scheduler)

    def answer(request, outputs: dict) -> predict_pb2.PredictResponse:
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        for key, array in outputs.items():
            _fill_tensor_proto(response.outputs[key], array)
        return response

    def inputs_of(request) -> dict:
        return {key: _ndarray(proto) for key, proto in request.inputs.items()}

    def ready(port: int) -> None:
        pathlib.Path(port_file + ".tmp").write_text(str(port))
        os.replace(port_file + ".tmp", port_file)

    if mode.startswith("threads"):
        class ThreadService(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                return answer(request, servable.predict("", inputs_of(request)))

        server = grpc.server(concurrent.futures.ThreadPoolExecutor(64))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(ThreadService(),
                                                                            server)
        ready(server.add_insecure_port("127.0.0.1:0"))
        server.start()
        server.wait_for_termination()
        return

    pool = concurrent.futures.ThreadPoolExecutor(MODEL_THREADS)
    queued: list[tuple[dict, asyncio.Future]] = []
    busy = [0]

    def compute(batch):
        """Each call's outputs from one model call on the batch's inputs concatenated."""
        if len(batch) == 1:
            return [servable.predict("", batch[0][0], batched=False)]
        merged = {name: np.concatenate([inputs[name] for inputs, _ in batch])
                  for name in batch[0][0]}
        outputs = servable.predict("", merged, batched=False)
        split, start = [], 0
        for inputs, _ in batch:
            size = len(next(iter(inputs.values())))
            split.append({key: value[start:start + size] for key, value in outputs.items()})
            start += size
        return split

    def launch(loop) -> None:
        while queued and busy[0] < MODEL_THREADS:
            batch = queued[:MAX_BATCH]
            del queued[:MAX_BATCH]
            busy[0] += 1

            def done(future, batch=batch):
                busy[0] -= 1
                for (_, waiter), outputs in zip(batch, future.result()):
                    waiter.set_result(outputs)
                launch(loop)
            loop.run_in_executor(pool, compute, batch).add_done_callback(done)

    class LoopService(prediction_service_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request, context):
            loop = asyncio.get_running_loop()
            if mode == "asyncio":
                outputs = await loop.run_in_executor(pool, servable.predict, "",
                                                     inputs_of(request))
            else:
                waiter = loop.create_future()
                queued.append((inputs_of(request), waiter))
                launch(loop)
                outputs = await waiter
            return answer(request, outputs)

    async def main() -> None:
        server = grpc.aio.server()
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(LoopService(), server)
        ready(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def check_answer(mode: str, index: int, response, answers: dict) -> None:
    """Raises unless every server answers request `index` as the first server did (all four
    run the model: a wrong split of a merged call or a canned answer would show)."""
    import numpy as np
    import tensorflow as tf

    outputs = {key: tf.make_ndarray(proto) for key, proto in response.outputs.items()}
    first = answers.setdefault(index, (mode, outputs))
    for key, value in first[1].items():
        same = (np.array_equal(value, outputs.get(key)) if value.dtype == object
                else np.allclose(value, outputs.get(key), atol=1e-5))
        if not same:
            raise RuntimeError(f"The {mode} server answered {key} differently from the "
                               f"{first[0]} server: {outputs.get(key)!r} against {value!r}")


def measure(version_dir: pathlib.Path, seconds: float, turns: int) -> None:
    import grpc
    import numpy as np
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from bench.serve_bench import REPO, latency_ms, process_cpu_seconds, warmup_requests

    requests = warmup_requests(version_dir)
    servers = {}
    with tempfile.TemporaryDirectory() as directory:
        try:
            for mode in MODES:
                port_file = os.path.join(directory, f"port-{MODES.index(mode)}")
                process = subprocess.Popen(
                    [sys.executable, "-m", "bench.grpc_threading", "--serve", mode,
                     str(version_dir), port_file],
                    cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                    stderr=subprocess.DEVNULL)
                while not os.path.exists(port_file):
                    if process.poll() is not None:
                        raise RuntimeError(f"The {mode} server ended before serving.")
                    time.sleep(0.1)
                servers[mode] = process, int(pathlib.Path(port_file).read_text())
            answers = {}
            rates = {mode: [] for mode in MODES}
            p50s = {mode: [] for mode in MODES}
            cpus = {mode: [] for mode in MODES}
            for _ in range(turns):
                for mode in MODES:
                    process, port = servers[mode]
                    stubs = [prediction_service_pb2_grpc.PredictionServiceStub(
                        grpc.insecure_channel(f"127.0.0.1:{port}")) for _ in range(CLIENTS)]
                    # Sent together, so that the batching servers merge them.
                    calls = [stub.Predict.future(requests[i % len(requests)], timeout=60)
                             for i, stub in enumerate(stubs)]
                    for i, call in enumerate(calls):
                        check_answer(mode, i % len(requests), call.result(), answers)
                    p50s[mode].append(np.percentile(latency_ms(
                        lambda stub=stubs[0]: lambda i: stub.Predict(
                            requests[i % len(requests)], timeout=60), 200), 50))
                    counts = [0] * CLIENTS
                    stop = time.monotonic() + seconds

                    def work(index, stubs=stubs, counts=counts, stop=stop):
                        while time.monotonic() < stop:
                            stubs[index].Predict(requests[index % len(requests)], timeout=60)
                            counts[index] += 1

                    threads = [threading.Thread(target=work, args=(i,)) for i in range(CLIENTS)]
                    cpu, start = process_cpu_seconds(process.pid), time.monotonic()
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join()
                    elapsed = time.monotonic() - start
                    rates[mode].append(sum(counts) / elapsed)
                    if cpu is not None:
                        cpus[mode].append((process_cpu_seconds(process.pid) - cpu) * 1e3
                                          / sum(counts))
        finally:
            for process, _ in servers.values():
                process.kill()

    def median(values):
        return sorted(values)[len(values) // 2] if values else float("nan")

    base = median(rates["threads"])
    print(f"{version_dir.parent.name}: {CLIENTS} clients, {turns} turns of {seconds:g} s "
          f"(medians); load average {os.getloadavg()[0]:.1f}")
    header = (f"{'server':<15}{'req/s':>8}{'/ threads':>11}{'/ threads+batch':>17}"
              f"{'server CPU ms/req':>19}{'p50 ms':>9}")
    print(header)
    print("-" * len(header))
    for mode in MODES:
        rate = median(rates[mode])
        print(f"{mode:<15}{rate:>8.0f}{rate / base:>11.2f}"
              f"{rate / median(rates['threads+batch']):>17.2f}{median(cpus[mode]):>19.2f}"
              f"{median(p50s[mode]):>9.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_threading",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("sentiment", "translation"), default="sentiment")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run on a model trained for a few steps")
    parser.add_argument("--serve", nargs=3, metavar=("MODE", "VERSION_DIR", "PORT_FILE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    from bench.serve_bench import trained_model

    with tempfile.TemporaryDirectory() as workdir:
        base = trained_model(args.task, pathlib.Path(workdir), quick=args.quick)
        measure(base / "1", args.seconds, args.turns)
    return 0


if __name__ == "__main__":
    from seqzoo.serving.tensorflow_logs import quiet_tensorflow_logs

    quiet_tensorflow_logs()
    sys.exit(main())
