"""Serving latency and throughput: the SavedModel called in-process vs the model server over gRPC
and over REST, measured side by side in one run, for sentiment and translation.

Each task's model comes from a short training run exported to a temp dir (or give exported models
with `--model-dir`, repeatable); requests are its warmup requests to `serving_default` (batch 1),
cycled. The server runs in its own process (`seqzoo serve`), as TF Serving would. Latency:
sequential requests from one client, p50/p99. Throughput: requests per second with 1, 8, 16 and
64 concurrent clients (threads of the bench's process, each with its own connection), with the CPU
milliseconds per request of the server's process and of the clients' at the most clients, so that
a bound set by the clients (or by the cores they take from the server) shows. Every ratio is to
the in-process call in the same run. The unbatched servers and the protocol floor stamp each
request's handler and session run (bench/timeline_server.py), so that the sequential requests'
round trips split into client to handler, the server's code, the session run and handler to
client. Not with --quick, the rows `gRPC*` and `REST*` are a second
server whose sessions run each op in the calling thread (`--platform_config_file` with a
`session_config`, see TUNED_SESSION_CONFIG), the reference staying the plain in-process call.
Then (not with --quick) servers with TF Serving's request batching at its defaults
(`--enable_batching`, its CPU advice: no batch timeout, a batch thread per core), with either
session config: throughput and p99 with 8, 16 and 64 clients against the unbatched server.

    python -m bench serve [--quick] [--tasks sentiment,translation] [--model-dir models/NAME]
                          [--requests N] [--clients 1,8,16,64]
"""

from __future__ import annotations

import argparse
import dataclasses
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

from bench.timing import train_quietly
from seqzoo.serving import json_tensors
from seqzoo.serving.model_registry import numeric_versions
from seqzoo.serving.servable import WARMUP_FILE

REPO = pathlib.Path(__file__).resolve().parents[1]
# Each task's short training run: enough steps for a model of the task's default size (which sets
# the in-process cost the server's overhead is compared with), on little generated data.
TASKS = {
    "sentiment": (50, ["train.batch_size=32", "model.num_examples=2000"]),
    "translation": (50, ["data=builtin:dates", "train.batch_size=32", "model.num_train=2000",
                         "model.num_validation=40", "model.eval_beam=false"]),
}
QUICK_TASKS = ("sentiment",)
QUICK_OVERRIDES = {"sentiment": (5, ["train.batch_size=32", "model.num_examples=200"])}
MODES = ("in-process", "gRPC", "REST")
DEFAULT_SIGNATURES = ("", "serving_default")


def trained_model(task: str, workdir: pathlib.Path, quick: bool) -> pathlib.Path:
    """Trains a short run of `task` and exports it; returns the model's base directory."""
    from seqzoo.serving.export import export_run
    from seqzoo.training import run_directory

    steps, overrides = (QUICK_OVERRIDES if quick else TASKS)[task]
    run_dir = workdir / "runs" / task
    config = run_directory.configure(task, run_dir, overrides=[
        f"train.steps={steps}", "train.strategy=one_device", "train.checkpoint_every=100000",
        *overrides])
    train_quietly(config, run_dir)
    return export_run(run_dir, workdir / "models", task).parent


def warmup_requests(version_dir: pathlib.Path):
    """The model's warmup Predict requests to its default signature."""
    path = version_dir / WARMUP_FILE
    if not path.is_file():
        raise ValueError(f"{version_dir} has no {WARMUP_FILE}; the bench sends its warmup requests.")
    requests = []
    for record in tf.data.TFRecordDataset(str(path)):
        entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if (entry.WhichOneof("log_type") == "predict_log"
                and entry.predict_log.request.model_spec.signature_name in DEFAULT_SIGNATURES):
            requests.append(entry.predict_log.request)
    if not requests:
        raise ValueError(f"{path} holds no Predict request to serving_default.")
    return requests


