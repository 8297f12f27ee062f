"""The batch scheduler on its own, with NumPy functions for models: what merges with what, how
batches are padded and split, and what runs alone (the server tests drive it end to end)."""

import contextlib
import threading
import time

import grpc
import numpy as np
import pytest

from seqzoo.serving.batch_scheduler import BatchScheduler
from seqzoo.serving.batching_parameters import BatchingParameters
from seqzoo.serving.serving_error import ServingError


def model(calls):
    """Per row, x's sum and x doubled; a negative x is a bad request. Records each call's shape."""

    def run(feeds):
        x = feeds["x"]
        calls.append(x.shape)
        if (x < 0).any():
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "x must be >= 0")
        return [x.reshape(len(x), -1).sum(axis=1), x * 2]
    return run


def wait_for(condition):
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


@contextlib.contextmanager
def worker_held(batches):
    """Keeps the one batch thread busy until the block ends, so that calls queue up and what
    merges is decided by the scheduler alone."""
    started, release = threading.Event(), threading.Event()

    def busy(feeds):
        started.set()
        release.wait(30)
        return [feeds["x"]]

    full = np.zeros((batches.parameters.max_batch_size, 1), np.float32)
    blocker = threading.Thread(target=batches.run, args=("busy", {"x": full}, busy))
    blocker.start()
    started.wait(30)
    try:
        yield
    finally:
        release.set()
        blocker.join(30)


def run_queued(batches, inputs, run):
    """`batches.run` on each input in its own thread, all queued before any runs; the results
    (or errors) in order."""
    results = [None] * len(inputs)

    def call(index):
        try:
            results[index] = batches.run("k", {"x": inputs[index]}, run)
        except ServingError as err:
            results[index] = err

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    with worker_held(batches):
        for thread in threads:
            thread.start()
        wait_for(lambda: batches.num_enqueued_tasks() == len(inputs))
    for thread in threads:
        thread.join(30)
    batches.stop()
    return results


def scheduler(**parameters):
    return BatchScheduler(BatchingParameters(num_batch_threads=1, **parameters))


def test_merged_batches_are_padded_to_an_allowed_size_and_split_back():
    calls = []
    inputs = [np.full((1, 2), i, np.float32) for i in range(5)] + [np.ones((2, 2), np.float32)]
    results = run_queued(scheduler(max_batch_size=4, allowed_batch_sizes=(2, 4)), inputs,
                         model(calls))
    for x, (sums, doubled) in zip(inputs, results):
        np.testing.assert_array_equal(sums, x.sum(axis=1))
        np.testing.assert_array_equal(doubled, x * 2)
    # In arrival order: 4 single rows; 1 row + the 2-row request (3, padded to 4).
    assert calls == [(4, 2), (4, 2)]


def test_without_padding_inputs_of_other_shapes_are_not_merged():
    calls = []
    inputs = [np.ones((1, length), np.float32) for length in (3, 3, 5, 5, 3)]
    results = run_queued(scheduler(max_batch_size=8), inputs, model(calls))
    for x, (sums, _) in zip(inputs, results):
        np.testing.assert_array_equal(sums, x.sum(axis=1))
    assert sorted(calls) == [(2, 5), (3, 3)]


def test_padding_uses_each_inputs_first_element():
    calls = []
    inputs = [np.array([[7.0, 1.0, 1.0, 1.0]], np.float32), np.array([[2.0, 1.0]], np.float32)]
    results = run_queued(scheduler(max_batch_size=8, pad_variable_length_inputs=True), inputs,
                         model(calls))
    assert calls == [(2, 4)]
    # The short input is padded with its own first element: [2, 1, 2, 2].
    assert [float(sums[0]) for sums, _ in results] == [10.0, 7.0]
    np.testing.assert_array_equal(results[1][1], [[4.0, 2.0, 4.0, 4.0]])


