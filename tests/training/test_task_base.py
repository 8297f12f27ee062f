"""The helpers every Task shares: cached fitted weights and the training batches."""

import numpy as np
import tensorflow as tf

import toy_task


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