def start_server(models_root: pathlib.Path, *flags: str, timeline: pathlib.Path | None = None):
    """`seqzoo serve` on free ports in its own process; returns it and its gRPC and REST ports.
    With `timeline`, the server stamps each request's handler and session run (see
    `bench/timeline_server.py`) and writes the stamps there when asked (`read_timeline`)."""
    entry = (["-m", "seqzoo.serving.cli"] if timeline is None
             else ["-m", "bench.timeline_server", str(timeline)])
    process = subprocess.Popen(
        [sys.executable, *entry, "serve", "--models-dir", str(models_root),
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


def rest_bodies(requests) -> list[bytes]:
    """The REST `:predict` bodies (columnar `inputs`) of the gRPC `requests`."""
    return [json.dumps({"inputs": {k: json_tensors.to_json_input(tf.make_ndarray(v))
                                   for k, v in r.inputs.items()}}).encode() for r in requests]


def callers(version_dir, name, requests, grpc_port, rest_port):
    """Per mode, a factory of one client's `call(i)` (each client thread makes its own)."""
    function = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    tensors = [{k: tf.constant(tf.make_ndarray(v)) for k, v in r.inputs.items()} for r in requests]
    bodies = rest_bodies(requests)
    path = f"/v1/models/{name}:predict"

    def in_process():
        def call(i):
            outputs = function(**tensors[i % len(tensors)])
            return {k: v.numpy() for k, v in outputs.items()}
        return call

    def over_grpc():
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
        return lambda i: stub.Predict(requests[i % len(requests)], timeout=120)

    def over_rest():
        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=120)

        def call(i):
            connection.request("POST", path, body=bodies[i % len(bodies)],
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(payload.decode())
            return payload
        return call

    return dict(zip(MODES, (in_process, over_grpc, over_rest)))


def call_stamps(make_call, count: int) -> np.ndarray:
    """`count` sequential calls (after 5 unmeasured ones): a `[count, 2]` array of each call's
    start and end in `time.perf_counter_ns()`, the machine's monotonic clock that the servers
    under `bench/timeline_server.py` stamp with too."""
    call = make_call()
    for i in range(5):
        call(i)
    stamps = np.empty((count, 2), dtype=np.int64)
    for i in range(count):
        stamps[i, 0] = time.perf_counter_ns()
        call(i)
        stamps[i, 1] = time.perf_counter_ns()
    return stamps


def latency_ms(make_call, count: int) -> np.ndarray:
    stamps = call_stamps(make_call, count)
    return (stamps[:, 1] - stamps[:, 0]) / 1e6


def process_cpu_seconds(pid: int | None = None) -> float | None:
    """CPU seconds used so far by every thread of process `pid` (None: this one), to the
    nanosecond (/proc's per-process total counts 10 ms ticks, too coarse for a short run); None
    where /proc does not say (not Linux)."""
    if pid is None:
        return time.process_time()
    try:
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in pathlib.Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        return None


@dataclasses.dataclass
class Rate:
    """A throughput run: requests per second, and the CPU milliseconds per request spent by the
    clients' process (this one) and by the server's (None in process, or without /proc)."""

    per_second: float
    client_cpu_ms: float
    server_cpu_ms: float | None


def throughput(make_call, clients: int, per_client: int, server_pid: int | None = None) -> Rate:
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
    server_cpu = process_cpu_seconds(server_pid) if server_pid else None
    client_cpu = process_cpu_seconds()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    count = clients * per_client
    server_ms = (None if server_cpu is None
                 else (process_cpu_seconds(server_pid) - server_cpu) * 1e3 / count)
    return Rate(count / seconds, (process_cpu_seconds() - client_cpu) * 1e3 / count, server_ms)


# Turns the modes take at the sequential requests: a load that comes and goes during the run
# then lands on every mode, not on the one measured at that moment.
LATENCY_TURNS = 5


def measure(modes: dict, count: int, clients: list[int], server_pids: dict,
            timelines: dict | None = None) -> dict:
    """Per mode: `(p50 ms, p99 ms, {clients: Rate})`; `server_pids` gives each server mode's
    process. Modes take turns at each measurement (the sequential requests in LATENCY_TURNS
    turns), so that a change of machine load affects them alike. For each mode in `timelines`
    (mode -> (server process, its stamps file)), the split of its sequential requests
    (`timeline_row`) is added to `timelines[mode]` as a third item."""
    stamps = {mode: [] for mode in modes}
    for _ in range(LATENCY_TURNS):
        for mode, make_call in modes.items():
            stamps[mode].append(call_stamps(make_call, max(1, count // LATENCY_TURNS)))
    stamps = {mode: np.concatenate(each) for mode, each in stamps.items()}
    for mode, (process, path) in (timelines or {}).items():
        timelines[mode] = (process, path, timeline_row(stamps[mode], read_timeline(process, path)))
    rates = {mode: {} for mode in modes}
    for number in clients:
        for mode, make_call in modes.items():
            rates[mode][number] = throughput(make_call, number, max(2, count // number),
                                             server_pids.get(mode))
    times = {mode: (each[:, 1] - each[:, 0]) / 1e6 for mode, each in stamps.items()}
    return {mode: (np.percentile(times[mode], 50), np.percentile(times[mode], 99), rates[mode])
            for mode in modes}


def read_timeline(process: subprocess.Popen, path: pathlib.Path) -> np.ndarray:
    """The stamps a server under `bench/timeline_server.py` took so far: `[requests, 4]`
    (handler start, end, session run start, end), by handler start."""
    path.unlink(missing_ok=True)
    process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"The server under bench/timeline_server.py wrote no {path}.")
        time.sleep(0.01)
    records = np.load(path)
    return records[np.argsort(records[:, 0])]


def timeline_row(calls: np.ndarray, records: np.ndarray) -> dict[str, float]:
    """Median milliseconds of each part of the sequential `calls` (client start, end stamps)
    whose handler ran within them, from the server's `records` (`read_timeline`)."""
    index = np.minimum(np.searchsorted(records[:, 0], calls[:, 0]), len(records) - 1)
    inside = (records[index, 0] >= calls[:, 0]) & (records[index, 1] <= calls[:, 1])
    calls, records = calls[inside], records[index[inside]]
    run = records[:, 3] - records[:, 2]
    parts = {"round trip": calls[:, 1] - calls[:, 0],
             "to handler": records[:, 0] - calls[:, 0],
             "handler": records[:, 1] - records[:, 0],
             "session run": run,
             "rest of handler": records[:, 1] - records[:, 0] - run,
             "to client": calls[:, 1] - records[:, 1]}
    return {"requests": len(calls), **{name: np.median(ns) / 1e6 for name, ns in parts.items()}}


def print_timeline(rows: dict[str, dict[str, float]]) -> None:
    """The split of each mode's sequential requests (`timeline_row`), and what it leaves."""
    names = ["round trip", "to handler", "handler", "session run", "rest of handler",
             "to client"]
    header = f"{'mode':<12}{'requests':>9}" + "".join(f"{name:>17}" for name in names)
    print("\nWhere a sequential batch-1 request's time goes (medians, ms; servers' stamps in "
          "bench/timeline_server.py, on the clock the clients stamp with):")
    print(header)
    print("-" * len(header))
    for mode, row in rows.items():
        print(f"{mode:<12}{row['requests']:>9}" + "".join(f"{row[name]:>17.3f}" for name in names))
    print("'to handler': from the client's call to the server's handler starting (sending, the "
          "kernel, the protocol library and its hand-off to a handler thread); 'to client': from "
          "the handler's end to the client having the answer; 'rest of handler': the server's "
          "own code (conversions, checks, metrics).")


def _cpu(rate: Rate) -> str:
    server = "-" if rate.server_cpu_ms is None else f"{rate.server_cpu_ms:.2f}"
    return f"{server:>7}/{rate.client_cpu_ms:.2f}"


def print_table(title: str, rows: dict, clients: list[int]) -> None:
    """One row per mode: latency, req/s at each client count, and ratios to in-process."""
    base_p50, _, base_rates = rows["in-process"]
    most = max(clients)
    print(f"\n{title}")
    header = (f"{'mode':<12}{'p50 ms':>8}{'p99 ms':>8}{'p50 / in-process':>18}"
              + "".join(f"{f'req/s {n}':>11}" for n in clients)
              + "".join(f"{f'/ in-proc {n}':>14}" for n in clients)
              + f"{f'CPU ms/req {most}':>16}")
    print(header)
    print("-" * len(header))
    for mode, (p50, p99, rates) in rows.items():
        print(f"{mode:<12}{p50:>8.2f}{p99:>8.2f}{p50 / base_p50:>18.2f}"
              + "".join(f"{rates[n].per_second:>11.0f}" for n in clients)
              + "".join(f"{rates[n].per_second / base_rates[n].per_second:>14.2f}"
                        for n in clients)
              + f"   {_cpu(rates[most])}")
    print(CLIENTS_NOTE)
    if any(mode.endswith(TUNED) for mode in rows):
        print(TUNED_NOTE)
    for mode in ("gRPC", "REST"):
        if mode + FLOOR in rows and mode in rows:
            floor_p50, p50 = rows[mode + FLOOR][0], rows[mode][0]
            print(f"{mode}: the protocol alone (floor) takes {floor_p50:.2f} ms at p50, so a "
                  f"server that cost nothing more would be at {(floor_p50 + base_p50) / base_p50:.2f}x "
                  f"in-process; the rest, {p50 - floor_p50 - base_p50:.2f} ms, is the server's own code "
                  "and its model call against the in-process one.")
    print(FLOOR_NOTE)


CLIENTS_NOTE = (
    "Clients: threads of this one process (sync gRPC stubs; http.client for REST), each with its "
    "own connection; the server is a separate process. 'CPU ms/req' is server/clients: CPU "
    "milliseconds per request of the server process and of this client process (in-process: "
    "the caller, model included), so the clients' share of the machine's cores is in the table.")

# A server on the same protocol libraries that answers each request with the real server's
# canned answer (bench/protocol_floor.py): what the protocols cost with no serving code at all.
FLOOR = "-floor"
FLOOR_NOTE = (f"'{FLOOR}': bench/protocol_floor.py, grpcio's and aiohttp's servers "
              "answering each request with a canned answer and computing nothing (gRPC parses "
              "the request and serializes the answer; REST reads the body in the event loop).")


def start_floor(directory: pathlib.Path, requests, modes: dict):
    """The protocol floor server in its own process, canned with the answers the real server
    (`modes`' gRPC and REST callers) gives to `requests`, its gRPC handler stamped (into
    `floor-timeline.npy` of `directory`, see `read_timeline`); returns it and its two ports."""
    from bench import protocol_floor

    grpc_call, rest_call = modes["gRPC"](), modes["REST"]()
    grpc_answers = {request.SerializeToString(deterministic=True):
                    grpc_call(i).SerializeToString() for i, request in enumerate(requests)}
    rest_answers = {body: rest_call(i) for i, body in enumerate(rest_bodies(requests))}
    answers = directory / "floor-answers.pickle"
    protocol_floor.write_answers(answers, grpc_answers, rest_answers)
    process = subprocess.Popen([sys.executable, "-m", "bench.timeline_server",
                                str(directory / "floor-timeline.npy"), "floor", str(answers)],
                               cwd=REPO, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    banner = process.stdout.readline()
    if "gRPC on" not in banner:
        process.kill()
        raise RuntimeError(f"The protocol floor server did not start: {banner!r}")
    ports = [int(word.rstrip(",")) for word in banner.split() if word.rstrip(",").isdigit()]
    return process, *ports


# A second server whose sessions run every op in the calling thread, one thread per op: TF
# Serving's --platform_config_file with this session_config (the fastest of TensorFlow's
# session settings for these models on a 2-core machine; the flags cannot set the executor).
TUNED = "*"
TUNED_SESSION_CONFIG = ('intra_op_parallelism_threads: 1 inter_op_parallelism_threads: -1 '
                        'experimental { executor_type: "SINGLE_THREADED_EXECUTOR" }')
TUNED_NOTE = (f"{TUNED}: the server with --platform_config_file, session_config "
              f"{{ {TUNED_SESSION_CONFIG} }}; the others use TensorFlow's defaults.")
TUNED_BATCHING_NOTE = (f"batched{TUNED} has batching_parameters {{ }} in that file (TF Serving's "
                       "defaults, as --enable_batching), --grpc_max_threads 64 and "
                       "--rest_api_num_threads 64.")


def platform_config_file(directory: pathlib.Path, batching: bool) -> pathlib.Path:
    """A `--platform_config_file` with the tuned session config (and TF Serving's default
    batching parameters if `batching`)."""
    path = directory / f"platform{'-batching' if batching else ''}.config"
    path.write_text(
        'platform_configs { key: "tensorflow" value { source_adapter_config { '
        "[type.googleapis.com/tensorflow.serving.SavedModelBundleSourceAdapterConfig] { "
        f"legacy_config {{ session_config {{ {TUNED_SESSION_CONFIG} }} "
        f"{'batching_parameters { }' if batching else ''} }} }} }} }} }}\n")
    return path


# The batched server: gRPC and REST threads for every client, so that calls wait for a batch, not a
# thread (REST's default, 4 per CPU, let at most 8 of 16 clients' calls wait for one here).
THREAD_FLAGS = ("--grpc_max_threads", "64", "--rest_api_num_threads", "64")
BATCHED_FLAGS = ("--enable_batching", *THREAD_FLAGS)
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
    """Throughput and p99 of each protocol with 8, 16 and 64 clients against each server
    (`servers`: name -> `(modes from callers, server pid)`, the unbatched one first), taking
    turns; the table, with each server's ratios to the first."""
    header = (f"{'mode':<6}{'clients':>8}  {'server':<12}{'req/s':>8}{'ratio':>7}"
              f"{'/ in-process 1':>16}{'p99 ms':>9}{'ratio':>7}{'CPU ms/req':>16}")
    lines = []
    for clients in BATCHED_CLIENTS:
        for mode in ("gRPC", "REST"):
            measured = {}
            for name, (modes, pid) in servers.items():
                seconds = []
                rate = throughput(timed(modes[mode], seconds), clients, per_client, pid)
                measured[name] = (rate, np.percentile(seconds, 99) * 1e3)
            first_rate, first_p99 = next(iter(measured.values()))
            for name, (rate, p99) in measured.items():
                lines.append(f"{mode:<6}{clients:>8}  {name:<12}{rate.per_second:>8.0f}"
                             f"{rate.per_second / first_rate.per_second:>7.2f}"
                             f"{rate.per_second / sequential_rate:>16.2f}{p99:>9.1f}"
                             f"{p99 / first_p99:>7.2f}   {_cpu(rate)}")
    return "\n".join([
        f"\nRequest batching ({' '.join(BATCHED_FLAGS)}) against the server without it; "
        f"{per_client} requests per client; 'ratio' divides by the unbatched server's; "
        f"'/ in-process 1' divides by the in-process call's sequential rate "
        f"({sequential_rate:.0f} req/s); load average {os.getloadavg()[0]:.1f}.",
        header, "-" * len(header), *lines, CLIENTS_NOTE, TUNED_NOTE + " " + TUNED_BATCHING_NOTE])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (sentiment only)")
    parser.add_argument("--tasks", default=None,
                        help=f"comma-separated tasks to train and serve (default: {','.join(TASKS)})")
    parser.add_argument("--model-dir", type=pathlib.Path, action="append", default=[],
                        help="an exported model (models/NAME) to measure instead of training; "
                             "repeatable")
    parser.add_argument("--requests", type=int, default=None,
                        help="sequential requests per mode (and requests per throughput run)")
    parser.add_argument("--clients", default=None,
                        help="comma-separated numbers of concurrent clients (default: 1,8,16,64; "
                             "quick: 1,8)")
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",") if args.tasks else list(QUICK_TASKS if args.quick else TASKS)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown task(s) {unknown}; accepted: {', '.join(TASKS)}")
    clients_text = args.clients or ("1,8" if args.quick else "1,8,16,64")
    try:
        clients = [int(n) for n in clients_text.split(",")]
    except ValueError:
        clients = []
    if not clients or min(clients) <= 0:
        parser.error(f"--clients takes positive whole numbers; received {args.clients!r}")
    count = args.requests or (20 if args.quick else 400)

    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        bases = [path.resolve() for path in args.model_dir]
        if not bases:
            for task in tasks:
                print(f"Training a short {task} run to serve ...", flush=True)
                bases.append(trained_model(task, pathlib.Path(tmp), args.quick))
        # One server for every model, as `seqzoo serve --models-dir` serves them.
        models_root = pathlib.Path(tmp) / "served"
        models_root.mkdir()
        versions = {}
        for base in bases:
            found = numeric_versions(base)
            if not found:
                raise ValueError(f"{base} holds no version directories NAME/VERSION/saved_model.pb.")
            versions[base.name] = (max(found), found[max(found)])
            (models_root / base.name).symlink_to(base)
        flags = {"unbatched": (), "batched": BATCHED_FLAGS}
        if not args.quick:
            flags["unbatched" + TUNED] = (
                "--platform_config_file", str(platform_config_file(pathlib.Path(tmp), False)))
            flags["batched" + TUNED] = (
                *THREAD_FLAGS,
                "--platform_config_file", str(platform_config_file(pathlib.Path(tmp), True)))
        servers = {}
        try:
            for server, server_flags in flags.items():
                if server == "unbatched" or not args.quick:
                    servers[server] = start_server(
                        models_root, *server_flags,
                        timeline=(pathlib.Path(tmp) / f"timeline-{server}.npy"
                                  if server.startswith("unbatched") else None))
            for name, (version, version_dir) in versions.items():
                requests = warmup_requests(version_dir)
                served = {server: callers(version_dir, name, requests, grpc_port, rest_port)
                          for server, (_, grpc_port, rest_port) in servers.items()}
                modes = dict(served["unbatched"])
                pids = {mode: servers["unbatched"][0].pid for mode in ("gRPC", "REST")}
                if "unbatched" + TUNED in served:
                    for mode in ("gRPC", "REST"):
                        modes[mode + TUNED] = served["unbatched" + TUNED][mode]
                        pids[mode + TUNED] = servers["unbatched" + TUNED][0].pid
                floor = start_floor(pathlib.Path(tmp), requests, modes)
                try:
                    floor_modes = callers(version_dir, name, requests, floor[1], floor[2])
                    for mode in ("gRPC", "REST"):
                        modes[mode + FLOOR] = floor_modes[mode]
                        pids[mode + FLOOR] = floor[0].pid
                    unbatched = (("", "unbatched"), (TUNED, "unbatched" + TUNED))
                    timelines = {mode + suffix: (servers[server][0],
                                                 pathlib.Path(tmp) / f"timeline-{server}.npy")
                                 for mode in ("gRPC", "REST") for suffix, server in unbatched
                                 if server in servers}
                    timelines["gRPC" + FLOOR] = (floor[0],
                                                 pathlib.Path(tmp) / "floor-timeline.npy")
                    rows = measure(modes, count, clients, pids, timelines)
                finally:
                    floor[0].send_signal(signal.SIGTERM)
                    floor[0].wait(timeout=60)
                print_table(f"Serving {name} version {version}: batch 1; p50/p99 of {count} "
                            f"sequential requests; req/s with {'/'.join(map(str, clients))} "
                            f"concurrent clients (load average {os.getloadavg()[0]:.1f})"
                            f"{' (quick)' if args.quick else ''}.", rows, clients)
                print_timeline({mode: row for mode, (_, _, row) in timelines.items()})
                if not args.quick:
                    # The table above's in-process rate with one client, where it has one: a
                    # second measurement, minutes later, need not agree with it.
                    in_process = rows["in-process"][2]
                    sequential_rate = (in_process[1].per_second if 1 in in_process else
                                       1e3 / np.mean(latency_ms(modes["in-process"], count)))
                    print(batching_table(
                        {server: (served[server], process.pid)
                         for server, (process, _, _) in servers.items()},
                        max(2, count // 4), sequential_rate))
        finally:
            for process, _, _ in servers.values():
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
