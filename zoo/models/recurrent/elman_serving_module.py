"""The serving signature of Elman networks trained on the long-time-lag problems."""

from __future__ import annotations

import tensorflow as tf

PROBLEMS = ("adding", "copy", "echo")


class ElmanServingModule(tf.Module):
    """Wraps an `ElmanNetwork` in the `serving_default` signature it is exported with.

    Args:
        model: the trained `ElmanNetwork`.
        problem: what it was trained on: `"adding"` (the network ends in one linear output, the
            predicted sum), `"copy"` (its softmax outputs at the last `num_symbols` steps are
            the recalled symbols) or `"echo"` (one linear output per step, the echoed value).
        features: input features per step (2 for the adding problem, `alphabet + 2` for copy,
            1 for echo).
        num_symbols: symbols recalled by the copy problem (unused for adding).
        name: optional module name.

    Signature `serving_default` (also `.serve`):
        inputs: `sequences`, float32 `[batch, time, features]`.
        outputs for "adding": `sum`, float32 `[batch]`.
        outputs for "copy": `symbols`, int64 `[batch, num_symbols]` (symbol index from 0) and
            `probabilities`, float32 `[batch, num_symbols, alphabet]`.
        outputs for "echo": `echo`, float32 `[batch, time]`.

    Example:

    >>> module = ElmanServingModule(model, "adding", features=2)
    >>> tf.saved_model.save(module, "export/1", signatures=module.signatures)
    >>> module.serve(tf.constant(x))["sum"]      # x: [batch, time, 2]
    """

    def __init__(self, model, problem, features, num_symbols=3, name=None):
        if problem not in PROBLEMS:
            raise ValueError(f"Unknown problem {problem!r}; accepted: {', '.join(PROBLEMS)}.")
        super().__init__(name=name)
        self.model = model
        self.problem = problem
        self.num_symbols = num_symbols
        self.serve = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([None, None, features], tf.float32, name="sequences")],
        )

    @property
    def signatures(self):
        """`{"serving_default": self.serve}`; a property, as SavedModel reserves the name."""
        return {"serving_default": self.serve}

    def _serve(self, sequences):
        outputs = tf.cast(self.model(sequences, training=False), tf.float32)
        if self.problem == "adding":
            return {"sum": outputs[:, 0]}
        if self.problem == "echo":
            return {"echo": outputs[..., 0]}
        probabilities = outputs[:, -self.num_symbols:]
        return {"symbols": tf.argmax(probabilities, axis=-1), "probabilities": probabilities}
