"""The workers of a multi-worker run stopping together: when one is preempted, and when one dies."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import sys
import threading
import time

import tensorflow as tf

from seqzoo.training.worker_lost import WorkerLost

# Numbers the runs of a process, so that the n-th run of every worker uses the same key of the
# coordination service (which outlives a run) and no run sees an earlier run's stop.
_RUNS = itertools.count()


# Seconds a stalled worker waits for its main thread to leave the aborted collectives before it
# takes itself as the worker that hangs.
_GRACE = 2

# The share of a core a worker's process must use while its main thread waits in an evaluation
# for the evaluation to count as progressing (TensorFlow's threads computing for it).
_BUSY = 0.1


class _Interrupted(KeyboardInterrupt):
    """Raised in the main thread to end an `interruptible` call; it never leaves the call."""


class WorkerGroup:
    """The workers of a run as the training loop meets them: they stop together.

    MultiWorkerMirroredStrategy runs the same steps on every worker in lockstep, so a worker
    that stops alone leaves the others waiting in their next collective.

    - A SIGTERM (a preemption notice; what Kubernetes and `docker stop` send) to any worker is
      shared after each call of the step function and its host work (`stop_requested`, one
      scalar all-reduce, which also makes the workers enter the next call together), so every
      worker saves the checkpoint of the same step and exits, and a restart resumes there.
      The signalled worker also posts it to TensorFlow's coordination service, where every
      worker watches for it, so that host work without collectives (an evaluation, run through
      `interruptible`) ends at once on every worker. The worker that leads the service (whose
      exit ends it) leaves only once every other worker has heard the stop (each says so in
      the service) or is gone, waiting at most `timeout` seconds for them.
    - A worker that dies without notice (SIGKILL, a lost machine) or stops altogether
      (SIGSTOP) misses the heartbeats of TensorFlow's coordination service; after
      `train.worker_timeout` seconds the others' collectives fail with one of `failures`, which
      `lost` turns into a `WorkerLost` naming the worker and the step to resume from.
    - A worker that hangs but keeps heartbeating (its main thread stuck, e.g. reading its data)
      stalls the steps of all: when `step` has not advanced for `timeout` seconds within a
      call of the step function (after the first, which traces), every worker aborts its
      collectives. The workers that were waiting in them get one of `failures`; the one whose
      main thread stays stuck says so, posts its name for the others' `WorkerLost`, and ends
      its process (exit status 1), the only way out of a stuck thread.
    - A worker whose main thread stops running inside an `interruptible` call (an evaluation
      waiting for its data) while it heartbeats leaves the others waiting in the collective
      after it: when for `timeout` seconds that thread has used no CPU time (a blocked thread
      uses none; one that computes, however slowly under load, does) and neither have
      TensorFlow's threads for it (a tenth of a core: the main thread may wait in one long
      call), the worker says so, posts its name and ends its process (exit status 1), and the
      others' collective fails with one of `failures` naming it. The others are never judged by how long they wait,
      so evaluations of unequal length raise no alarm.

    In a single process, SIGTERM interrupts the run at once, as Ctrl-C does (`KeyboardInterrupt`,
    after which the loop saves a checkpoint).

    Args:
        strategy: the run's `tf.distribute.Strategy`.
        timeout: `train.worker_timeout`, the seconds the steps may stall; None: no limit.
        step: the step variable the step function increments.
        scratch: a directory this worker removes before it ends its own process when stuck
            (the temporary output directory of a worker other than the chief); None: none.

    Example:

    >>> workers = WorkerGroup(strategy, timeout=30, step=step)
    >>> with workers.stopping_together():
    ...     with workers.stepping():
    ...         loss, metrics = train_step(batches, 10)
    ...     workers.stop_requested()   # True on every worker once one of them got SIGTERM
    ...     metrics = workers.interruptible(task.evaluate, model)   # None once one got SIGTERM
    False
    """

    def __init__(self, strategy: tf.distribute.Strategy, timeout: float | None = None,
                 step: tf.Variable | None = None, scratch: str | os.PathLike | None = None):
        resolver = getattr(strategy, "cluster_resolver", None)
        self.strategy = strategy
        self.in_cluster = resolver is not None and bool(resolver.cluster_spec().as_dict())
        self._me = (resolver.task_type, str(resolver.task_id)) if self.in_cluster else None
        self._leader = _coordination_leader(resolver) if self.in_cluster else None
        self._peers = {(job, str(index))
                       for job, addresses in resolver.cluster_spec().as_dict().items()
                       for index in range(len(addresses))} - {self._me} if self.in_cluster else ()
        # What a collective fails with once a peer is gone (or the collectives were aborted
        # because of it); none outside a cluster, where no peer can be lost.
        self.failures = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                         tf.errors.AbortedError, tf.errors.CancelledError
                         ) if self.in_cluster else ()
        run = next(_RUNS) if self.in_cluster else None
        self._stop_key, self._stuck_key = f"seqzoo_sigterm_{run}", f"seqzoo_stuck_{run}"
        # Set by each worker but the leader once it heard the stop (see `_hear_stop`).
        self._heard_key = f"seqzoo_sigterm_{run}_heard_by_{{}}_{{}}"
        self._heard_posted = False
        self._sigterm = threading.Event()
        self._interruptible = False
        self._timeout, self._step, self._scratch = timeout, step, scratch
        # The watched calls (of the step function, or `interruptible`) so far, how many of them
        # called the step function, and which kind runs now.
        self._calls = self._step_calls = 0
        self._stepping = threading.Event()
        self._evaluating = threading.Event()
        self._stalled = False

    @contextlib.contextmanager
    def stopping_together(self):
        """Within the block, SIGTERM asks the run to stop and stalled steps end it (see the
        class docstring)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        main = threading.main_thread().ident

        def handler(signum, frame):
            if not self.in_cluster:
                raise KeyboardInterrupt(f"signal {signum}")
            if not self._sigterm.is_set():
                _post(self._stop_key)
                self._hear_stop()
            if self._interruptible:
                raise _Interrupted(f"signal {signum}")

        def watch(done: threading.Event):
            if _wait_for_key(self._stop_key, done):
                self._hear_stop()
                # The handler above, in the main thread, ends the interruptible call; signalled
                # again until it has, since the exception the handler raises is sometimes lost
                # inside the call (in about one final evaluation of the toy task in ten, the
                # evaluation went on).
                while self._interruptible and not done.is_set():
                    signal.pthread_kill(main, signal.SIGTERM)
                    done.wait(0.5)

        previous = signal.signal(signal.SIGTERM, handler)
        done = threading.Event()
        if self.in_cluster:
            threading.Thread(target=watch, args=(done,), daemon=True,
                             name="seqzoo-sigterm-watcher").start()
            if self._timeout and self._step is not None:
                threading.Thread(target=self._watch_progress, args=(done,), daemon=True,
                                 name="seqzoo-stall-watchdog").start()
        try:
            yield
        finally:
            done.set()
            if self._sigterm.is_set() and self._me == self._leader:
                self._await_peers_heard()
            signal.signal(signal.SIGTERM, previous)

    @contextlib.contextmanager
    def stepping(self):
        """Marks a call of the step function for the stall watchdog."""
        self._calls += 1
        self._step_calls += 1
        self._stepping.set()
        try:
            yield
        finally:
            self._stepping.clear()

    def stop_requested(self) -> bool:
        """Whether any worker got SIGTERM; all workers call it after the same call of the step
        function and get the same answer. Always False outside a cluster."""
        if not self.in_cluster:
            return False
        # Not watched: after an evaluation, it waits for the slowest worker to finish its own.
        marks = self.strategy.run(lambda: tf.constant(float(self._sigterm.is_set())))
        if float(self.strategy.reduce(tf.distribute.ReduceOp.SUM, marks, axis=None)) == 0:
            return False
        self._hear_stop()
        return True

    def _hear_stop(self) -> None:
        """Takes note of a stop (a SIGTERM to this worker or another) and, once, says so in the
        coordination service.

        The worker that leads the service waits for that word from the others before it exits
        after a stop (see `_await_peers_heard`).
        """
        self._sigterm.set()
        if self._me != self._leader and not self._heard_posted:
            self._heard_posted = True
            _post(self._heard_key.format(*self._me))

    def _await_peers_heard(self) -> None:
        """Waits until every other worker has heard the stop or is gone, at most `timeout`
        seconds (TensorFlow's heartbeat timeout without one).

        The leader's exit ends the coordination service; a worker still evaluating then finds
        it gone, which is also what it finds when a run ends normally with the leader done
        first, so it would evaluate to the end instead of stopping.
        """
        deadline = time.monotonic() + (self._timeout or 10)
        waiting = set(self._peers)
        while waiting and time.monotonic() < deadline:
            for peer in sorted(waiting):
                # Only a refused probe says a worker is gone: under load, a busy one may answer
                # late.
                if (_read(self._heard_key.format(*peer), 200) is not None
                        or isinstance(_probe(peer), tf.errors.UnavailableError)):
                    waiting.discard(peer)

    def _watch_progress(self, done: threading.Event) -> None:
        """Ends a run whose steps stalled, or this worker's evaluation, for `timeout` seconds
        (see the class docstring)."""
        from tensorflow.python.eager import context

        # Not on every platform (macOS has no such clock): there evaluations are not watched.
        main_thread_time = (time.pthread_getcpuclockid(threading.main_thread().ident)
                            if hasattr(time, "pthread_getcpuclockid") else None)
        last, since = None, time.monotonic()
        busy, cpu = 0, None
        while not done.wait(0.5):
            now = time.monotonic()
            if self._evaluating.is_set() and main_thread_time is not None:
                # An evaluation progresses while its main thread runs, or while TensorFlow's
                # threads compute and the main thread waits in one long call: more than
                # `_BUSY` of a core, far above what an idle worker's background threads use.
                previous = cpu
                cpu = (now, time.clock_gettime(main_thread_time), time.process_time())
                if (previous is None or cpu[1] > previous[1]
                        or cpu[2] - previous[2] > _BUSY * (now - previous[0])):
                    busy += 1
                progress = (self._calls, busy)
            # The first call of the step function traces it, which may take any time.
            elif self._stepping.is_set() and self._step_calls >= 2:
                progress, cpu = (self._calls, int(self._step.numpy())), None
            else:
                progress, cpu = None, None
            if progress is None or progress != last:
                last, since = progress, now
                continue
            if now - since >= self._timeout:
                break
        else:
            return
        if self._evaluating.is_set():
            self._stop_stuck(" in its evaluation (it computed nothing, e.g. waiting for "
                             "its validation data)")
        self._stalled = True
        context.context().abort_collective_ops(
            tf.errors.UNAVAILABLE, f"The steps made no progress for {self._timeout} s.")
        deadline = time.monotonic() + _GRACE
        while self._stepping.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._stepping.is_set():
            return  # The main thread was waiting in a collective: it reports a lost worker.
        self._stop_stuck(", stuck outside the collectives (e.g. reading its data)")

    def _stop_stuck(self, where: str) -> None:
        """Ends this worker, whose main thread is stuck (`where` says where, continuing the
        message), after posting its name for the others' `WorkerLost`."""
        me = " ".join(self._me)
        _post(self._stuck_key, me)
        print(f"seqzoo train: error: this worker ({me}) made no progress for {self._timeout} s"
              f"{where}; it stops. Restart all workers to resume from the last checkpoint.",
              file=sys.stderr, flush=True)
        if self._scratch:
            # `os._exit` skips the `finally` blocks that would remove it.
            shutil.rmtree(self._scratch, ignore_errors=True)
        os._exit(1)

    def interruptible(self, function, *args):
        """`function(*args)`, host work without collectives (e.g. an evaluation), ended on
        every worker as soon as any of them gets SIGTERM, and by the watchdog once this
        worker's main thread ran nothing in it for `timeout` seconds (see the class
        docstring).

        Returns:
            What `function` returns, or None when a SIGTERM ended it (or came before it);
            `stop_requested` then returns True on every worker.

        Raises:
            KeyboardInterrupt: outside a cluster, on SIGTERM or Ctrl-C.
        """
        self._interruptible = True
        self._calls += 1
        self._evaluating.set()
        try:
            try:
                if self._sigterm.is_set():
                    return None
                return function(*args)
            except Exception:
                # Raised inside a C function (here NumPy's `__array__` in a Keras call), the
                # handler's exception comes out as another one, a SystemError "returned a
                # result with an exception set" that Keras re-raises without its cause; after a
                # stop the call's result is dropped anyway.
                if self._sigterm.is_set():
                    return None
                raise
        except _Interrupted:
            # The handler's exception, raised in the call, as it returns, or in the handler
            # above.
            return None
        finally:
            self._interruptible = False
            self._evaluating.clear()

    def lost(self, error: tf.errors.OpError, saved_step: int | None) -> WorkerLost:
        """The `WorkerLost` for a collective that failed with `error` (one of `failures`),
        naming the workers its message names and the last checkpoint's `saved_step`.

        A worker that cannot reach the coordination service names the worker that leads it
        (the chief, or worker 0); a message naming no other worker, the workers that do not
        answer a probe, or else, after stalled steps, the one that posted its name as hung."""
        # The message may name this worker too (its own devices, its ops).
        named = set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", error.message)) - {self._me}
        if not named and "/tensorflow.CoordinationService/" in error.message:
            named = {self._leader} - {self._me}
        if not named:
            # The message names no other worker: a frozen worker stalls the steps too, when
            # the watchdog notices before the heartbeats do, and a collective may fail as
            # cancelled by another's failure (once under load, when the chief was frozen).
            named = self._silent_peers()
        if not named and self._stalled:
            # A hung worker answers probes and posts its name.
            stuck = _read(self._stuck_key, (_GRACE + 3) * 1000)
            named = {tuple(stuck.split())} - {self._me} if stuck else set()
        who = " and ".join(f"{job} {index}" for job, index in sorted(named)) or "another worker"
        resume = (f"resume from step {saved_step}" if saved_step
                  else "start over (no checkpoint was saved yet)")
        return WorkerLost(f"{who} stopped responding; restart all workers to {resume}.")

    def _silent_peers(self) -> set[tuple[str, str]]:
        """The other workers that do not answer a health probe within a second."""
        return {peer for peer in sorted(self._peers) if _probe(peer) is not None}


