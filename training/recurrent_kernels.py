"""Which kernel the recurrent layers of a model train with on a GPU: cuDNN's or the generic one.

Keras 3 runs an `LSTM` or `GRU` layer on cuDNN's fused kernel when a GPU is visible and the layer's
settings are ones cuDNN computes; otherwise it runs its generic loop of cell steps, several times
slower. The choice is made silently while the step is traced, so the loop states it once.
"""

from __future__ import annotations

import keras

from seqzoo.zoo.layers.hoisted_recurrence import fused_kernel_obstacles


def recurrent_kernels(model: keras.Model) -> dict[str, str]:
    """The kernel each Keras `LSTM` or `GRU` layer of `model` trains with on a GPU.

    Returns:
        Layer name to "cuDNN", or to "generic (...)" naming the settings cuDNN does not
        compute (e.g. "recurrent_dropout=0.2").

    Example:
        >>> recurrent_kernels(keras.Sequential([keras.layers.LSTM(8, recurrent_dropout=0.2)]))
        {'lstm': 'generic (recurrent_dropout=0.2)'}
    """
    kernels = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            reasons = _settings_cudnn_lacks(layer)
            kernels[layer.name] = f"generic ({', '.join(reasons)})" if reasons else "cuDNN"
    return kernels


def _settings_cudnn_lacks(layer) -> list[str]:
    """The settings of a Keras `LSTM`/`GRU` that keep it off cuDNN."""
    return (["use_cudnn=False"] if layer.use_cudnn is False else []) + fused_kernel_obstacles(layer)


def kernel_report(model: keras.Model, gpus: int) -> str | None:
    """The line the loop prints once when training on `gpus` GPUs: which recurrent layers run
    on cuDNN and which on the generic kernel (and why); None without a GPU or a Keras
    recurrent layer.

    Example:
        >>> print(kernel_report(model, gpus=1))
        Recurrent kernels on the GPU: cuDNN for lstm, lstm_1; generic for gru (reset_after=False).
    """
    kernels = recurrent_kernels(model)
    if not gpus or not kernels:
        return None
    cudnn = [name for name, kernel in kernels.items() if kernel == "cuDNN"]
    generic = [f"{name} {kernel[len('generic '):]}" for name, kernel in kernels.items()
               if kernel != "cuDNN"]
    parts = ([f"cuDNN for {', '.join(cudnn)}"] if cudnn else []) + (
        [f"generic for {', '.join(generic)}"] if generic else [])
    return f"Recurrent kernels on the GPU: {'; '.join(parts)}."
