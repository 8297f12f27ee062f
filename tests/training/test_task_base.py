"""What every Task shares: default config, the prepared-check, cached assets, training batches,
and config fields that check their values."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import toy_task
from seqzoo.training.checked_config import (
    CheckedConfig,
    above,
    at_least,
    fraction,
    one_of,
    positive_sizes,
    rate,
)
from seqzoo.training.tasks import get_task_class, task_names


def test_cached_weights_fit_once_per_run_directory(tmp_path):
    calls = []

    def fit():
        calls.append(1)
        return [np.arange(3.0), np.eye(2)]

    config = toy_task.ToyTask.Config()
    first = toy_task.ToyTask(config, run_dir=tmp_path).cached_weights("w.npz", fit)
    # A resumed run (a new task on the same run directory) reads them instead of refitting.
    again = toy_task.ToyTask(config, run_dir=tmp_path).cached_weights("w.npz", fit)
    assert len(calls) == 1 and (tmp_path / "assets" / "w.npz").is_file()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # Without a run directory nothing is saved and every call fits.
    toy_task.ToyTask(toy_task.ToyTask.Config()).cached_weights("w.npz", fit)
    assert len(calls) == 2


def test_cached_vocabulary_is_built_once_and_read_back_exactly(tmp_path):
    # Empty strings (padding), spaces and non-ASCII tokens survive the round trip.
    vocabulary = ["", "[UNK]", " ", "é", "naïve", "x y"]
    first = toy_task.ToyTask(run_dir=tmp_path).cached_vocabulary("v.txt", lambda: vocabulary)
    rebuilt = toy_task.ToyTask(run_dir=tmp_path).cached_vocabulary(
        "v.txt", lambda: pytest.fail("a saved vocabulary must not be rebuilt"))
    assert first == rebuilt == vocabulary


def test_default_config_and_prepared_check_come_from_the_base():
    task = toy_task.ToyTask()
    assert task.config == toy_task.ToyTask.Config()
    for call in (lambda: task.train_dataset(4), task.build_model,
                 lambda: task.evaluate(None), lambda: task.export_module(None)):
        with pytest.raises(ValueError, match=r"ToyTask.prepare\(\) must be called before"):
            call()
    task.prepare()
    assert task.prepared
    assert task.build_model().count_params() == 4


@pytest.mark.parametrize("name", task_names())
def test_every_registered_task_checks_preparation(name):
    task = get_task_class(name)()
    assert task.config == type(task.config)()
    with pytest.raises(ValueError, match=r"prepare\(\) must be called before build_model"):
        task.build_model()


@dataclasses.dataclass
class _Settings(CheckedConfig):
    units: int = at_least(1, 4)
    count: int = at_least(0, 0)
    learning_rate: float = above(0.0, 0.1)
    cell: str = one_of(("lstm", "gru"), "gru")
    dropout: float = rate(0.0)
    share: float = fraction(0.2)
    sizes: list[int] = positive_sizes([8, 8])


@pytest.mark.parametrize("values, message", [
    ({"units": 0}, "model.units must be at least 1; received 0."),
    ({"units": True}, "model.units must be a number; received True."),
    ({"count": -1}, "model.count must be >= 0; received -1."),
    ({"learning_rate": 0.0}, "model.learning_rate must be above 0.0; received 0.0."),
    ({"cell": "rnn"}, "Unknown model.cell 'rnn'; accepted: lstm, gru."),
    ({"dropout": 1.0}, r"model.dropout must be in \[0, 1\); received 1.0."),
    ({"share": 0.0}, r"model.share must be in \(0, 1\); received 0.0."),
    ({"sizes": []}, r"model.sizes must be a non-empty list of positive sizes; received \[\]."),
    ({"sizes": [4, 0]}, r"model.sizes must be a non-empty list"),
])
def test_checked_fields_reject_bad_values_naming_the_setting(values, message):
    with pytest.raises(ValueError, match=message):
        _Settings(**values)


def test_checked_fields_accept_their_bounds_and_copy_list_defaults():
    settings = _Settings(units=1, count=0, learning_rate=1e-9, dropout=0.0, share=0.999)
    assert settings.units == 1
    settings.sizes.append(3)
    assert _Settings().sizes == [8, 8]


def test_shuffled_batches_shard_per_replica_and_repeat():
    task = toy_task.ToyTask(toy_task.ToyTask.Config(), seed=3)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    batches = task.shuffled_batches(tf.data.Dataset.range(10), 10, 4, context)
    seen = [b.numpy().tolist() for b in batches.take(6)]
    assert all(len(b) == 2 for b in seen)            # global 4 over 2 replicas
    assert set(sum(seen, [])) == {1, 3, 5, 7, 9}      # this pipeline's shard only, repeated
    same = [b.numpy().tolist() for b in task.shuffled_batches(
        tf.data.Dataset.range(10), 10, 4, context).take(6)]
    assert seen == same                               # seeded: a resumed run sees the same order
