"""Serving latency and throughput: the SavedModel called in-process vs the model server over gRPC
and over REST, measured side by side in one run.

The model is the sentiment model (a short training run exported to a temp dir), or any exported
model given with `--model-dir`; requests are its warmup requests (batch 1), cycled. The server runs
in its own process (`seqzoo serve`), as TF Serving would. Latency: sequential requests, p50/p99.
Throughput: 8 concurrent clients. Then (not with --quick) a second server with TF Serving's
request batching at its defaults (`--enable_batching`, its CPU advice: no batch timeout, a batch
thread per core), and throughput and p99 with 8, 16 and 64 clients against both servers.

    python -m bench serve [--quick] [--model-dir models/sentiment] [--requests N] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2, prediction_service_pb2_grpc

from seqzoo.serving import json_tensors
from seqzoo.serving.model_registry import numeric_versions
from seqzoo.serving.servable import WARMUP_FILE

REPO = pathlib.Path(__file__).resolve().parents[1]


def sentiment_model(workdir: pathlib.Path, steps: int, examples: int) -> pathlib.Path:
    """Trains a short sentiment run and exports it; returns the model's base directory."""
    from seqzoo.serving.export import export_run
    from seqzoo.training import loop, run_directory

    run_dir = workdir / "run"
    config = run_directory.configure("sentiment", run_dir, overrides=[
        f"train.steps={steps}", "train.batch_size=32", f"model.num_examples={examples}",
        "train.strategy=one_device"])
    loop.train(config, run_dir, progress=False)
    return export_run(run_dir, workdir / "models", "sentiment").parent


def warmup_requests(version_dir: pathlib.Path):
    path = version_dir / WARMUP_FILE
    if not path.is_file():
        raise ValueError(f"{version_dir} has no {WARMUP_FILE}; the bench sends its warmup requests.")
    requests = []
    for record in tf.data.TFRecordDataset(str(path)):
        entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if entry.WhichOneof("log_type") == "predict_log":
            requests.append(entry.predict_log.request)
    return requests


