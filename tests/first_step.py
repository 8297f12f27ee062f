"""One distributed training step of a task from given weights, for comparing strategies."""

from seqzoo.training import train_step
from seqzoo.training.strategy import make_strategy


def prepared_step(strategy, task, train_config, weights=None):
    """Prepares `task`, builds its model and optimizer under `strategy` (set to `weights` when
    given) and the training loop's step function; returns `(model, optimizer, step, iterator)`,
    the iterator over the task's distributed training batches."""
    task.prepare()
    with strategy.scope():
        model = task.build_model()
        optimizer = train_step.make_optimizer(train_config)
        optimizer.build(model.trainable_variables)
    if weights is not None:
        model.set_weights(weights)
    iterator = iter(strategy.distribute_datasets_from_function(
        lambda context: task.train_dataset(train_config.batch_size, context)))
    step = train_step.make_train_step(strategy, task, model, optimizer, train_config)
    return model, optimizer, step, iterator


def first_step(strategy_name, task, train_config, weights):
    """Runs one step of the training loop on the task's first batch from `weights` (see
    `prepared_step`); returns `(loss, metrics, weights, strategy)` with plain floats and
    arrays."""
    strategy = make_strategy(strategy_name)
    model, _, step, iterator = prepared_step(strategy, task, train_config, weights)
    loss, metrics = step(iterator)
    return float(loss), {k: float(v) for k, v in metrics.items()}, model.get_weights(), strategy
