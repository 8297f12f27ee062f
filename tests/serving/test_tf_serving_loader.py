"""Every registered task's export answers under TF Serving's own loader, on every signature, with
the in-process model's outputs.

Each task trains a tiny run (its `Task.tiny_run` settings) and is exported; a separate process
that cannot import seqzoo loads the version the way TF Serving does
(tests/serving/tf_serving_loader.py, one process for all tasks) and replays the warmup records,
which must reach every signature; its outputs are compared with the export module's, called in
process on the same requests. A task added to the registry is covered with no new test code.
"""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from seqzoo.serving.export import export_model
from seqzoo.serving.servable import INIT_OP_SIGNATURE_KEY, WARMUP_FILE, read_signature_defs
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


@pytest.mark.parametrize("task_name", task_names())
def test_export_answers_under_tf_serving_loader_on_every_signature(task_name, tmp_path,
                                                                    tf_serving_loader):
    run_dir = tmp_path / "run"
    overrides = [*get_task_class(task_name).tiny_run, "train.strategy=one_device"]
    loop.train(run_directory.configure(task_name, run_dir, overrides=overrides), run_dir,
               progress=False)
    task, model = run_directory.restore(run_dir)
    version_dir = export_model(task, model, tmp_path / "models", task_name)

    out = tmp_path / "served.npz"
    assert tf_serving_loader(version_dir, out) == "ok"
    served = np.load(out, allow_pickle=True)

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
