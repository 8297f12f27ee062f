"""Shared test setup: quiet TensorFlow, two logical CPU devices, seeded randomness, and a small
translation run and a small captioning run (each trained two steps and exported once) for the
tests of their exports and tools."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs so MirroredStrategy can be tested without GPUs; this must happen before any op.
_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
except RuntimeError:
    pass


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture(scope="session")
def dates_translation(tmp_path_factory):
    """`(run_dir, models_dir)`: a tiny date translator trained two steps (learning is tested in
    tests/training/test_translation_task.py) and exported once as `models_dir/dates/1`, beam
    width 3. Shared by the tests of the export, the server and `seqzoo attention`."""
    from seqzoo.serving.export import export_run
    from seqzoo.training import loop, run_directory

    root = tmp_path_factory.mktemp("dates_translation")
    config = run_directory.configure("translation", root / "run", overrides=[
        "data=builtin:dates", "train.steps=2", "train.batch_size=8", "model.units=8",
        "model.embedding_dim=8", "model.num_train=300", "model.num_validation=4",
        "model.eval_beam=false", "model.max_target_length=12", "model.beam_width=3",
    ])
    loop.train(config, root / "run", progress=False)
    export_run(root / "run", root / "models", "dates")
    return root / "run", root / "models"


@pytest.fixture(scope="session")
def shapes_captioner(tmp_path_factory):
    """`(run_dir, models_dir)`: a tiny captioner of the built-in shapes pictures, trained two
    steps (the task's `tiny_run`; learning is tested in tests/training/tasks/
    test_captioning_task.py) and exported once as `models_dir/shapes/1`, beam width 3, 32-pixel
    pictures read into an 8x8 grid. Shared by the tests of the export, the server and
    `seqzoo attention`."""
    from seqzoo.serving.export import export_run
    from seqzoo.training import loop, run_directory
    from seqzoo.training.tasks.captioning import CaptioningTask

    root = tmp_path_factory.mktemp("shapes_captioner")
    config = run_directory.configure("captioning", root / "run", overrides=[
        *CaptioningTask.tiny_run, "model.beam_width=3", "model.num_validation=6"])
    loop.train(config, root / "run", progress=False)
    export_run(root / "run", root / "models", "shapes")
    return root / "run", root / "models"
