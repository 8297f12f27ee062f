"""Keeps TensorFlow's log lines out of a command's output.

TensorFlow's C++ side writes to file descriptor 2 while its shared libraries load, before its
logging is set up: lines such as `I0000 ... cudart_stub.cc:31] Could not find cuda drivers` and
`WARNING: All log messages before absl::InitializeLog() is called are written to STDERR` appear
whatever TF_CPP_MIN_LOG_LEVEL says, and Python cannot catch them with `sys.stderr`. So the first
import of TensorFlow runs with file descriptor 2 pointed at /dev/null; after it, the log level
TensorFlow reads from TF_CPP_MIN_LOG_LEVEL (3: none, which also hides the `failed call to cuInit`
error of machines without a GPU) and Python's loggers of TensorFlow and absl (errors only) keep the
rest out. Errors still reach the user: as exceptions, with TensorFlow's message.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys


@contextlib.contextmanager
def _stderr_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _SilentLoader(importlib.abc.Loader):
    """The loader of the `tensorflow` package, running its module code with fd 2 silenced."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _stderr_to_devnull():
            self._loader.exec_module(module)


class _SilentTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, once, and hands it to `_SilentLoader`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _SilentLoader(spec.loader)
        return spec


def quiet_tensorflow_logs() -> None:
    """Hides TensorFlow's log lines from now on in this process (and its children).

    Call it before TensorFlow is imported: lines written while it loads cannot be hidden later.
    It sets TF_CPP_MIN_LOG_LEVEL to 3 even where the environment says otherwise (the Dockerfile
    and many setups say 2, which lets `failed call to cuInit` through): whoever wants
    TensorFlow's logs leaves this function out (`seqzoo --verbose`).
    """
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    already = any(isinstance(finder, _SilentTensorFlowImport) for finder in sys.meta_path)
    if "tensorflow" not in sys.modules and not already:
        sys.meta_path.insert(0, _SilentTensorFlowImport())
