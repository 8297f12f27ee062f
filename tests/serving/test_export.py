"""Export round trips: versions, atomic writes, warmup records, and served outputs equal to the
in-process model's."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf
from serving_toy_task import CLASSES, WARMUP, ServingToyTask
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2
from google.protobuf import text_format

from seqzoo.serving import export
from seqzoo.serving.cli import main as seqzoo
from seqzoo.serving.client import Client
from seqzoo.serving.server import ModelServer

X = np.array([[0.3, -1.2, 2.0], [1.0, 1.0, -1.0]], np.float32)


@pytest.fixture
def task_and_model():
    task = ServingToyTask(ServingToyTask.Config(), seed=0)
    task.prepare()
    return task, task.build_model()


def in_process(model, x):
    logits = np.asarray(model(x))
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities = exp / exp.sum(-1, keepdims=True)
    return logits, probabilities, [CLASSES[i] for i in probabilities.argmax(-1)]


def test_export_versions_and_served_outputs_equal_the_model(tmp_path, task_and_model):
    task, model = task_and_model
    first = export.export_model(task, model, tmp_path, "toy")
    second = export.export_model(task, model, tmp_path, "toy")
    assert (first.name, second.name) == ("1", "2")
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["1", "2"]  # no temp left
    logits, probabilities, labels = in_process(model, X)

    loaded = tf.saved_model.load(str(second))
    out = loaded.signatures["serving_default"](x=tf.constant(X))
    np.testing.assert_allclose(out["probabilities"].numpy(), probabilities, rtol=1e-5, atol=1e-6)
    assert [s.decode() for s in out["label"].numpy()] == labels

    with ModelServer(tmp_path, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        for via in ("rest", "grpc"):
            served = client.predict("toy", {"x": X}, via=via)
            np.testing.assert_allclose(served["probabilities"], probabilities, rtol=1e-5, atol=1e-6)
            assert served["label"].tolist() == labels
            served = client.predict("toy", {"x": X}, signature_name="logits", version=2, via=via)
            np.testing.assert_allclose(served["logits"], logits, rtol=1e-5, atol=1e-6)


def test_explicit_versions_never_overwrite(tmp_path, task_and_model):
    task, model = task_and_model
    assert export.export_model(task, model, tmp_path, "toy", version=7).name == "7"
    with pytest.raises(ValueError, match="already exists"):
        export.export_model(task, model, tmp_path, "toy", version=7)
    assert export.export_model(task, model, tmp_path, "toy").name == "8"
    for bad in (0, -1, "3"):
        with pytest.raises(ValueError, match="positive integer"):
            export.export_model(task, model, tmp_path, "toy", version=bad)
    with pytest.raises(ValueError, match="plain directory name"):
        export.export_model(task, model, tmp_path, "../toy")


def test_failed_export_leaves_no_version_and_no_temp_dir(tmp_path, task_and_model, monkeypatch):
    task, model = task_and_model

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_model(task, model, tmp_path, "toy")
    assert list((tmp_path / "toy").iterdir()) == []


def test_warmup_records_are_prediction_logs_of_the_warmup_inputs(tmp_path, task_and_model):
    task, model = task_and_model
    path = export.export_model(task, model, tmp_path, "toy")
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
               for r in tf.data.TFRecordDataset(str(path / "assets.extra/tf_serving_warmup_requests"))]
    # Each example goes to every signature whose inputs it covers, serving_default first.
    assert len(records) == 2 * len(WARMUP)
    for index, record in enumerate(records):
        request = record.predict_log.request
        assert (request.model_spec.name, request.model_spec.signature_name) == (
            "toy", ("serving_default", "logits")[index % 2])
        np.testing.assert_array_equal(tf.make_ndarray(request.inputs["x"]), [WARMUP[index // 2]])


def test_model_config_lists_every_model_at_the_container_path(tmp_path, task_and_model):
    task, model = task_and_model
    export.export_model(task, model, tmp_path, "toy")
    export.export_model(task, model, tmp_path, "other")
    config = text_format.Parse((tmp_path / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config] == [
        ("other", "/models/other", "tensorflow"), ("toy", "/models/toy", "tensorflow")]


def test_seqzoo_export_of_a_trained_run(tmp_path, monkeypatch, capsys):
    from seqzoo.training import loop, run_directory, tasks

    monkeypatch.setitem(tasks.TASKS, "serving_toy", "serving_toy_task:ServingToyTask")
    run_dir = tmp_path / "run"
    config = run_directory.configure("serving_toy", run_dir,
                            overrides=["train.steps=200", "train.batch_size=32",
                                       "train.learning_rate=0.05", "train.strategy=one_device"])
    metrics = loop.train(config, run_dir, progress=False)
    assert metrics["accuracy"] > 0.9
    models = tmp_path / "models"
    capsys.readouterr()
    assert seqzoo(["export", str(run_dir), "--models-dir", str(models)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"Exported {run_dir} to {models / 'serving_toy' / '1'}",
        f"Serve it with:   seqzoo serve --models-dir {models}",
    ]
    assert seqzoo(["export", str(run_dir), "--models-dir", str(models), "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    _, model = run_directory.restore(run_dir)
    _, probabilities, _ = in_process(model, X)
    loaded = tf.saved_model.load(str(models / "serving_toy" / "1"))
    np.testing.assert_allclose(loaded.signatures["serving_default"](x=tf.constant(X))["probabilities"],
                               probabilities, rtol=1e-5, atol=1e-6)
    assert pathlib.Path(models / "models.config").is_file()
