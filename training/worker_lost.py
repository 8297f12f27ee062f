"""The error a worker of a multi-worker run stops with when another one stopped responding."""


class WorkerLost(RuntimeError):
    """Another worker of the run stopped responding (it died, or its machine did), so this one
    stopped too rather than wait for it; the message names the worker and the step every worker
    resumes from once all of them are restarted.

    Example:

    >>> raise WorkerLost("worker 1 stopped responding; restart all workers to resume from step 40.")
    """
