"""ElmanTask: learns the adding problem through the training loop, exports, and serves."""

import keras
import numpy as np
import pytest

from seqzoo.serving.client import Client
from seqzoo.serving.export import export_run
from seqzoo.serving.server import ModelServer
from seqzoo.training import loop, run_directory
from seqzoo.training.tasks.elman import ElmanConfig, ElmanTask
from seqzoo.zoo.models.recurrent.long_lag_tasks import ADDING_BASELINE_MSE, adding_problem, copy_task

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
    with pytest.raises(ValueError, match="builtin, builtin:adding, builtin:copy"):
        ElmanTask(data=data)
