"""Stopping a run when a validation metric has stopped improving."""

from __future__ import annotations

import math


class EarlyStopping:
    """Tells the loop to stop once `train.early_stopping_metric` has not improved for
    `train.early_stopping_patience` evaluations in a row.

    The loop evaluates every `train.eval_every` steps; an improvement is a value above the best
    so far (below, with `train.early_stopping_mode="min"`). Every worker of a multi-worker run
    evaluates the same weights on the same data, so all of them stop at the same step.

    Args:
        train: the `TrainConfig`; `early_stopping_metric` "" disables early stopping.

    Example:

    >>> stopping = EarlyStopping(train)   # metric "accuracy", mode "max", patience 2
    >>> [stopping.should_stop({"accuracy": a}) for a in (0.8, 0.9, 0.85, 0.9)]
    [False, False, False, True]
    """

    def __init__(self, train):
        self.metric = train.early_stopping_metric
        self.sign = 1.0 if train.early_stopping_mode == "max" else -1.0
        self.patience = train.early_stopping_patience
        self.best = -math.inf
        self.best_step = None
        self.waited = 0
        if self.metric and not train.eval_every:
            raise ValueError(
                f"train.early_stopping_metric={self.metric!r} needs evaluations during the run: "
                "set train.eval_every to a positive number of steps."
            )

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
        value = self.sign * float(metrics[self.metric])
        if value > self.best:
            self.best, self.best_step, self.waited = value, step, 0
            return False
        self.waited += 1
        return self.waited >= self.patience
