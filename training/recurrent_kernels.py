"""Which kernel each recurrent layer of a model trains with: cuDNN's, the zoo's hoisted one, or
Keras's generic loop.

Keras 3 runs an `LSTM` or `GRU` layer on cuDNN's fused kernel when a GPU is visible and the layer's
settings are ones cuDNN computes; otherwise it runs its generic loop of cell steps. The zoo's
`LSTM` and `GRU` (`seqzoo.zoo.layers`) run cuDNN in the same cases and, in the others, their
hoisted kernel when the settings allow (`seqzoo.zoo.layers.hoisted_recurrence`). The choice is made
silently while the step is traced, several times apart in speed, so `seqzoo train` states it once.
"""

from __future__ import annotations

import keras

from seqzoo.zoo.layers.gru import GRU
from seqzoo.zoo.layers.hoisted_recurrence import fused_kernel_obstacles
from seqzoo.zoo.layers.lstm import LSTM

CUDNN, HOISTED, GENERIC = "cuDNN", "hoisted", "Keras generic"


def recurrent_kernels(model: keras.Model, gpus: int) -> dict[str, str]:
    """The kernel each recurrent layer of `model` trains with on a machine with `gpus` GPUs.

    Returns:
        Layer name to "cuDNN", "hoisted" (the zoo's CPU kernel), or "Keras generic (...)" with
        why: the settings the fused kernels do not compute (e.g. "recurrent_dropout=0.2"),
        Keras's own layer class, or a cell no fused kernel exists for.

    Example:
        >>> recurrent_kernels(keras.Sequential([LSTM(8), keras.layers.LSTM(8)]), gpus=0)
        {'lstm': 'hoisted', 'lstm_1': 'Keras generic (keras.layers.LSTM)'}
    """
    return {layer.name: _kernel(layer, gpus)
            for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.RNN)}


def _kernel(layer: keras.layers.RNN, gpus: int) -> str:
    if not isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
        return f"{GENERIC} ({type(layer.cell).__name__})"
    obstacles = fused_kernel_obstacles(layer)
    off_cudnn = (["use_cudnn=False"] if layer.use_cudnn is False else []) + obstacles
    if layer.use_cudnn is True or (gpus and not off_cudnn):
        return CUDNN
    if isinstance(layer, (LSTM, GRU)) and not obstacles:
        return HOISTED
    reasons = (off_cudnn if gpus else obstacles) or [f"keras.layers.{type(layer).__name__}"]
    return f"{GENERIC} ({', '.join(reasons)})"


def kernel_report(model: keras.Model, gpus: int) -> str | None:
    """The line `seqzoo train` prints once: the kernel each recurrent layer of `model` trains
    with on `gpus` GPUs (or the CPU), layers grouped by kernel; None without recurrent layers.

    Example:
        >>> print(kernel_report(model, gpus=0))
        Recurrent kernels on the CPU: hoisted for forward_gru, backward_gru; Keras generic for
        dropped (recurrent_dropout=0.2).
    """
    kernels = recurrent_kernels(model, gpus)
    if not kernels:
        return None
    groups = {}
    for name, kernel in kernels.items():
        label, _, reason = kernel.partition(" (")
        groups.setdefault(label, []).append(f"{name} ({reason}" if reason else name)
    device = "the CPU" if not gpus else "the GPU" if gpus == 1 else f"{gpus} GPUs"
    return (f"Recurrent kernels on {device}: "
            + "; ".join(f"{label} for {', '.join(names)}" for label, names in groups.items()) + ".")
