"""Which kernel each recurrent layer of a model trains with: cuDNN's, the zoo's hoisted one, or
Keras's generic loop.

Keras 3 runs an `LSTM` or `GRU` layer on cuDNN's fused kernel when a GPU is visible and the layer's
settings are ones cuDNN computes; otherwise it runs its generic loop of cell steps. The zoo's
`LSTM` and `GRU` (`seqzoo.zoo.layers`) run cuDNN in the same cases and, in the others, their
hoisted kernel when the settings allow (`seqzoo.zoo.layers.hoisted_recurrence`), whose loops are
XLA-compiled or not depending on the shapes the step is traced with. The choice is made while the
step is traced, several times apart in speed, so `seqzoo train` states it once; for the hoisted
kernel, in the words the layers log as they trace (`reported_kernels`).
"""

from __future__ import annotations

import contextlib
import logging

import keras

from seqzoo.zoo.layers import hoisted_recurrence
from seqzoo.zoo.layers.gru import GRU
from seqzoo.zoo.layers.hoisted_recurrence import fused_kernel_obstacles
from seqzoo.zoo.layers.lstm import LSTM

CUDNN, HOISTED, GENERIC = "cuDNN", "hoisted", "Keras generic"


@contextlib.contextmanager
def reported_kernels():
    """Within the block, collects the kernels the zoo's recurrent layers log as a step traces.

    Yields:
        A dict filled in as they log: layer class name (e.g. "LSTM") to the set of kernels its
        layers reported (e.g. {"hoisted-projection CPU, XLA-compiled loops"}). The layers log
        each kernel once per process, so a later run in the same process finds it empty.

    Example:
        >>> with reported_kernels() as reported:
        ...     loss, metrics = train_step(batches)
        >>> reported
        {'GRU': {'hoisted-projection CPU, XLA-compiled loops'}}
    """
    reported = {}

    class Collect(logging.Handler):
        def emit(self, record):
            layer_class, kernel = record.args
            reported.setdefault(layer_class, set()).add(kernel)

    logger = logging.getLogger(hoisted_recurrence.__name__)
    handler, level, propagate = Collect(), logger.level, logger.propagate
    # The report goes to the command's own output; TensorFlow's log only with --verbose.
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield reported
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def recurrent_kernels(model: keras.Model, gpus: int,
                      reported: dict[str, set[str]] | None = None) -> dict[str, str]:
    """The kernel each recurrent layer of `model` trains with on a machine with `gpus` GPUs.

    Args:
        model: the Keras model.
        gpus: the number of GPUs.
        reported: what the layers logged while the step traced (see `reported_kernels`), which
            names the hoisted kernel's variant (its loops XLA-compiled or not).

    Returns:
        Layer name to "cuDNN", the hoisted kernel (the zoo's CPU kernel: the variant its layer
        class reported, "hoisted" without a report), or "Keras generic (...)" with why: the
        settings the fused kernels do not compute (e.g. "recurrent_dropout=0.2"), Keras's own
        layer class, or a cell no fused kernel exists for.

    Example:
        >>> recurrent_kernels(keras.Sequential([LSTM(8), keras.layers.LSTM(8)]), gpus=0)
        {'lstm': 'hoisted', 'lstm_1': 'Keras generic (keras.layers.LSTM)'}
    """
    return {layer.name: _kernel(layer, gpus, reported or {})
            for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.RNN)}


def _kernel(layer: keras.layers.RNN, gpus: int, reported: dict[str, set[str]]) -> str:
    if not isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
        return f"{GENERIC} ({type(layer.cell).__name__})"
    obstacles = fused_kernel_obstacles(layer)
    off_cudnn = (["use_cudnn=False"] if layer.use_cudnn is False else []) + obstacles
    if layer.use_cudnn is True or (gpus and not off_cudnn):
        return CUDNN
    if isinstance(layer, (LSTM, GRU)) and not obstacles:
        variants = sorted(kernel for kernel in reported.get(type(layer).__name__, ())
                          if kernel != CUDNN and not kernel.startswith(GENERIC))
        return " or ".join(variants) or HOISTED
    reasons = (off_cudnn if gpus else obstacles) or [f"keras.layers.{type(layer).__name__}"]
    return f"{GENERIC} ({', '.join(reasons)})"


def kernel_report(model: keras.Model, gpus: int,
                  reported: dict[str, set[str]] | None = None) -> str | None:
    """The line `seqzoo train` prints once: the kernel each recurrent layer of `model` trains
    with on `gpus` GPUs (or the CPU), layers grouped by kernel, the hoisted kernel named as the
    layers `reported` it; None without recurrent layers.

    Example:
        >>> print(kernel_report(model, gpus=0, reported))
        Recurrent kernels on the CPU: hoisted-projection CPU, XLA-compiled loops for
        forward_gru, backward_gru; Keras generic for dropped (recurrent_dropout=0.2).
    """
    kernels = recurrent_kernels(model, gpus, reported)
    if not kernels:
        return None
    groups = {}
    for name, kernel in kernels.items():
        label, _, reason = kernel.partition(" (")
        groups.setdefault(label, []).append(f"{name} ({reason}" if reason else name)
    device = "the CPU" if not gpus else "the GPU" if gpus == 1 else f"{gpus} GPUs"
    return (f"Recurrent kernels on {device}: "
            + "; ".join(f"{label} for {', '.join(names)}" for label, names in groups.items()) + ".")
