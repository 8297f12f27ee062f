"""What `seqzoo train` prints: progress while it trains and a summary when it ends."""

from __future__ import annotations

import sys


class ProgressDisplay:
    """Training progress on the console, readable on a terminal and in a log file alike.

    On a terminal one bar line is redrawn in place; anywhere else (a pipe, a file, a CI log)
    every update is one plain line. Both show the step, the mean loss and metrics of the last
    logging window (the same values TensorBoard gets), steps per second and the time left at
    that speed. Validation metrics measured during training get a line of their own. Used as
    a context manager, it ends its bar line on exit.

    Args:
        total_steps: the step training stops at.
        stream: where to write (default `sys.stdout`).

    Example:

    >>> display = ProgressDisplay(1000)
    >>> display.update(100, {"loss": 0.3036, "accuracy": 0.84}, steps_per_sec=41.2)
    step 100/1000  loss 0.3036  accuracy 0.84  41.2 steps/s  0:22 left
    >>> display.finish()
    """

    BAR_WIDTH = 20

    def __init__(self, total_steps: int, stream=None):
        self.total_steps = total_steps
        self.stream = stream if stream is not None else sys.stdout
        self.redraw = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = False

    def update(self, step: int, values: dict[str, float], steps_per_sec: float | None) -> None:
        """Shows the means of the logging window ending at `step`; `steps_per_sec` None: the
        window's steps were all in the first call of the step function, which compiles it, so
        there is no rate to show yet."""
        if steps_per_sec is None:
            fields = _fields(values) + ["compiling (no rate yet)"]
        else:
            seconds_left = ((self.total_steps - step) / steps_per_sec if steps_per_sec > 0
                            else 0.0)
            fields = _fields(values) + [f"{steps_per_sec:.1f} steps/s",
                                        f"{format_duration(seconds_left)} left"]
        if self.redraw:
            done = self.BAR_WIDTH * step // self.total_steps
            bar = "=" * done + (">" if done < self.BAR_WIDTH else "") + "." * (
                self.BAR_WIDTH - done - 1)
            # \r returns to the line start and ESC[K clears what a longer line left behind.
            self.stream.write(f"\r{step}/{self.total_steps} [{bar}]  " + "  ".join(fields)
                              + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(f"step {step}/{self.total_steps}  " + "  ".join(fields) + "\n")
        self.stream.flush()

    def validation(self, step: int, metrics: dict[str, float]) -> None:
        """Shows validation metrics measured at `step` on a line of their own."""
        self.finish()
        self.stream.write(f"step {step}/{self.total_steps}  validation  "
                          + "  ".join(_fields(metrics)) + "\n")
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.finish()

    def finish(self) -> None:
        """Ends the bar line (on a terminal) so later output starts on a line of its own."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _fields(values: dict[str, float]) -> list[str]:
    return [f"{name} {float(value):.4g}" for name, value in values.items()]


def format_duration(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def run_summary(run_dir, checkpoint: str | None, step: int, metrics: dict[str, float]) -> str:
    """The lines every run ends with: where it is, its last checkpoint, its validation metrics
    (and, on a line of their own, those of a held-out test split: `test_` names), and the
    command that exports it."""
    validation = {k: v for k, v in sorted(metrics.items()) if not k.startswith("test_")}
    test = {k.removeprefix("test_"): v for k, v in sorted(metrics.items()) if k.startswith("test_")}
    lines = [f"Run directory:   {run_dir}",
             f"Last checkpoint: {checkpoint} (step {step})",
             f"Validation:      {'  '.join(_fields(validation))}"]
    if test:
        lines.append(f"Test:            {'  '.join(_fields(test))}")
    lines.append(f"Export it with:  seqzoo export {run_dir}")
    return "\n".join(lines)
