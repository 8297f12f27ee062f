"""One distributed training step: forward, loss, gradients, clipping and update on every replica."""

from __future__ import annotations

import keras
import tensorflow as tf

from seqzoo.training import config as run_config

_OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def make_optimizer(train: run_config.TrainConfig) -> keras.optimizers.Optimizer:
    """The optimizer named by `train.optimizer`; gradient clipping is done by the loop."""
    return _OPTIMIZERS[train.optimizer](learning_rate=train.learning_rate)


def make_train_step(strategy, task, model, optimizer, train: run_config.TrainConfig, step=None):
    """Builds the distributed training step.

    Each replica's loss is its per-example losses summed and divided by the global batch size,
    plus `model.losses` divided by the number of replicas, so that the gradients summed across
    replicas equal the gradient of the global-batch mean on one device. A step makes one update
    per loss `task.update_losses` yields (one, from `compute_loss`, unless the task trains in
    chunks, as truncated backpropagation through time does).

    Args:
        strategy: the `tf.distribute.Strategy` the model and optimizer were built under.
        task: the `Task` whose `compute_loss` gives per-example losses and metrics.
        model: the Keras model.
        optimizer: the Keras optimizer, built on `model.trainable_variables`.
        train: loop settings; `batch_size` (global) and `clip_norm` are used.
        step: optional integer variable incremented in the same graph as the update, so a
            checkpoint never pairs weights with the wrong step.

    Returns:
        A `tf.function` taking a distributed iterator and returning `(loss, metrics)`: scalar
        tensors averaged over the global batch (and over the step's updates).

    Example:
        >>> step_fn = make_train_step(strategy, task, model, optimizer, cfg.train)
        >>> loss, metrics = step_fn(iter(distributed_dataset))
    """
    global_batch_size = train.batch_size
    clip_norm = float(train.clip_norm)

    def update(compute_loss):
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            per_example_loss, per_example_metrics = compute_loss()
            loss = tf.nn.compute_average_loss(per_example_loss, global_batch_size=global_batch_size)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        grads = tape.gradient(loss, variables)
        if clip_norm > 0:
            # The optimizer sums gradients across replicas itself, so the norm of the summed
            # gradient is found here and its clipping factor applied to the local parts.
            summed = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, [g for g in grads if g is not None]
            )
            norm = tf.linalg.global_norm(summed)
            factor = clip_norm / tf.maximum(norm, clip_norm)
            grads = [None if g is None else g * factor for g in grads]
        optimizer.apply_gradients(zip(grads, variables))
        metrics = {
            name: tf.nn.compute_average_loss(
                tf.cast(value, loss.dtype), global_batch_size=global_batch_size
            )
            for name, value in per_example_metrics.items()
        }
        return loss, metrics

    def replica_step(batch):
        # One update per loss the task yields (one, unless it trains in chunks); the step
        # reports their mean.
        results = [update(compute_loss)
                   for compute_loss in task.update_losses(model, batch, training=True)]
        return tf.nest.map_structure(lambda *values: tf.add_n(values) / len(values), *results)

    @tf.function
    def train_step(iterator):
        loss, metrics = strategy.run(replica_step, args=(next(iterator),))
        if step is not None:
            step.assign_add(1)
        # One reduce per tensor: MultiWorkerMirroredStrategy fails on a nest of them.
        return tf.nest.map_structure(
            lambda value: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None),
            (loss, metrics),
        )

    return train_step