def start_server(models_root: pathlib.Path, *flags: str):
    """`seqzoo serve` on free ports in its own process; returns it and its gRPC and REST ports."""
    process = subprocess.Popen(
        [sys.executable, "-m", "seqzoo.serving.cli", "serve", "--models-dir", str(models_root),
         "--port", "0", "--rest_api_port", "0", "--file_system_poll_wait_seconds", "0", *flags],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    banner = process.stdout.readline()
    if "gRPC on" not in banner:
        process.kill()
        raise RuntimeError(f"The model server did not start: {banner!r}")
    grpc_port = int(banner.split("gRPC on ")[1].split(",")[0].rsplit(":", 1)[1])
    rest_port = int(banner.split("http://")[1].split("/")[0].rsplit(":", 1)[1])
    return process, grpc_port, rest_port


def callers(version_dir, name, requests, grpc_port, rest_port):
    """Per mode, a factory of one client's `call(i)` (each client thread makes its own)."""
    function = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    tensors = [{k: tf.constant(tf.make_ndarray(v)) for k, v in r.inputs.items()} for r in requests]
    bodies = [json.dumps({"inputs": {k: json_tensors.to_json_input(tf.make_ndarray(v))
                                     for k, v in r.inputs.items()}}).encode() for r in requests]
    path = f"/v1/models/{name}:predict"

    def in_process():
        def call(i):
            outputs = function(**tensors[i % len(tensors)])
            return {k: v.numpy() for k, v in outputs.items()}
        return call

    def over_grpc():
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
        return lambda i: stub.Predict(requests[i % len(requests)], timeout=60)

    def over_rest():
        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=60)

        def call(i):
            connection.request("POST", path, body=bodies[i % len(bodies)],
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(payload.decode())
            return payload
        return call

    return {"in-process": in_process, "gRPC": over_grpc, "REST": over_rest}


def latency_ms(make_call, count: int) -> np.ndarray:
    call = make_call()
    for i in range(5):
        call(i)
    times = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return np.asarray(times) * 1e3


def throughput(make_call, clients: int, per_client: int) -> float:
    calls = [make_call() for _ in range(clients)]
    for call in calls:
        call(0)
    barrier = threading.Barrier(clients + 1)

    def work(call):
        barrier.wait()
        for i in range(per_client):
            call(i)

    threads = [threading.Thread(target=work, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return clients * per_client / (time.perf_counter() - start)


# The batched server: gRPC threads for every client, so that calls wait for a batch, not a thread.
BATCHED_FLAGS = ("--enable_batching", "--grpc_max_threads", "64")
BATCHED_CLIENTS = (8, 16, 64)


def timed(make_call, seconds: list):
    """`make_call` whose calls append how long each took to `seconds`."""
    def make():
        call = make_call()

        def timed_call(i):
            start = time.perf_counter()
            result = call(i)
            seconds.append(time.perf_counter() - start)
            return result
        return timed_call
    return make


def batching_table(servers: dict, per_client: int, sequential_rate: float) -> str:
    """Throughput and p99 of each protocol with 8, 16 and 64 clients against the unbatched and
    the batched server (`servers`: their modes from `callers`), taking turns; the table."""
    header = (f"{'mode':<6}{'clients':>8}{'req/s':>9}{'batched':>9}{'ratio':>7}"
              f"{'/ in-process 1':>16}{'p99 ms':>9}{'batched':>9}{'ratio':>7}")
    lines = []
    for clients in BATCHED_CLIENTS:
        for mode in ("gRPC", "REST"):
            rates, p99s = [], []
            for modes in servers.values():
                seconds = []
                rates.append(throughput(timed(modes[mode], seconds), clients, per_client))
                p99s.append(np.percentile(seconds, 99) * 1e3)
            lines.append(f"{mode:<6}{clients:>8}{rates[0]:>9.0f}{rates[1]:>9.0f}"
                         f"{rates[1] / rates[0]:>7.2f}{rates[1] / sequential_rate:>16.2f}"
                         f"{p99s[0]:>9.1f}{p99s[1]:>9.1f}{p99s[1] / p99s[0]:>7.2f}")
    return "\n".join([
        f"\nRequest batching ({' '.join(BATCHED_FLAGS)}) against the server without it; "
        f"{per_client} requests per client; '/ in-process 1' divides by the in-process call's "
        f"sequential rate ({sequential_rate:.0f} req/s); load average {os.getloadavg()[0]:.1f}.",
        header, "-" * len(header), *lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--model-dir", type=pathlib.Path, default=None,
                        help="an exported model (models/NAME); default: train a short sentiment run")
    parser.add_argument("--requests", type=int, default=None, help="sequential requests per mode")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    args = parser.parse_args(argv)
    count = args.requests or (20 if args.quick else 400)
    per_client = max(1, count // args.clients) if args.quick else count // 4

    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        if args.model_dir is None:
            print("Training a short sentiment run to serve ...", flush=True)
            base = sentiment_model(pathlib.Path(tmp), steps=5 if args.quick else 50,
                                   examples=200 if args.quick else 2000)
        else:
            base = args.model_dir.resolve()
        versions = numeric_versions(base)
        if not versions:
            raise ValueError(f"{base} holds no version directories NAME/VERSION/saved_model.pb.")
        version_dir = versions[max(versions)]
        requests = warmup_requests(version_dir)
        process, grpc_port, rest_port = start_server(base.parent)
        try:
            modes = callers(version_dir, base.name, requests, grpc_port, rest_port)
            rows = {}
            for mode, make_call in modes.items():
                times = latency_ms(make_call, count)
                rows[mode] = (np.percentile(times, 50), np.percentile(times, 99),
                              throughput(make_call, args.clients, per_client))
            batching = ""
            if not args.quick:
                batched, *ports = start_server(base.parent, *BATCHED_FLAGS)
                try:
                    servers = {"unbatched": modes,
                               "batched": callers(version_dir, base.name, requests, *ports)}
                    batching = batching_table(servers, per_client, 1e3 / np.mean(
                        latency_ms(modes["in-process"], count)))
                finally:
                    batched.send_signal(signal.SIGTERM)
                    batched.wait(timeout=60)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)

    base_p50, _, base_rps = rows["in-process"]
    print(f"\nServing {base.name} version {max(versions)}: batch 1, {count} sequential requests; "
          f"throughput with {args.clients} concurrent clients x {per_client} requests.")
    header = (f"{'mode':<11}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>10}"
              f"{'p50 / in-process':>19}{'req/s / in-process':>21}")
    print(header)
    print("-" * len(header))
    for mode, (p50, p99, rps) in rows.items():
        print(f"{mode:<11}{p50:>9.2f}{p99:>9.2f}{rps:>10.0f}{p50 / base_p50:>19.2f}"
              f"{rps / base_rps:>21.2f}")
    if batching:
        print(batching)
    return 0


if __name__ == "__main__":
    sys.exit(main())
