"""TF Serving's request batching for the model server: concurrent calls of one signature merged
into one model call and split back."""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from typing import Callable, Hashable

import grpc
import numpy as np

from seqzoo.serving.batching_parameters import BatchingParameters
from seqzoo.serving.serving_error import ServingError

log = logging.getLogger(__name__)

Feeds = dict[str, np.ndarray]
Run = Callable[[Feeds], list]


@dataclasses.dataclass(eq=False)
class _Task:
    feeds: Feeds
    size: int
    deadline: float | None = None
    enqueued: float = dataclasses.field(default_factory=time.monotonic)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outputs: list | None = None
    error: Exception | None = None


@dataclasses.dataclass(eq=False)
class _Batch:
    opened: float
    tasks: list[_Task] = dataclasses.field(default_factory=list)
    size: int = 0


@dataclasses.dataclass(eq=False)
class _Queue:
    run: Run
    parameters: BatchingParameters
    batches: collections.deque[_Batch] = dataclasses.field(default_factory=collections.deque)


def _unavailable(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)


class BatchScheduler:
    """Merges concurrent model calls into batches, as TF Serving's shared batch scheduler does.

    Each distinct call (the caller's `key`: one model version, signature and set of outputs)
    has its own queue of batches; a call joins the newest batch of its queue if it fits in
    `max_batch_size` examples, else opens a new one, unless the queue already holds
    `max_enqueued_batches` batches: then it is refused with UNAVAILABLE ("The batch scheduling
    queue to which this task was submitted is full", TF Serving's words; HTTP 503). A pool of
    `num_batch_threads` threads, shared by every queue in turn, runs a batch once it is full,
    its first call has waited `batch_timeout_micros`, or (as in TF Serving, where waiting is
    bounded by the timeout only) at once when the timeout is 0. A batch runs as one call on the
    inputs concatenated along axis 0, padded up to the next `allowed_batch_sizes` entry with
    copies of its first example, and each call gets its rows of every output back. At most
    `num_batch_threads` batches are computed at once; a call whose own batch is ready when it
    arrives, with one of them free, computes it in its own thread (which TF Serving would hand
    to a batch thread and back: two thread switches that cost more than a small model's call).
    A call may give its own parameters (TF Serving's per-model batching parameters): its queue
    is batched by them, on the same threads.

    Inputs whose dimensions after the first differ are padded to the longest with the tensor's
    own first element when `pad_variable_length_inputs` is set; TF Serving pads this way so that
    the padding is a value the model already accepts (a valid token, frame or symbol), and a
    model that masks by a lengths input ignores it. Without padding such calls go to separate
    queues, so they are never merged (TF Serving would fail the whole batch instead); nor are
    inputs of different ranks, padded or not. Padded outputs are returned as the model gives
    them (e.g. a per-frame output is as long as the longest video of the batch), as TF Serving
    returns them.

    Calls that cannot be merged run alone, in the caller's thread: inputs without a batch
    dimension (a scalar) or disagreeing on its size, and those of no example. If a merged run's outputs
    do not all have the batch as their first dimension they cannot be split, and the key's
    calls run alone from then on (TF Serving would fail them). If a merged run fails with a
    `ServingError` (a bad value in one request, say), each call is run alone, so that one
    request's error never fails the others.

    Args:
        parameters: TF Serving's `BatchingParameters`.
        metrics: a `ServingMetrics` that records batch and queue figures under TF Serving's
            names, or None.

    Example:
    ```python
    scheduler = BatchScheduler(BatchingParameters(max_batch_size=8, batch_timeout_micros=2000))
    outputs = scheduler.run(("model", 1, "serving_default"), {"x:0": x}, run)  # run(feeds) -> list
    scheduler.stop()
    ```
    """

    def __init__(self, parameters: BatchingParameters, metrics=None):
        self.parameters = parameters
        self._metrics = metrics
        self._changed = threading.Condition()
        # Queues in the order the threads visit them: one that runs a batch moves to the end.
        self._queues: dict[Hashable, _Queue] = {}
        self._unsplittable: set[Hashable] = set()
        self._stopping = False
        # Batches being computed, by batch threads or by callers running their own: at most
        # num_batch_threads at once.
        self._busy = 0
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"{parameters.thread_pool_name}-{index}")
                         for index in range(parameters.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def run(self, key: Hashable, feeds: Feeds, run: Run, deadline: float | None = None,
            parameters: BatchingParameters | None = None) -> list:
        """`run(feeds)`'s outputs for these feeds, computed in a batch with other calls of
        `key` (which must all be computed by the same `run`); blocks until they are ready.
        `parameters` (TF Serving's per-model batching parameters; None: the scheduler's) set
        how the calls of `key` are batched; the batch threads are the scheduler's in any case.

        Raises the `ServingError` of the run, INVALID_ARGUMENT for more than `max_batch_size`
        examples, UNAVAILABLE when the queue is full, and DEADLINE_EXCEEDED, without computing
        it, if the call is still queued at `deadline` (a `time.monotonic()` time: the client has
        stopped waiting).
        """
        parameters = parameters or self.parameters
        size = _batch_size(feeds)
        if not size or key in self._unsplittable:
            return run(feeds)
        if size > parameters.max_batch_size:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Task size {size} is larger than maximum input batch size "
                f"{parameters.max_batch_size}: send at most max_batch_size examples per "
                "request, or raise max_batch_size in the batching parameters.")
        if self._metrics is not None:
            self._metrics.record_input_batch_size(size)
        task = _Task(feeds, size, deadline)
        queue_key = (key, _shapes(feeds, parameters.pad_variable_length_inputs))
        with self._changed:
            if self._stopping:
                raise _unavailable("The model server is stopping; send the request again to "
                                   "another replica.")
            queue = self._queues.get(queue_key)
            if queue is None:
                queue = self._queues[queue_key] = _Queue(run, parameters)
            batch = queue.batches[-1] if queue.batches else None
            if batch is None or batch.size + size > parameters.max_batch_size:
                if len(queue.batches) >= parameters.max_enqueued_batches:
                    raise _unavailable(
                        "The batch scheduling queue to which this task was submitted is full "
                        f"({parameters.max_enqueued_batches} batches of up to "
                        f"{parameters.max_batch_size} examples wait; max_enqueued_batches "
                        "in the batching parameters)")
                batch = _Batch(opened=task.enqueued)
                queue.batches.append(batch)
            batch.tasks.append(task)
            batch.size += size
            # The caller's own batch, ready now with a batch thread idle: the caller runs it
            # instead of waking that thread and sleeping until it is done, two thread hand-offs
            # that cost more than a small model's call.
            lead = (len(queue.batches) == 1 and self._busy < self.parameters.num_batch_threads
                    and self._ready(queue, task.enqueued))
            if lead:
                taken = self._take(queue_key, queue)
            else:
                self._changed.notify()
        if lead:
            self._compute(*taken)
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def num_enqueued_tasks(self) -> int:
        """Calls waiting in the queues (not yet taken by a batch thread)."""
        with self._changed:
            return sum(len(batch.tasks) for queue in self._queues.values()
                       for batch in queue.batches)

    def stop(self) -> None:
        """Runs the batches still queued at once, then ends the batch threads; calls made
        after this are refused with UNAVAILABLE."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()

    # --- the batch threads --------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._changed:
                taken = self._next_batch()
            if taken is None:
                return
            self._compute(*taken)

    def _ready(self, queue: _Queue, now: float) -> bool:
        """Whether the first batch of `queue` may run: full, followed by another, or due."""
        batch = queue.batches[0]
        return (len(queue.batches) > 1 or now >= _due(queue)
                or batch.size >= queue.parameters.max_batch_size)

    def _take(self, queue_key: Hashable, queue: _Queue):
        """Takes the first batch off `queue` for a thread that computes it (counted in
        `_busy`); (key, run, batch, parameters). Called holding the lock."""
        batch = queue.batches.popleft()
        # The queue moves to the end of the visiting order (or goes, if empty).
        del self._queues[queue_key]
        if queue.batches:
            self._queues[queue_key] = queue
        self._busy += 1
        return queue_key[0], queue.run, batch, queue.parameters

    def _next_batch(self):
        """Waits for a batch that is ready and a free batch slot, takes the batch off its
        queue and returns (key, run, batch, parameters); None once stopping with nothing
        queued. Called holding the lock."""
        while True:
            now, wait = time.monotonic(), None
            if self._busy < self.parameters.num_batch_threads:
                for queue_key, queue in self._queues.items():
                    if self._stopping or self._ready(queue, now):
                        return self._take(queue_key, queue)
                    due = _due(queue)
                    wait = due - now if wait is None else min(wait, due - now)
            if self._stopping and not self._queues:
                return None
            self._changed.wait(wait)

    def _compute(self, key: Hashable, run: Run, batch: _Batch,
                 parameters: BatchingParameters) -> None:
        try:
            self._process(key, run, batch, parameters)
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify()

    def _process(self, key: Hashable, run: Run, batch: _Batch,
                 parameters: BatchingParameters) -> None:
        now = time.monotonic()
        expired = [task for task in batch.tasks if task.deadline is not None
                   and task.deadline <= now]
        for task in expired:
            task.error = ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                      "Deadline exceeded while the request waited in the batch "
                                      "queue; it was not computed.")
            task.done.set()
        tasks = [task for task in batch.tasks if task not in expired]
        if not tasks:
            return
        size = sum(task.size for task in tasks)
        padded_size = parameters.padded_size(size)
        if self._metrics is not None:
            self._metrics.record_batch(
                processed_size=padded_size, padding_size=padded_size - size,
                queuing_micros=[(now - task.enqueued) * 1e6 for task in tasks],
                thread_pool_name=self.parameters.thread_pool_name)
        try:
            if len(tasks) == 1 and padded_size == size:
                tasks[0].outputs = run(tasks[0].feeds)
                return
            try:
                outputs = run(self._merged(tasks, padded_size))
            except ServingError:
                self._run_alone(tasks, run)
                return
            if not all(np.ndim(output) and len(output) == padded_size for output in outputs):
                log.warning("Outputs of %s do not all have the batch as their first dimension; "
                            "its calls run unbatched from now on", key)
                self._unsplittable.add(key)
                self._run_alone(tasks, run)
                return
            start = 0
            for task in tasks:
                task.outputs = [output[start:start + task.size] for output in outputs]
                start += task.size
        except Exception as err:  # a server bug: every caller gets it (their server answers 500)
            for task in tasks:
                task.error = err
        finally:
            for task in tasks:
                task.done.set()

    @staticmethod
    def _run_alone(tasks: list[_Task], run: Run) -> None:
        for task in tasks:
            try:
                task.outputs = run(task.feeds)
            except ServingError as err:
                task.error = err

    def _merged(self, tasks: list[_Task], padded_size: int) -> Feeds:
        merged = {}
        for name in tasks[0].feeds:
            arrays = [task.feeds[name] for task in tasks]
            longest = tuple(int(size) for size in
                            np.max([array.shape[1:] for array in arrays], axis=0))
            arrays = [_padded(array, longest) for array in arrays]
            extra = padded_size - sum(len(array) for array in arrays)
            if extra:
                arrays.append(np.repeat(arrays[0][:1], extra, axis=0))
            merged[name] = np.concatenate(arrays)
        return merged


def _due(queue: _Queue) -> float:
    """When the first batch of `queue` runs even if not full."""
    return queue.batches[0].opened + queue.parameters.batch_timeout_micros / 1e6


def _shapes(feeds: Feeds, padded: bool) -> tuple:
    """What calls must share to be merged, besides their key: every input's dimensions after
    the first, or only their number when they are `padded` (and not empty, as padding copies
    an element)."""
    if padded and all(a.size for a in feeds.values()):
        return tuple((name, array.ndim) for name, array in sorted(feeds.items()))
    return tuple((name, array.shape[1:]) for name, array in sorted(feeds.items()))


def _batch_size(feeds: Feeds) -> int | None:
    """The common size of the inputs' first dimension; None when they have none or differ."""
    sizes = {array.shape[0] if array.ndim else None for array in feeds.values()}
    return sizes.pop() if len(sizes) == 1 else None


def _padded(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`array` padded after its first dimension to `shape` with its first element."""
    if array.shape[1:] == shape:
        return array
    padded = np.full((len(array), *shape), array.flat[0], dtype=array.dtype)
    padded[tuple(slice(0, size) for size in array.shape)] = array
    return padded
