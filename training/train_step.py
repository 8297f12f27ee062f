"""One distributed training step: forward, loss, gradients, clipping and update on every replica."""

from __future__ import annotations

import contextlib
import math

import keras
import tensorflow as tf

from seqzoo.training import config as run_config

_OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def make_optimizer(train: run_config.TrainConfig) -> keras.optimizers.Optimizer:
    """The optimizer named by `train.optimizer`, wrapped in a `LossScaleOptimizer` (dynamic
    loss scaling) under `train.mixed_precision="mixed_float16"`, whose narrow exponent lets
    small gradients underflow to zero; gradient clipping is done by the train step."""
    optimizer = _OPTIMIZERS[train.optimizer](learning_rate=train.learning_rate)
    if train.mixed_precision == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


@contextlib.contextmanager
def precision_policy(name: str):
    """Within the block, Keras layers are built with the dtype policy `name` ("float32",
    "mixed_float16" or "mixed_bfloat16": float32 variables, computations in the narrow type).

    Only building reads the policy: a model built inside computes in it afterwards too, while
    one restored later for export (built outside) is all float32.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def make_train_step(strategy, task, model, optimizer, train: run_config.TrainConfig, step=None):
    """Builds the distributed training step, which runs several steps per call.

    Each replica's loss is its per-example losses summed and divided by the global batch size,
    plus `model.losses` divided by the number of replicas, so that the gradients summed across
    replicas equal the gradient of the global-batch mean on one device. A step makes one update
    per loss `task.update_losses` yields (one, from `compute_loss`, unless the task trains in
    chunks, as truncated backpropagation through time does). With `train.accumulation_steps`
    above 1, the one update sums the gradients of that many micro-batches, computed in turn.

    One call runs up to `steps` steps in a single `tf.function` (a graph loop), so the host
    neither dispatches nor waits on each step; the steps stop early after a
    step whose loss is NaN or infinite, so that `step` then names that step. With
    `train.jit_compile`, each replica's step is compiled by XLA.

    Args:
        strategy: the `tf.distribute.Strategy` the model and optimizer were built under.
        task: the `Task` whose `compute_loss` gives per-example losses and metrics.
        model: the Keras model.
        optimizer: the Keras optimizer, built on `model.trainable_variables`.
        train: loop settings; `batch_size` (global), `accumulation_steps`, `clip_norm`,
            `jit_compile` and `steps_per_execution` are used. Sparse gradients are applied
            dense.
            A `LossScaleOptimizer` (see `make_optimizer`) scales the loss.
        step: optional integer variable incremented in the same graph as each update, so a
            checkpoint never pairs weights with the wrong step.

    Returns:
        A function taking a distributed iterator and a number of steps (default 1) and
        returning `(loss, metrics)`: scalar tensors averaged over the global batch, the step's
        updates and the steps run.

    Example:
        >>> step_fn = make_train_step(strategy, task, model, optimizer, cfg.train)
        >>> loss, metrics = step_fn(iter(distributed_dataset), steps=10)
    """
    global_batch_size = train.batch_size
    clip_norm = float(train.clip_norm)
    loss_scaling = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    accumulation = train.accumulation_steps

    def gradients(compute_loss, share):
        """This replica's share of the step's loss, metrics and (scaled) gradients, from the
        `share` of the batch `compute_loss` sees."""
        with tf.GradientTape() as tape:
            per_example_loss, per_example_metrics = compute_loss()
            # Summed in float32 under mixed precision too.
            loss = tf.nn.compute_average_loss(tf.cast(per_example_loss, tf.float32),
                                              global_batch_size=global_batch_size)
            if model.losses:
                loss += share * tf.nn.scale_regularization_loss(
                    tf.add_n([tf.cast(value, tf.float32) for value in model.losses]))
            # The loss scale optimizer divides the gradients by the same scale before updating
            # (and skips updates whose gradients overflowed).
            scaled_loss = optimizer.scale_loss(loss) if loss_scaling else loss
        metrics = {
            name: tf.nn.compute_average_loss(
                tf.cast(value, loss.dtype), global_batch_size=global_batch_size
            )
            for name, value in per_example_metrics.items()
        }
        return loss, metrics, tape.gradient(scaled_loss, model.trainable_variables)

    def apply(grads):
        # Sparse gradients (an Embedding's, a row per token) are made dense, for two reasons.
        # Replicas sum gradients with collective ops, and in the graph loop of several steps per
        # call each runs as one collective instance whose shape TensorFlow fixes on its first
        # run, while a sparse gradient's changes with the number of tokens. And Keras's
        # optimizers update a sparse gradient's repeated rows one by one (Adam's moments then
        # differ from the summed gradient's), so one device and several replicas would not take
        # the same step.
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                 for g in grads]
        if loss_scaling and strategy.num_replicas_in_sync > 1:
            grads = _skip_together(grads)
        if clip_norm > 0:
            # The optimizer sums gradients across replicas itself, so the norm of the summed
            # gradient is found here and its clipping factor applied to the local parts.
            summed = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, [g for g in grads if g is not None]
            )
            norm = tf.linalg.global_norm(summed)
            if loss_scaling:
                norm /= tf.cast(optimizer.dynamic_scale, norm.dtype)
            factor = clip_norm / tf.maximum(norm, clip_norm)
            grads = [None if g is None else _scaled(g, factor) for g in grads]
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    def update(compute_loss):
        loss, metrics, grads = gradients(compute_loss, 1.0)
        apply(grads)
        return loss, metrics

    def accumulated_update(batch):
        size = tf.shape(tf.nest.flatten(batch)[0])[0] // accumulation

        def micro_batch(index):
            part = tf.nest.map_structure(lambda t: t[index * size:(index + 1) * size], batch)
            losses = list(task.update_losses(model, part, training=True))
            if len(losses) != 1:
                raise ValueError(
                    f"train.accumulation_steps={accumulation} needs one update per step; task "
                    f"{task.name!r} makes {len(losses)} (it trains in chunks): set "
                    "train.accumulation_steps=1."
                )
            return gradients(losses[0], 1.0 / accumulation)

        loss, metrics, grads = micro_batch(0)
        # Sparse gradients are added up dense (see `apply`); variables without a gradient stay
        # without one.
        present = [g is not None for g in grads]
        sums = [tf.convert_to_tensor(g) for g in grads if g is not None]
        # A graph loop, so the micro-batches run one after the other, never all at once.
        for index in tf.range(1, accumulation):
            more_loss, more_metrics, more_grads = micro_batch(index)
            loss += more_loss
            metrics = tf.nest.map_structure(tf.add, metrics, more_metrics)
            sums = [total + tf.convert_to_tensor(g)
                    for total, g in zip(sums, [g for g in more_grads if g is not None])]
        parts = iter(sums)
        apply([next(parts) if has else None for has in present])
        return loss, metrics

    def replica_step(batch):
        if accumulation > 1:
            return accumulated_update(batch)
        # One update per loss the task yields (one, unless it trains in chunks); the step
        # reports their mean.
        results = [update(compute_loss)
                   for compute_loss in task.update_losses(model, batch, training=True)]
        return tf.nest.map_structure(lambda *values: tf.add_n(values) / len(values), *results)

    replica_fn = tf.function(replica_step, jit_compile=uses_xla(strategy, model, train))

    def one_step(iterator):
        loss, metrics = strategy.run(replica_fn, args=(next(iterator),))
        if step is not None:
            step.assign_add(1)
        # One reduce per tensor: MultiWorkerMirroredStrategy fails on a nest of them.
        return tf.nest.map_structure(
            lambda value: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None),
            (loss, metrics),
        )

    @tf.function
    def train_steps(iterator, count):
        totals = one_step(iterator)
        done = tf.constant(1)
        while done < count and tf.math.is_finite(totals[0]):
            totals = tf.nest.map_structure(tf.add, totals, one_step(iterator))
            done += 1
        return tf.nest.map_structure(lambda total: total / tf.cast(done, total.dtype), totals)

    def run(iterator, steps=1):
        # A tensor, so that calls of any length share one trace.
        return train_steps(iterator, tf.constant(steps, tf.int32))

    return run


def _skip_together(grads):
    """This replica's (scaled) gradients, all NaN when any replica's are not finite.

    `LossScaleOptimizer` skips an update whose gradients overflowed, but it decides on the
    gradients of one replica per worker, before they are summed: a replica whose part
    overflowed would be outvoted (and its infinities applied), and workers deciding differently
    would leave one of them waiting for the others' all-reduce. Spreading any replica's
    overflow to all makes every replica, on every worker, skip the same steps.
    """
    present = [g for g in grads if g is not None]
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in present])
    overflows = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(finite), tf.float32))
    factor = tf.where(overflows > 0, tf.constant(math.nan, tf.float32), 1.0)
    return [None if g is None else _scaled(g, factor) for g in grads]


def _scaled(gradient, factor):
    """A gradient times the float32 scalar `factor` (in the gradient's dtype)."""
    return gradient * tf.cast(factor, gradient.dtype)


def uses_xla(strategy, model, train: run_config.TrainConfig) -> bool:
    """Whether the step is compiled by XLA: `train.jit_compile` "on", or "auto" where XLA can
    compile it (one replica per worker, since XLA cannot compile the cross-replica sums of
    gradient clipping, and no layer, such as a `StringLookup`, that XLA cannot compile).

    Raises:
        ValueError: `train.jit_compile` is "on" but a layer cannot be compiled.
    """
    if train.jit_compile == "off":
        return False
    unsupported = sorted({type(layer).__name__ for layer in model._flatten_layers()
                          if not layer.supports_jit})
    if train.jit_compile == "on" and unsupported:
        raise ValueError(
            f"train.jit_compile=on, but XLA cannot compile the model's {', '.join(unsupported)} "
            "layer(s); set train.jit_compile to auto or off."
        )
    return train.jit_compile == "on" or (
        strategy.num_replicas_in_sync == 1 and not unsupported)
