"""`seqzoo predict` from the shell: the wall time from starting the command to its printed answer,
side by side with curl sending the same request, and with what importing TensorFlow alone costs
(the floor of every `seqzoo predict` while the client loaded TensorFlow).

A tiny SavedModel is served in this process by the built-in server; each command runs as its own
process, as a user runs it, `--runs` times (the median is reported). The other protocol's port is
closed for each `seqzoo predict`, so each protocol answers alone.

    python -m bench predict [--quick] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

from seqzoo.serving.server import ModelServer


class _Lengths(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        return {"length": tf.strings.length(text)}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument("--quick", action="store_true", help="one run of each command")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    if runs < 1:
        parser.error(f"--runs must be at least 1; received {runs}")

    seqzoo = os.path.join(os.path.dirname(sys.executable), "seqzoo")
    with tempfile.TemporaryDirectory() as root:
        module = _Lengths()
        tf.saved_model.save(module, os.path.join(root, "lengths", "1"),
                            signatures={"serving_default": module.serve})
        with ModelServer(root, rest_port=0, grpc_port=0, poll_seconds=0) as server:
            rest, grpc_port, closed = str(server.rest_port), str(server.grpc_port), str(_closed_port())
            url = f"http://127.0.0.1:{rest}/v1/models/lengths:predict"
            body = json.dumps({"instances": ["not good at all"]})
            reference = ("curl (REST)", ["curl", "-sf", "-X", "POST", url, "-d", body])
            if shutil.which("curl") is None:
                reference = ("python http.client (REST)", [sys.executable, "-c", (
                    "import http.client, sys; c = http.client.HTTPConnection('127.0.0.1', "
                    f"{rest}); c.request('POST', '/v1/models/lengths:predict', sys.argv[1]); "
                    "c.getresponse().read()"), body])
            commands = [
                reference,
                ("seqzoo predict (REST)", [seqzoo, "predict", "lengths", "not good at all",
                                           "--rest_api_port", rest, "--port", closed]),
                ("seqzoo predict --grpc", [seqzoo, "predict", "lengths", "not good at all",
                                           "--grpc", "--port", grpc_port,
                                           "--rest_api_port", closed]),
                ("python -c 'import tensorflow'", [sys.executable, "-c", "import tensorflow"]),
            ]
            seconds = {name: _median_seconds(command, runs) for name, command in commands}

    base = seconds[reference[0]]
    print(f"median wall time of {runs} run(s) per command; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'command':<32}{'seconds':>10}{'x ' + reference[0].split()[0]:>14}")
    for name, value in seconds.items():
        print(f"{name:<32}{value:>10.3f}{value / base:>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
