"""One distributed training step of a task from given weights, for comparing strategies."""

from seqzoo.training import train_step
from seqzoo.training.strategy import make_strategy


def first_step(strategy_name, task, train_config, weights):
    """Builds `task`'s model and optimizer under the strategy, sets `weights`, runs one step of
    the training loop on the task's first batch; returns `(loss, metrics, weights, strategy)`
    with plain floats and arrays."""
    strategy = make_strategy(strategy_name)
    task.prepare()
    with strategy.scope():
        model = task.build_model()
        optimizer = train_step.make_optimizer(train_config)
        optimizer.build(model.trainable_variables)
    model.set_weights(weights)
    dataset = strategy.distribute_datasets_from_function(
        lambda context: task.train_dataset(train_config.batch_size, context))
    step = train_step.make_train_step(strategy, task, model, optimizer, train_config)
    loss, metrics = step(iter(dataset))
    return float(loss), {k: float(v) for k, v in metrics.items()}, model.get_weights(), strategy
