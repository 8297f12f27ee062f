"""Exported classic models called through the model server, over REST and gRPC."""

import json

import grpc
import numpy as np
import pytest

from seqzoo.serving.cli import main as seqzoo
from seqzoo.serving.cli.predict import LDS_EXAMPLE
from seqzoo.serving.client import Client
from seqzoo.serving.export import export_run
from seqzoo.serving.server import ModelServer
from seqzoo.serving.serving_error import ServingError
from seqzoo.training import loop, run_directory


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("classic")
    runs = {
        "casino": ("hmm", ["model.num_sequences=40", "model.baum_welch_iterations=20"]),
        "oscillator": ("lds", ["model.num_sequences=20", "model.em_iterations=5"]),
    }
    restored = {}
    for name, (task, overrides) in runs.items():
        run_dir = root / "runs" / name
        config = run_directory.configure(task, run_dir, overrides=[
            "train.steps=2", "train.batch_size=8", "train.strategy=one_device", *overrides])
        loop.train(config, run_dir, progress=False)
        export_run(run_dir, root / "models", name)
        restored[name] = run_directory.restore(run_dir)
    server = ModelServer(root / "models", rest_port=0, grpc_port=0, poll_seconds=0)
    server.start()
    yield Client(rest_port=server.rest_port, grpc_port=server.grpc_port), restored
    server.stop()


@pytest.mark.parametrize("via", ["rest", "grpc"])
def test_hmm_viterbi_path_likelihood_and_posteriors(served, via):
    client, restored = served
    task, model = restored["casino"]
    sequences = task.validation_observations[:2, :30]
    lengths = [30, 17]
    outputs = client.predict("casino", {"observations": sequences.tolist(), "lengths": lengths},
                             signature_name="with_lengths", via=via)
    for row, length in enumerate(lengths):
        symbols = sequences[row, :length]
        log_prob, path = model.decode(symbols)
        np.testing.assert_array_equal(outputs["state_path"][row, :length], path)
        assert np.all(outputs["state_path"][row, length:] == -1)
        np.testing.assert_allclose(outputs["path_log_prob"][row], log_prob, rtol=1e-5)
        np.testing.assert_allclose(outputs["log_likelihood"][row], model.score(symbols),
                                   rtol=1e-5)
        np.testing.assert_allclose(outputs["posteriors"][row, :length],
                                   model.predict_proba(symbols), atol=1e-5)
    default = client.predict("casino", {"observations": sequences.tolist()}, via=via)
    np.testing.assert_array_equal(default["state_path"][0], outputs["state_path"][0])


def test_lds_masked_signature_over_rest(served):
    client, restored = served
    task, model = restored["oscillator"]
    observations = task.validation_observations[:2]
    mask = np.all(np.isfinite(observations), axis=-1)
    assert not mask.all()  # the builtin data has missing steps
    outputs = client.predict(
        "oscillator",
        {"observations": np.nan_to_num(observations).tolist(), "mask": mask.tolist()},
        signature_name="masked",
    )
    means, _ = model.smooth(observations)
    np.testing.assert_allclose(outputs["smoothed_state_means"], means, atol=1e-4)
    np.testing.assert_allclose(outputs["log_likelihood"], model.loglikelihood(observations),
                               rtol=1e-5)


@pytest.mark.parametrize("via", ["rest", "grpc"])
def test_lds_with_lengths_answers_each_sequence_by_its_valid_steps(served, via):
    client, restored = served
    task, model = restored["oscillator"]
    observations = task.validation_observations[:2, :30].copy()
    lengths = [30, 11]
    observations[1, 11:] = 100.0  # padding that would pull the states if it were read
    outputs = client.predict(
        "oscillator", {"observations": observations.tolist(), "lengths": lengths},
        signature_name="with_lengths", via=via)
    for row, length in enumerate(lengths):
        valid = observations[row, :length]  # NaN rows stay missing steps
        means, covariances = model.smooth(valid)
        np.testing.assert_allclose(outputs["smoothed_state_means"][row, :length], means,
                                   atol=1e-4)
        np.testing.assert_allclose(outputs["smoothed_state_covariances"][row, :length],
                                   covariances, atol=1e-4)
        np.testing.assert_allclose(outputs["log_likelihood"][row], model.loglikelihood(valid),
                                   rtol=1e-5)
        for name in ("filtered_state_means", "smoothed_state_covariances"):
            assert not outputs[name][row, length:].any()


@pytest.mark.parametrize("via", ["rest", "grpc"])
def test_out_of_range_symbol_is_an_invalid_argument(served, via):
    client, _ = served
    with pytest.raises(ServingError) as info:
        client.predict("casino", {"observations": [[0, 1, 9]]}, via=via)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_the_lds_example_of_predict_help_fits_the_lds_export(served, capsys):
    client, restored = served
    _, model = restored["oscillator"]
    value = LDS_EXAMPLE.partition("=")[2].strip("'")
    assert seqzoo(["predict", "oscillator", "--input", f"observations={value}", "--output",
                   "json", "--port", str(client.grpc_port), "--rest_api_port",
                   str(client.rest_port)]) == 0
    outputs = json.loads(capsys.readouterr().out)
    means, _ = model.smooth(np.array(json.loads(value)))
    np.testing.assert_allclose(outputs["smoothed_state_means"], means, atol=1e-4)

