"""Helpers shared by the benches: training a run without its messages, fair side-by-side rates,
and the serving throughput of models that write text (greedy against beam search, in process
against the model server)."""

from __future__ import annotations

import contextlib
import io
import pathlib
import time

DECODERS = (("greedy", "greedy"), ("beam 4", "serving_default"))


def train_quietly(config, run_dir) -> dict:
    """`loop.train` without progress lines or its end-of-run summary (which would land in the
    middle of a bench's tables); returns the final validation metrics."""
    from seqzoo.training import loop

    with contextlib.redirect_stdout(io.StringIO()):
        return loop.train(config, run_dir, progress=False)


def interleaved_rates(calls: dict, batches: list, rounds: int, count=len) -> dict:
    """Items per second of each `calls[key](batch)` over `rounds` passes through `batches`,
    after one warm-up pass each; `count(batch)` is the number of items (sentences, frames...) in
    a batch. The calls take turns pass by pass, so a change of machine load during the run
    affects them all alike and their ratios stay fair."""
    seconds = dict.fromkeys(calls, 0.0)
    for round_index in range(rounds + 1):
        for key, call in calls.items():
            started = time.perf_counter()
            for batch in batches:
                call(batch)
            if round_index:
                seconds[key] += time.perf_counter() - started
    items = rounds * sum(count(batch) for batch in batches)
    return {key: items / spent for key, spent in seconds.items()}


def decoder_rates(models_dir: pathlib.Path, name: str, input_name: str, batches: list,
                  rounds: int) -> dict:
    """Items per second of the `greedy` and `serving_default` (beam search) signatures of the
    exported model `models_dir/name/1`, called in process on the loaded SavedModel and through
    the model server over REST and gRPC; keys are `(path, decoder)`."""
    import tensorflow as tf

    from seqzoo.serving.client import Client
    from seqzoo.serving.server import ModelServer

    loaded = tf.saved_model.load(str(pathlib.Path(models_dir) / name / "1"))
    calls = {("in process", label):
             lambda b, f=loaded.signatures[signature]: f(**{input_name: tf.constant(b)})
             for label, signature in DECODERS}
    with ModelServer(models_dir, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        for via in ("rest", "grpc"):
            for label, signature in DECODERS:
                calls[(f"server {via}", label)] = (
                    lambda b, s=signature, v=via: client.predict(name, {input_name: b},
                                                                 signature_name=s, via=v))
        rates = interleaved_rates(calls, batches, rounds)
        client.close()
    return rates


def print_decoder_rates(rates: dict, unit: str) -> None:
    """The table of `decoder_rates`: each rate, its ratio to in-process greedy decoding, and
    beam search's ratio to greedy decoding on the same path."""
    base = rates[("in process", "greedy")]
    print(f"{'path':<12} {'decoder':<8} {unit + '/s':>12} {'vs in-process greedy':>21} "
          f"{'beam/greedy':>12}")
    for (path, label), rate in rates.items():
        print(f"{path:<12} {label:<8} {rate:>12.1f} {rate / base:>21.3f} "
              f"{rate / rates[(path, 'greedy')]:>12.3f}")
