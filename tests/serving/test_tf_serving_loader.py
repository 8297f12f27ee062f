"""Every registered task's export answers under TF Serving's own loader, on every signature, with
the in-process model's outputs.

Each task trains a tiny run (its `Task.tiny_run` settings) and is exported; a separate process
that cannot import seqzoo loads the version the way TF Serving does
(tests/serving/tf_serving_loader.py, one process for all tasks) and replays the warmup records,
which must reach every signature; its outputs are compared with the export module's, called in
process on the same requests. A task added to the registry is covered with no new test code.

The same exports (trained once for the module), served by `seqzoo serve --enable_batching` to
concurrent REST and gRPC clients, give every warmup request the answer TF Serving's loader gave
it alone, and padded variable-length inputs answer as alone where the model masks them.
"""

import collections
import http.client
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from decoding_checks import assert_same_outputs
from prometheus_client.parser import text_string_to_metric_families
from server_process import ServerProcess
from tensorflow_serving.apis import prediction_log_pb2

from seqzoo.serving.client import Client
from seqzoo.serving.export import export_model
from seqzoo.serving.servable import (
    INIT_OP_SIGNATURE_KEY,
    WARMUP_FILE,
    Servable,
    read_signature_defs,
)
from seqzoo.training import loop, run_directory
from seqzoo.training.tasks import get_task_class, task_names

LOADER = pathlib.Path(__file__).with_name("tf_serving_loader.py")


def serialized(request_input):
    kind = request_input.WhichOneof("kind")
    examples = getattr(request_input, kind).examples
    assert kind == "example_list", kind
    return tf.constant([example.SerializeToString() for example in examples])