def test_a_bad_request_fails_alone_and_the_others_are_answered():
    calls = []
    inputs = [np.ones((1, 2), np.float32), -np.ones((1, 2), np.float32),
              np.full((1, 2), 3, np.float32)]
    results = run_queued(scheduler(max_batch_size=8), inputs, model(calls))
    assert isinstance(results[1], ServingError)
    assert results[1].code == grpc.StatusCode.INVALID_ARGUMENT
    np.testing.assert_array_equal(results[0][0], [2.0])
    np.testing.assert_array_equal(results[2][0], [6.0])
    assert calls == [(3, 2), (1, 2), (1, 2), (1, 2)]  # the merged try, then each alone


def test_outputs_without_the_batch_dimension_make_the_calls_run_alone():
    calls = []

    def totals(feeds):  # one value per call, not per example: it cannot be split
        calls.append(len(feeds["x"]))
        return [np.array([feeds["x"].sum()])]

    batches = scheduler(max_batch_size=8)
    inputs = [np.full((1,), i, np.float32) for i in (1, 2, 3)]
    results = run_queued(batches, inputs, totals)
    assert [float(outputs[0][0]) for outputs in results] == [1.0, 2.0, 3.0]
    assert calls == [3, 1, 1, 1]  # one merged try, then each alone
    # From then on the key's calls run at once, without queueing (the scheduler is stopped).
    assert batches.run("k", {"x": np.ones(2, np.float32)}, totals)[0].tolist() == [2.0]


def test_a_request_larger_than_max_batch_size_is_refused():
    batches = scheduler(max_batch_size=2)
    with pytest.raises(ServingError, match="Task size 3 is larger than maximum input batch "
                                           "size 2") as caught:
        batches.run("k", {"x": np.ones((3, 1), np.float32)}, model([]))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    batches.stop()


def test_a_full_queue_refuses_with_unavailable():
    batches = scheduler(max_batch_size=1, max_enqueued_batches=2)
    one = {"x": np.ones((1, 1), np.float32)}
    answered = []
    threads = [threading.Thread(target=lambda: answered.append(batches.run("k", one, model([]))))
               for _ in range(2)]
    with worker_held(batches):
        for thread in threads:
            thread.start()
        wait_for(lambda: batches.num_enqueued_tasks() == 2)
        with pytest.raises(ServingError, match="The batch scheduling queue to which this task was "
                                               "submitted is full") as caught:
            batches.run("k", one, model([]))
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    for thread in threads:
        thread.join(30)
    assert len(answered) == 2  # the queued ones are answered
    batches.stop()


def test_a_call_whose_deadline_passes_in_the_queue_is_not_computed():
    calls = []
    batches = scheduler(max_batch_size=8)
    results = {}

    def call(name, deadline):
        try:
            results[name] = batches.run("k", {"x": np.ones((1, 1), np.float32)}, model(calls),
                                        deadline)
        except ServingError as err:
            results[name] = err.code

    threads = [threading.Thread(target=call, args=("late", time.monotonic() + 0.05)),
               threading.Thread(target=call, args=("patient", time.monotonic() + 60))]
    with worker_held(batches):
        for thread in threads:
            thread.start()
        wait_for(lambda: batches.num_enqueued_tasks() == 2)
        time.sleep(0.1)
    for thread in threads:
        thread.join(30)
    batches.stop()
    assert results["late"] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert results["patient"][0].tolist() == [1.0]
    assert calls == [(1, 1)]


def test_a_call_finding_a_batch_thread_idle_is_computed_in_its_own_thread():
    def computed_in(feeds):
        return [np.array([threading.current_thread().name] * len(feeds["x"]))]

    batches = scheduler(max_batch_size=8)
    one = np.ones((1, 1), np.float32)
    assert batches.run("k", {"x": one}, computed_in)[0].tolist() == [
        threading.current_thread().name]
    # Calls that queue while every batch slot is taken are merged and run by a batch thread.
    results = run_queued(batches, [one, one], computed_in)
    assert [result[0].tolist() for result in results] == [["batch_threads-0"]] * 2
