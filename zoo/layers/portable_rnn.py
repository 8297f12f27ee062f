"""Keeping cuDNN kernels out of exported SavedModels, so they also serve on CPU-only machines.

Keras 3 picks the cuDNN kernel of `LSTM`/`GRU` (a `CudnnRNNV3` op, GPU only) at trace time
whenever a GPU is visible. Training wants that; a SavedModel holding it cannot serve on CPU.
`tf.saved_model.save` traces every function it writes (signatures, and the default signature
Keras attaches to each model) inside its save context, so layers that trace their recurrent
sublayers under `cudnn_disabled(...)` while `exporting()` export portable graphs.
"""

from __future__ import annotations

import contextlib

from tensorflow.python.saved_model import save_context


def exporting() -> bool:
    """Whether `tf.saved_model.save` is tracing functions right now."""
    return save_context.in_save_context()


@contextlib.contextmanager
def cudnn_disabled(layer):
    """Within the block, every Keras `LSTM`/`GRU` inside `layer` traces its generic kernel.

    The layers' `use_cudnn` settings are restored on exit; weights are shared, so outputs are
    the same with either kernel.

    Args:
        layer: a Keras layer or model; it and all its nested layers are visited.

    Example:

    >>> with cudnn_disabled(model):
    ...     concrete = tf.function(model).get_concrete_function(spec)
    """
    layers = [sub for sub in layer._flatten_layers(include_self=True, recursive=True)
              if hasattr(sub, "use_cudnn")]
    saved = [sub.use_cudnn for sub in layers]
    try:
        for sub in layers:
            sub.use_cudnn = False
        yield layer
    finally:
        for sub, value in zip(layers, saved):
            sub.use_cudnn = value