def in_process_outputs(module, version_dir):
    """The export module's outputs on each warmup request, and the signature it went to."""
    results = []
    for record in tf.data.TFRecordDataset(str(version_dir / WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = getattr(log, log.WhichOneof("log_type")).request
        name = request.model_spec.signature_name
        if log.WhichOneof("log_type") == "predict_log":
            inputs = {key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()}
        else:
            inputs = {"inputs": serialized(request.input)}
        outputs = module.signatures[name](**inputs)
        results.append((name, {key: np.asarray(value) for key, value in outputs.items()}))
    return results


@pytest.fixture(scope="module")
def tf_serving_loader():
    """`load(version_dir, out)`: replays a version in the separate loader process."""
    process = subprocess.Popen([sys.executable, "-I", str(LOADER)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)

    def load(version_dir, out):
        process.stdin.write(f"{version_dir}\t{out}\n")
        process.stdin.flush()
        return process.stdout.readline().strip()

    yield load
    process.stdin.close()
    process.wait(timeout=60)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """`export(task_name) -> (task, model, version_dir)`: the task's tiny run, trained and
    exported once for the module as `MODELS/TASK/1`, `MODELS` being `export.models_dir`."""
    root = tmp_path_factory.mktemp("every_task")
    done = {}

    def export(task_name):
        if task_name not in done:
            run_dir = root / "runs" / task_name
            overrides = [*get_task_class(task_name).tiny_run, "train.strategy=one_device"]
            loop.train(run_directory.configure(task_name, run_dir, overrides=overrides),
                       run_dir, progress=False)
            task, model = run_directory.restore(run_dir)
            done[task_name] = (task, model, export_model(task, model, root / "models", task_name))
        return done[task_name]

    export.models_dir = root / "models"
    return export


@pytest.fixture(scope="module")
def tf_serving_answers(exports, tf_serving_loader, tmp_path_factory):
    """`answers(task_name)`: the outputs of the task's export on each of its warmup records
    under TF Serving's loader (`RECORD/OUTPUT` arrays, `RECORD/signature` names), computed
    once."""
    root = tmp_path_factory.mktemp("tf_serving_answers")
    done = {}

    def answers(task_name):
        if task_name not in done:
            out = root / f"{task_name}.npz"
            assert tf_serving_loader(exports(task_name)[2], out) == "ok"
            done[task_name] = np.load(out, allow_pickle=True)
        return done[task_name]

    return answers


@pytest.mark.parametrize("task_name", task_names())
def test_export_answers_under_tf_serving_loader_on_every_signature(task_name, exports,
                                                                    tf_serving_answers):
    task, model, version_dir = exports(task_name)
    served = tf_serving_answers(task_name)

    expected = in_process_outputs(task.export_module(model), version_dir)
    signatures = set(read_signature_defs(version_dir)) - {INIT_OP_SIGNATURE_KEY}
    warmed = {name for name, _ in expected}
    assert warmed == signatures, (
        f"Signatures {sorted(signatures - warmed)} of {task_name!r} get no warmup request: give "
        "every input they take in the task's warmup_inputs().")
    for index, (name, outputs) in enumerate(expected):
        assert str(served[f"{index}/signature"]) == name
        for key, value in outputs.items():
            got = served[f"{index}/{key}"]
            assert got.shape == value.shape, (name, key)
            if value.dtype.kind in "OSU":
                assert got.tolist() == value.tolist(), (name, key)
            else:
                np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{task_name} {name} {key}")


# --- the same exports served with request batching ----------------------------------------------

BATCHING = """
max_batch_size { value: 8 }
batch_timeout_micros { value: 20000 }
num_batch_threads { value: 1 }
allowed_batch_sizes: [4, 8]
pad_variable_length_inputs: true
"""
CLIENTS = 4
# The signatures that mask what padding adds (by their `lengths` input), so padded variable-length
# inputs answer as alone. Not so: the forecasters (ar, delay_tap) and elman read every step, lds'
# `masked` pads its `mask` with the first element (True: observed), hmm's and lds'
# `serving_default` have no lengths, captioning's `pixels` would see padded pictures.
MASKED = {"frame_labeling": ("serving_default", "encoded"), "hmm": ("with_lengths",),
          "lds": ("with_lengths",)}
# What the masked signatures answer after a sequence's end.
AFTER_THE_END = ("", 0, -1)


def assert_answers_as_alone(answer, alone, context, after_the_end=None):
    """`answer`, from a merged call, agrees with `alone`, the request's answer by itself, on
    alone's extent. An output along a sequence may be longer: as long as the batch's longest
    (decoded tokens, attention maps, padded inputs), as for a request of several examples; its
    strings past alone's end are "", and with `after_the_end` all its values there are in it."""
    answer = dict(answer)
    for name, value in alone.items():
        got = answer[name]
        if got.shape == value.shape:
            continue
        assert got.ndim == value.ndim and got.shape[0] == value.shape[0] and all(
            longer >= shorter for longer, shorter in zip(got.shape, value.shape)), (
            context, name, got.shape, value.shape)
        extent = tuple(slice(0, size) for size in value.shape)
        past = np.ones(got.shape, bool)
        past[extent] = False
        beyond = set(got[past].tolist())
        assert got.dtype != object or beyond <= {""}, (context, name, beyond)
        assert after_the_end is None or beyond <= set(after_the_end), (context, name, beyond)
        answer[name] = got[extent]
    assert_same_outputs(answer, alone, context)


@pytest.fixture(scope="module")
def batching_server(exports, tmp_path_factory):
    """`seqzoo serve --enable_batching` on every task's export: merged calls of up to 8 examples,
    run at 4 or 8 (padded with copies), inputs of other lengths padded, the first request of a
    batch waiting up to 20 ms for more; Prometheus metrics at /metrics."""
    for task_name in task_names():
        exports(task_name)
    root = tmp_path_factory.mktemp("batching")
    (root / "batching.config").write_text(BATCHING)
    (root / "monitoring.config").write_text('prometheus_config { enable: true path: "/metrics" }')
    with ServerProcess(exports.models_dir, root / "serve.log", "--enable_batching",
                       "--batching_parameters_file", str(root / "batching.config"),
                       "--monitoring_config_file", str(root / "monitoring.config")) as server:
        server.client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port, timeout=120)
        yield server
        server.client.close()
        assert server.stop()[0] == 0, server.log()


def warmup_predictions(version_dir):
    """The version's warmup predict requests: (record number, signature, inputs by name)."""
    requests = []
    for index, record in enumerate(tf.data.TFRecordDataset(str(version_dir / WARMUP_FILE))):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") == "predict_log":
            request = log.predict_log.request
            requests.append((index, request.model_spec.signature_name or "serving_default",
                             {key: tf.make_ndarray(proto)
                              for key, proto in request.inputs.items()}))
    return requests


def concurrently(server, task_name, signature, requests):
    """Each request from its own client thread, released at once, over REST and gRPC in turn;
    the outputs in order."""
    server.client.signature(task_name, signature)  # the metadata, before the clock starts
    barrier = threading.Barrier(len(requests))
    results = [None] * len(requests)

    def send(index):
        barrier.wait()
        try:
            results[index] = server.client.predict(task_name, requests[index],
                                                   signature_name=signature,
                                                   via=("rest", "grpc")[index % 2])
        except Exception as err:  # reported below, with the request it failed on
            results[index] = err

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for inputs, result in zip(requests, results):
        assert not isinstance(result, Exception), (task_name, signature, inputs, result)
    return results


def batch_counts(server):
    """How many requests entered the batch queues, and how many merged calls ran."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    connection.request("GET", "/metrics")
    families = {family.name: family for family in
                text_string_to_metric_families(connection.getresponse().read().decode())}

    def count(name):
        family = families.get(f":tensorflow:serving:batching_session:{name}")
        return sum(s.value for s in family.samples if s.name.endswith("_count")) if family else 0

    return count("input_batch_size"), count("processed_batch_size")


def test_every_signature_answers_batched_as_alone_under_concurrent_clients(
        batching_server, exports, tf_serving_answers):
    """Each warmup request of every task, sent by concurrent clients, gets the answer TF
    Serving's loader gave it alone."""
    sent = 0
    queued_before, batches_before = batch_counts(batching_server)
    for task_name in task_names():
        answers = tf_serving_answers(task_name)
        # Requests of one shape at a time: padding would change what the unmasked models see.
        groups = collections.defaultdict(list)
        for index, signature, inputs in warmup_predictions(exports(task_name)[2]):
            expected = {name.split("/", 1)[1]: answers[name] for name in answers.files
                        if name.startswith(f"{index}/") and name != f"{index}/signature"}
            shapes = tuple((key, value.shape) for key, value in sorted(inputs.items()))
            groups[signature, shapes].append((inputs, expected))
        for (signature, _), group in groups.items():
            group = [group[i % len(group)] for i in range(max(CLIENTS, len(group)))]
            outputs = concurrently(batching_server, task_name, signature,
                                   [inputs for inputs, _ in group])
            for (_, expected), answer in zip(group, outputs):
                assert_answers_as_alone(answer, expected, f"{task_name} {signature}")
            sent += len(group)
    queued, batches = batch_counts(batching_server)
    assert queued - queued_before == sent  # every predict signature is batched
    assert batches - batches_before < sent / 2  # and requests did share model calls


def shortened(inputs, steps):
    """The request cut to its first `steps` time steps (axis 1), lengths cut to match."""
    return {name: np.minimum(value, steps) if name == "lengths" else value[:, :steps]
            for name, value in inputs.items()}


def test_padded_variable_length_inputs_answer_as_alone_where_the_model_masks(batching_server,
                                                                             exports):
    sent = 0
    _, batches_before = batch_counts(batching_server)
    for task_name, signatures in MASKED.items():
        alone = Servable(task_name, 1, exports(task_name)[2])  # no batch scheduler
        requests = warmup_predictions(alone.path)
        for signature in signatures:
            longest = max((inputs for _, name, inputs in requests if name == signature),
                          key=lambda inputs: inputs["lengths"].max())
            steps = int(longest["lengths"].max())
            group = [shortened(longest, n) for n in sorted({steps, steps - 1, 1, 2, 3})
                     if 1 <= n <= steps]
            outputs = concurrently(batching_server, task_name, signature, group)
            for inputs, answer in zip(group, outputs):
                assert_answers_as_alone(answer, alone.predict(signature, inputs),
                                        f"{task_name} {signature} {inputs}", AFTER_THE_END)
            sent += len(group)
        alone.close()
    assert batch_counts(batching_server)[1] - batches_before < sent
