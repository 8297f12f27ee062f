"""The loss and metrics of a training run, averaged per logging window, for TensorBoard."""

from __future__ import annotations

import tensorflow as tf


class TrainingLog:
    """Accumulates per-step values and writes their window means as TensorBoard scalars.

    Every `log_every` steps the loop calls `write_window`: the loss and metrics averaged over the
    steps since the last window, and `steps_per_sec` over the time spent in those steps, are
    written at that step (and shown by `display`, when given). Steps added with `timed=False`
    (the first call of the step function, which traces and compiles it) count in the means but
    not in `steps_per_sec`; a window of such steps only has none. Validation metrics are written
    as `val_<name>` (and shown by `display`).

    Args:
        logs_dir: directory of the TensorBoard event files.
        display: an optional `ProgressDisplay` shown the same window means.

    Example:

    >>> log = TrainingLog("runs/toy/logs")
    >>> log.add_step(0.5, {"mae": 0.6}, seconds=0.01)
    >>> log.add_step(0.3, {"mae": 0.4}, seconds=0.01)
    >>> log.write_window(2, learning_rate=1e-3)
    {'loss': 0.4, 'mae': 0.5, 'steps_per_sec': 100.0}
    """

    def __init__(self, logs_dir, display=None):
        self._writer = tf.summary.create_file_writer(str(logs_dir))
        self.display = display
        self._sums: dict[str, float] = {}
        self._steps = 0
        self._timed_steps = 0
        self._seconds = 0.0

    def add_step(self, loss: float, metrics: dict, seconds: float, steps: int = 1,
                 timed: bool = True) -> None:
        """Adds the loss and metrics (scalars) of one step, or their means over `steps` steps
        run together, and the time they took (left out of `steps_per_sec` unless `timed`)."""
        for name, value in {"loss": loss, **metrics}.items():
            self._sums[name] = self._sums.get(name, 0.0) + steps * float(value)
        self._steps += steps
        if timed:
            self._timed_steps += steps
            self._seconds += seconds

    def write_window(self, step: int, **extra: float) -> dict[str, float]:
        """Writes the means of the steps added since the last window at `step`, with `extra`
        scalars (e.g. the learning rate) that are logged but not displayed; returns the means
        and `steps_per_sec` (None when no step of the window was timed)."""
        means = {name: total / self._steps for name, total in self._sums.items()}
        steps_per_sec = (self._timed_steps / max(self._seconds, 1e-9) if self._timed_steps
                         else None)
        rate = {} if steps_per_sec is None else {"steps_per_sec": steps_per_sec}
        self._write(step, {**means, **rate, **extra})
        if self.display is not None:
            self.display.update(step, means, steps_per_sec)
        self._sums, self._steps, self._timed_steps, self._seconds = {}, 0, 0, 0.0
        return {**means, "steps_per_sec": steps_per_sec}

    def write_validation(self, step: int, metrics: dict[str, float], show: bool = True) -> None:
        """Writes validation `metrics` as `val_<name>` at `step`, and shows them on `display`
        unless `show` is false."""
        self._write(step, {f"val_{name}": value for name, value in metrics.items()})
        if show and self.display is not None:
            self.display.validation(step, metrics)

    def close(self) -> None:
        self._writer.close()

    def _write(self, step: int, values: dict[str, float]) -> None:
        with self._writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        self._writer.flush()
