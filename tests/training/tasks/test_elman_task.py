"""ElmanTask: learns the adding problem through the training loop, exports, and serves; learns
the delayed echo by truncated backpropagation through time through `seqzoo train`."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqzoo.serving import cli
from seqzoo.serving.client import Client
from seqzoo.serving.export import export_run
from seqzoo.serving.server import ModelServer
from seqzoo.training import config as run_config
from seqzoo.training import loop, run_directory, train_step
from seqzoo.training.data.long_lag_builtin import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_task,
    delayed_echo,
)
from seqzoo.training.strategy import make_strategy
from seqzoo.training.tasks.elman import ElmanConfig, ElmanTask
from seqzoo.training.truncated_bptt import TruncatedBPTT
from seqzoo.zoo.models.recurrent.elman_network import ElmanNetwork

OVERRIDES = [
    "train.steps=300", "train.batch_size=64", "train.learning_rate=0.005",
    "train.checkpoint_every=300", "train.log_every=100", "model.length=10",
    "model.num_examples=4000", "model.num_validation=500",
]
# 1.0 is the error of always answering the mean; an untrained network is at about 1.
REQUIRED_ERROR_RATIO = 0.3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    keras.utils.set_random_seed(0)
    run_dir = tmp_path_factory.mktemp("elman_run")
    config = run_directory.configure("elman", run_dir, overrides=OVERRIDES)
    return run_dir, loop.train(config, run_dir, progress=False)


def test_learns_the_adding_problem(trained):
    _, metrics = trained
    assert metrics["error_ratio"] < REQUIRED_ERROR_RATIO, metrics


def test_export_serves_the_same_sums_over_rest_and_grpc(trained, tmp_path):
    run_dir, _ = trained
    export_run(run_dir, tmp_path / "models", "elman")
    _, model = run_directory.restore(run_dir)
    x, y = adding_problem(200, 10, seed=123)
    expected = model(x).numpy()[:, 0]
    assert np.mean((expected - y[:, 0]) ** 2) < REQUIRED_ERROR_RATIO * ADDING_BASELINE_MSE
    with ModelServer(tmp_path / "models", rest_port=0, grpc_port=0, poll_seconds=0) as server:
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port)
        for via in ("rest", "grpc"):
            remote = client.predict("elman", {"sequences": x}, via=via)
            np.testing.assert_allclose(remote["sum"], expected, rtol=1e-5, atol=1e-6)
        client.close()


def test_copy_problem_signature_returns_symbols_and_probabilities():
    task = ElmanTask(ElmanConfig(units=4, context_units=4, length=3, num_examples=10,
                                 num_validation=5), data="builtin:copy")
    task.prepare()
    model = task.build_model()
    x, _ = copy_task(2, delay=3)
    outputs = task.export_module(model).serve(x)
    assert outputs["probabilities"].shape == (2, 3, 4)
    np.testing.assert_array_equal(outputs["symbols"].numpy(),
                                  outputs["probabilities"].numpy().argmax(-1))
    assert set(task.evaluate(model)) == {"symbol_accuracy", "error_ratio"}


@pytest.mark.parametrize("data", ["tfds:imdb_reviews", "builtin:parity", "file:x.csv"])
def test_other_data_sources_are_rejected(data):
    with pytest.raises(ValueError, match="builtin, builtin:adding, builtin:copy, builtin:echo"):
        ElmanTask(data=data)


def test_truncated_step_makes_the_updates_of_the_truncated_bptt_trainer():
    # Eagerly: the same code as the traced step, without minutes of tracing three chunks.
    tf.config.run_functions_eagerly(True)
    try:
        task = ElmanTask(ElmanConfig(units=4, context_units=3, length=8, delay=2, truncation=3,
                                     num_examples=10, num_validation=5), data="builtin:echo")
        task.prepare()
        strategy = make_strategy("one_device")
        train = run_config.resolve("elman", overrides=[
            "train.optimizer=sgd", "train.learning_rate=0.5", "train.clip_norm=0",
            "train.batch_size=4"]).train
        with strategy.scope():
            model = task.build_model()
            optimizer = train_step.make_optimizer(train)
            optimizer.build(model.trainable_variables)
        reference = ElmanNetwork(4, 1, context_units=3)
        reference(np.zeros((1, 1, 1), np.float32))
        reference.set_weights(model.get_weights())
        x, y, w = delayed_echo(4, 8, 2, seed=5)
        batches = iter(strategy.distribute_datasets_from_function(
            lambda context: tf.data.Dataset.from_tensors((x, y, w))))

        loss, _ = train_step.make_train_step(strategy, task, model, optimizer, train)(batches)
        losses, _ = TruncatedBPTT(reference, keras.losses.MeanSquaredError(),
                                  keras.optimizers.SGD(0.5), truncation=3).train_step(
            tf.constant(x), tf.constant(y), sample_weight=tf.constant(w))
    finally:
        tf.config.run_functions_eagerly(False)
    assert len(losses) == int(optimizer.iterations) == 3  # chunks of 3, 3 and 2 steps
    np.testing.assert_allclose(float(loss), np.mean(losses), rtol=1e-5)
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_seqzoo_train_learns_the_echo_by_truncated_bptt(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ("train",))
    assert cli.main([
        "train", "elman", "--data", "builtin:echo", "--run-dir", str(tmp_path), "--steps", "60",
        "--batch-size", "32", "--strategy", "one_device", "--no-progress",
        "--set", "model.truncation=3", "--set", "model.length=8", "--set", "model.delay=2",
        "--set", "model.units=8", "--set", "model.context_units=8",
        "--set", "model.num_examples=2000", "--set", "model.num_validation=200",
        "--set", "train.learning_rate=0.03"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # 1 is the error of guessing the sign; the echo reaches 2 steps back, chunks hold 3.
    assert metrics["error_ratio"] < 0.1, metrics
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    updates = tf.train.load_variable(checkpoint, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")
    assert updates == 60 * 3  # one update per chunk of every step's sequences
