"""Saving and restoring a run's model, optimizer and step, never a broken one."""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import tensorflow as tf


class Checkpoints:
    """The checkpoints of one training run: restore the newest, save every so often.

    Model, optimizer and the step counter are saved together, so a resumed run continues with
    the same optimizer state at the step it stopped. `save` refuses weights that became NaN or
    infinite, so the last checkpoint is always one worth resuming from.

    Args:
        model: the Keras model.
        optimizer: its optimizer (built), or None to restore the model alone (export).
        step: the integer step variable the train step increments, or None.
        directory: where `save` writes; None for a restore-only instance.
        keep: how many checkpoints `save` keeps.
        state: other trackable objects saved and restored with the step, by name (e.g. the
            loop's `EarlyStopping`).

    Example:

    >>> checkpoints = Checkpoints(model, optimizer, step, "runs/toy/checkpoints", keep=3)
    >>> checkpoints.restore_latest("runs/toy/checkpoints")
    'runs/toy/checkpoints/ckpt-40'
    >>> checkpoints.save()   # ckpt-<step>
    """

    def __init__(self, model, optimizer=None, step=None, directory=None, keep: int = 3,
                 state=None):
        self.model = model
        self.step = step
        objects = {"model": model}
        if optimizer is not None:
            objects["optimizer"] = optimizer
        if step is not None:
            objects["step"] = step
        self._checkpoint = tf.train.Checkpoint(**objects, **(state or {}))
        # Restored on their own, so that a checkpoint written before they were saved still
        # restores (they keep their initial values) while the model must match exactly.
        self._required = tf.train.Checkpoint(**objects)
        self._state = tf.train.Checkpoint(**state) if state else None
        self._manager = None if directory is None else tf.train.CheckpointManager(
            self._checkpoint, str(directory), max_to_keep=keep)
        # The step of the newest checkpoint on disk (restored or saved), None before any.
        self.saved_step = None

    @property
    def current_step(self) -> int:
        return int(self.step.numpy())

    def restore_latest(self, directory) -> str | None:
        """Restores the newest checkpoint in `directory`; returns its path, or None if there
        is none."""
        latest = tf.train.latest_checkpoint(str(pathlib.Path(directory)))
        if latest is None:
            return None
        try:
            # Partial: a restore-only instance loads the model without the optimizer's slots.
            self._required.restore(latest).expect_partial().assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as err:
            raise ValueError(
                f"Checkpoint {latest!r} does not match the model built from the run's "
                f"config.yaml (was the model config changed?): {err}"
            ) from None
        if self._state is not None:
            self._state.restore(latest).expect_partial()
        if self.step is not None:
            self.saved_step = self.current_step
        return latest

    def save(self) -> str | None:
        """Saves the current step unless it is already on disk; returns the checkpoint path
        (None when nothing was trained yet: step 0 has nothing worth saving).

        Raises:
            ValueError: a weight is NaN or infinite (nothing is saved).
        """
        step = self.current_step
        if step == 0 or step == self.saved_step:
            return self.latest_path
        for weight in self.model.weights:
            if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight))):
                raise ValueError(
                    f"Weight {weight.path!r} became NaN or infinite at step {step}; the run was "
                    "stopped and the last good checkpoint kept. Lower train.learning_rate or set "
                    "train.clip_norm."
                )
        self._manager.save(checkpoint_number=step)
        self.saved_step = step
        return self.latest_path

    @property
    def latest_path(self) -> str | None:
        """The newest checkpoint this run wrote or restored, or None."""
        if self.saved_step is None:
            return None
        return self._manager.latest_checkpoint if self._manager else None
