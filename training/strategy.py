"""Distribution strategies by name, and the chief/worker roles of a multi-worker run.

`make_strategy("auto")` picks MultiWorkerMirroredStrategy when `TF_CONFIG` names more than one
worker, MirroredStrategy when there is more than one GPU, and OneDeviceStrategy otherwise.
"""

from __future__ import annotations

import functools
import json
import os

import tensorflow as tf

from seqzoo.training.config import STRATEGIES

_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def _read_tf_config() -> dict | None:
    """Parses `TF_CONFIG`; None when it is unset, ValueError when it is malformed."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"TF_CONFIG is not valid JSON ({err}); expected e.g. {_TF_CONFIG_EXAMPLE}."
        ) from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if (
        not isinstance(cluster, dict)
        or not cluster
        or not all(isinstance(v, list) and v for v in cluster.values())
        or not isinstance(task, dict)
        or task.get("type") not in cluster
        or not isinstance(task.get("index"), int)
        or not 0 <= task["index"] < len(cluster[task["type"]])
    ):
        raise ValueError(
            "TF_CONFIG must hold a 'cluster' mapping each job name to a non-empty list of "
            "host:port addresses and a 'task' with a 'type' from the cluster and an 'index' into "
            f"its list, e.g. {_TF_CONFIG_EXAMPLE}; received {text}."
        )
    return spec


def _cluster_size(spec: dict | None) -> int:
    if spec is None:
        return 0
    return sum(len(spec["cluster"].get(job, [])) for job in ("chief", "worker"))


def _local_devices() -> list[str]:
    """All local GPUs, or all logical CPUs when there is no GPU."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def make_strategy(name: str = "auto", worker_timeout: int = 30) -> tf.distribute.Strategy:
    """Builds the distribution strategy called `name`.

    Args:
        name: "auto", "one_device", "mirrored" (all local GPUs, or all logical CPUs without a
            GPU) or "multi_worker_mirrored" (cluster from the `TF_CONFIG` environment variable).
        worker_timeout: for "multi_worker_mirrored", the seconds a worker may miss the
            heartbeats of TensorFlow's coordination service before the others' collectives
            fail (`tf.errors.UnavailableError`) instead of waiting for it.

    Returns:
        A `tf.distribute.Strategy`. Build the model and optimizer inside its `scope()`.

    Example:
        >>> strategy = make_strategy("one_device")
        >>> strategy.num_replicas_in_sync
        1
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; accepted: {', '.join(STRATEGIES)}.")
    return _build_strategy(name, os.environ.get("TF_CONFIG", ""), worker_timeout)


@functools.lru_cache(maxsize=None)
def _build_strategy(name: str, tf_config: str, worker_timeout: int) -> tf.distribute.Strategy:
    """One strategy per name and cluster for the whole process.

    Two MirroredStrategy instances in one process hand out the same collective instance keys, so
    a second run with a model of another size fails with a collective shape mismatch; and
    MultiWorkerMirroredStrategy may only be created once per process. `tf_config` is part of the
    cache key so that a changed cluster is not served a stale strategy.
    """
    del tf_config
    if name == "auto":
        if _cluster_size(_read_tf_config()) > 1:
            name = "multi_worker_mirrored"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "one_device"
    if name == "multi_worker_mirrored":
        if _read_tf_config() is None:
            raise ValueError(
                "Strategy multi_worker_mirrored needs the TF_CONFIG environment variable "
                f"describing the cluster and this worker's role, e.g. {_TF_CONFIG_EXAMPLE}."
            )
        _configure_coordination_service(worker_timeout)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=_local_devices())
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def _configure_coordination_service(worker_timeout: int) -> None:
    """The coordination service MultiWorkerMirroredStrategy starts, with heartbeats that time
    out after `worker_timeout` seconds (TensorFlow's default is 10).

    When a worker misses them, the service reports it to the others, whose collectives then
    fail instead of waiting for it forever. The strategy configures the service itself only
    when nothing did before; this is its configuration (a standalone service led by the chief,
    over the chief and worker jobs) with the timeout set, through TensorFlow's internal API as
    the strategy does, since no public one exists.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    cluster = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster),
        heartbeat_timeout_in_ms=worker_timeout * 1000,
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster.num_tasks(job))
            for job in ("chief", "worker") if job in cluster.jobs
        ],
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one process that writes checkpoints, logs and metrics of a run."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_id(strategy: tf.distribute.Strategy) -> str:
    """A name of this process within the cluster, e.g. "worker1" ("local" outside a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return "local"
    return f"{resolver.task_type}{resolver.task_id}"


def check_workers_agree(strategy: tf.distribute.Strategy, restored_step: int) -> None:
    """Fails fast, instead of hanging in a collective, when workers resume at different steps."""
    if getattr(strategy, "cluster_resolver", None) is None:
        return
    # All equal exactly when n * sum(x^2) == sum(x)^2 (the variance is zero).
    moments = strategy.run(lambda: tf.constant([restored_step, restored_step**2], tf.int64))
    total, total_square = strategy.reduce(tf.distribute.ReduceOp.SUM, moments, axis=None).numpy()
    if strategy.num_replicas_in_sync * int(total_square) != int(total) ** 2:
        raise ValueError(
            f"The workers restored different steps (this one: {restored_step}). Every worker "
            "resumes from the chief's checkpoints, so --run-dir must be on storage that all "
            "workers share."
        )
