"""Stopping a run when a validation metric has stopped improving."""

from __future__ import annotations

import math

import tensorflow as tf


class EarlyStopping(tf.Module):
    """Tells the loop to stop once `train.early_stopping_metric` has not improved for
    `train.early_stopping_patience` evaluations in a row.

    The loop evaluates every `train.eval_every` steps; an improvement is a value above the best
    so far (below, with `train.early_stopping_mode="min"`). Every worker of a multi-worker run
    evaluates the same weights on the same data, so all of them stop at the same step.

    The best value, its step and the evaluations since are variables saved with the run's
    checkpoints, so a resumed run stops where an uninterrupted one would. A run resumed with
    another metric or mode starts counting afresh.

    Args:
        train: the `TrainConfig`; `early_stopping_metric` "" disables early stopping.

    Example:

    >>> stopping = EarlyStopping(train)   # metric "accuracy", mode "max", patience 2
    >>> [stopping.should_stop({"accuracy": a}) for a in (0.8, 0.9, 0.85, 0.9)]
    [False, False, False, True]
    """

    def __init__(self, train):
        super().__init__(name="early_stopping")
        self.metric = train.early_stopping_metric
        self.sign = 1.0 if train.early_stopping_mode == "max" else -1.0
        self.patience = train.early_stopping_patience
        if self.metric and not train.eval_every:
            raise ValueError(
                f"train.early_stopping_metric={self.metric!r} needs evaluations during the run: "
                "set train.eval_every to a positive number of steps."
            )
        # What the state below is about; a checkpoint of a run that watched another metric
        # (or mode) restores another value here.
        self._watched = tf.Variable(self._watching, trainable=False, name="watched")
        self._best = tf.Variable(-math.inf, dtype=tf.float64, trainable=False, name="best")
        self._best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_step")
        self._waited = tf.Variable(0, dtype=tf.int64, trainable=False, name="waited")

    @property
    def _watching(self) -> str:
        return f"{self.metric} {'max' if self.sign > 0 else 'min'}"

    @property
    def best_step(self) -> int | None:
        """The step of the best evaluation so far, None before any."""
        step = int(self._best_step.numpy())
        return None if step < 0 else step

    @property
    def waited(self) -> int:
        """Evaluations since the best one."""
        return int(self._waited.numpy())

    def should_stop(self, metrics: dict[str, float], step: int | None = None) -> bool:
        """Records the validation `metrics` of an evaluation (at `step`); True when the run
        should stop.

        Raises:
            ValueError: the task reports no metric of that name (the accepted names are listed).
        """
        if not self.metric:
            return False
        if self.metric not in metrics:
            raise ValueError(
                f"train.early_stopping_metric={self.metric!r} is not a validation metric of "
                f"this task; accepted: {', '.join(sorted(metrics))}."
            )
        if self._watched.numpy().decode() != self._watching:
            self._watched.assign(self._watching)
            self._best.assign(-math.inf)
            self._best_step.assign(-1)
            self._waited.assign(0)
        value = self.sign * float(metrics[self.metric])
        if value > float(self._best.numpy()):
            self._best.assign(value)
            self._best_step.assign(-1 if step is None else step)
            self._waited.assign(0)
            return False
        self._waited.assign_add(1)
        return self.waited >= self.patience
