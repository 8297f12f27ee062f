"""The workers of a multi-worker run stopping together: when one is preempted, and when one dies."""

from __future__ import annotations

import contextlib
import re
import signal
import threading

import tensorflow as tf

from seqzoo.training.worker_lost import WorkerLost


class WorkerGroup:
    """The workers of a run as the training loop meets them: they stop together.

    MultiWorkerMirroredStrategy runs the same steps on every worker in lockstep, so a worker
    that stops alone leaves the others waiting in their next collective.

    - A SIGTERM (a preemption notice; what Kubernetes and `docker stop` send) to any worker is
      shared after each call of the step function (`stop_requested`, one scalar all-reduce), so
      every worker saves the checkpoint of the same step and exits, and a restart resumes there.
    - A worker that dies without notice (SIGKILL, a lost machine) misses the heartbeats of
      TensorFlow's coordination service; after `train.worker_timeout` seconds the others'
      collectives fail with one of `failures`, which `lost` turns into a `WorkerLost` naming the
      worker and the step to resume from.

    In a single process, SIGTERM interrupts the run at once, as Ctrl-C does (`KeyboardInterrupt`,
    after which the loop saves a checkpoint).

    Args:
        strategy: the run's `tf.distribute.Strategy`.

    Example:

    >>> workers = WorkerGroup(strategy)
    >>> with workers.on_sigterm():
    ...     loss, metrics = train_step(batches, 10)
    ...     workers.stop_requested()   # True on every worker once one of them got SIGTERM
    False
    """

    def __init__(self, strategy: tf.distribute.Strategy):
        resolver = getattr(strategy, "cluster_resolver", None)
        self.strategy = strategy
        self.in_cluster = resolver is not None and bool(resolver.cluster_spec().as_dict())
        self._me = (resolver.task_type, str(resolver.task_id)) if self.in_cluster else None
        # What a collective fails with once a peer is gone (or the collectives were aborted
        # because of it); none outside a cluster, where no peer can be lost.
        self.failures = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                         tf.errors.AbortedError, tf.errors.CancelledError
                         ) if self.in_cluster else ()
        self._sigterm = threading.Event()

    @contextlib.contextmanager
    def on_sigterm(self):
        """Within the block, SIGTERM asks the run to stop (see the class docstring)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if not self.in_cluster:
                raise KeyboardInterrupt(f"signal {signum}")
            self._sigterm.set()

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def stop_requested(self) -> bool:
        """Whether any worker got SIGTERM; all workers call it after the same call of the step
        function and get the same answer. Always False outside a cluster."""
        if not self.in_cluster:
            return False
        marks = self.strategy.run(lambda: tf.constant(float(self._sigterm.is_set())))
        return float(self.strategy.reduce(tf.distribute.ReduceOp.SUM, marks, axis=None)) > 0

    def lost(self, error: tf.errors.OpError, saved_step: int | None) -> WorkerLost:
        """The `WorkerLost` for a collective that failed with `error` (one of `failures`),
        naming the workers its message names and the last checkpoint's `saved_step`."""
        named = set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", error.message)) - {self._me}
        who = " and ".join(f"{job} {index}" for job, index in sorted(named)) or "another worker"
        resume = (f"resume from step {saved_step}" if saved_step
                  else "start over (no checkpoint was saved yet)")
        return WorkerLost(f"{who} stopped responding; restart all workers to {resume}.")