def _coordination_leader(resolver) -> tuple[str, str]:
    """The (job, index) of the worker that runs the coordination service."""
    from tensorflow.python.distribute import multi_worker_util

    leader = multi_worker_util.coordination_leader(resolver.cluster_spec())
    job, index = re.fullmatch(r"/job:(\w+)/replica:\d+/task:(\d+)", leader).groups()
    return job, index


def _probe(task: tuple[str, str]) -> tf.errors.OpError | None:
    """What a health probe of the worker `task` (job, index) fails with within a second: an
    `UnavailableError` when its process is gone, a `DeadlineExceededError` when it does not
    answer; None when it answers."""
    from tensorflow.python.eager import context

    job, index = task
    try:
        context.context().check_collective_ops_peer_health(
            f"/job:{job}/replica:0/task:{index}", timeout_in_ms=1000)
    except tf.errors.OpError as err:
        return err
    return None


def _post(key: str, value: str = "1") -> None:
    """Sets `key` in the coordination service (once per run: later posts find it set)."""
    from tensorflow.python.eager import context

    with contextlib.suppress(tf.errors.AlreadyExistsError, tf.errors.UnavailableError):
        context.context().set_config_key_value(key, value)


def _read(key: str, timeout_in_ms: int) -> str | None:
    """The value of `key` in the coordination service, or None if it is not set in time."""
    from tensorflow.python.eager import context

    try:
        return context.context().get_config_key_value(key, timeout_in_ms=timeout_in_ms)
    except tf.errors.OpError:
        return None


def _wait_for_key(key: str, done: threading.Event) -> bool:
    """Whether `key` was set in the coordination service before `done`. Polls, so that the
    watcher ends with its run instead of blocking until the process does."""
    from tensorflow.python.eager import context

    while not done.is_set():
        try:
            context.context().get_config_key_value(key, timeout_in_ms=500)
            return True
        except tf.errors.DeadlineExceededError:
            continue
        except tf.errors.OpError:
            # A service that is gone and one that failed to answer once (a busy leader under
            # load) look alike here; asking again until the run ends costs one call a half
            # second, while giving up would leave this worker deaf to a later SIGTERM.
            done.wait(0.5)
    return False
