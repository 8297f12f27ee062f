"""The `seqzoo demo` path: train the sentiment model, export it, serve it and query it over REST
and gRPC.

The whole path a user takes, in one command: a run directory is trained (or reused), exported as a
versioned SavedModel, served by the built-in model server on loopback, and queried with the same
client code that works against TF Serving.
"""

from __future__ import annotations

import json
import pathlib
import time

DEMO_SENTENCES = (
    "a wonderful film with a moving story",
    "not good at all",
    "the acting was good but the plot was dull",
    "the plot was dull but the acting was wonderful",
    "not bad",
    "hardly a great movie",
)

_EXPORT_RECORD = "exported.json"


def _trained_step(run_dir: pathlib.Path) -> int | None:
    """The step of a finished run's last checkpoint, or None when training is not complete.

    `seqzoo.training.loop.train` writes metrics.json only after the final checkpoint and evaluation.
    """
    import tensorflow as tf

    if not (run_dir / "metrics.json").is_file():
        return None
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def _export_once(run_dir: pathlib.Path, models_dir: pathlib.Path, name: str, step: int) -> pathlib.Path:
    """Exports the run unless this very checkpoint was exported before and is still on disk."""
    from seqzoo.serving.export import export_run

    record = run_dir / _EXPORT_RECORD
    if record.is_file():
        done = json.loads(record.read_text())
        path = pathlib.Path(done["path"])
        if done.get("step") == step and (path / "saved_model.pb").is_file():
            return path
    path = export_run(run_dir, models_dir, name)
    record.write_text(json.dumps({"step": step, "path": str(path)}))
    return path


def run_demo(
    run_dir: str | pathlib.Path = "runs/sentiment",
    models_dir: str | pathlib.Path = "models",
    *,
    host: str = "127.0.0.1",
    rest_port: int = 8501,
    grpc_port: int = 8500,
    retrain: bool = False,
    overrides: list[str] | None = None,
    sentences: tuple[str, ...] = DEMO_SENTENCES,
    out=print,
) -> dict:
    """Trains (or reuses), exports, serves and queries the sentiment model; returns what it printed.

    Returns:
        A dict with the run's `metrics`, the exported `model_path` and, per transport ("rest",
        "grpc"), the list of `(sentence, label, probability)` answered by the server.
    """
    from seqzoo.serving.client import Client
    from seqzoo.serving.server import ModelServer
    from seqzoo.training.loop import train
    from seqzoo.training.run_directory import configure

    run_dir, models_dir = pathlib.Path(run_dir), pathlib.Path(models_dir)
    if retrain:
        # Training with fresh=True removes the run's own files only, never others in run_dir.
        (run_dir / _EXPORT_RECORD).unlink(missing_ok=True)

    # The steps a run needs to be reused: the task's, or the user's --set train.steps.
    wanted = configure("sentiment", overrides=overrides).train.steps
    step = None if retrain else _trained_step(run_dir)
    # The run's own settings, checked against the user's --set (a refusal names --retrain).
    cfg = configure("sentiment", run_dir, overrides=[*(overrides or []), f"train.steps={wanted}"],
                    fresh=retrain, fresh_flag="--retrain")
    if step is None or step < wanted:
        if step is not None:
            out(f"The run in {run_dir} ended at step {step}, short of the demo's {wanted}; "
                "training it on from there.")
        out(f"Training the sentiment model for {cfg.train.steps} steps into {run_dir} ...")
        started = time.perf_counter()
        train(cfg, run_dir, fresh=retrain)
        out(f"Trained in {time.perf_counter() - started:.0f} s.")
        step = _trained_step(run_dir)
    else:
        out(f"Reusing the trained model in {run_dir} (step {step}); pass --retrain to train again.")
    metrics = json.loads((run_dir / "metrics.json").read_text())

    model_path = _export_once(run_dir, models_dir, "sentiment", step)
    out(f"Exported SavedModel: {model_path}")

    server = ModelServer(models_dir=models_dir, host=host, rest_port=rest_port, grpc_port=grpc_port)
    server.start()
    answers = {}
    try:
        out(f"Model server up: REST http://{host}:{server.rest_port}  gRPC {host}:{server.grpc_port}")
        client = Client(host, rest_port=server.rest_port, grpc_port=server.grpc_port)
        try:
            for via in ("rest", "grpc"):
                result = client.predict("sentiment", {"text": list(sentences)}, via=via)
                labels = [_text(label) for label in result["label"]]
                probabilities = result["probabilities"].max(axis=-1)
                answers[via] = list(zip(sentences, labels, probabilities.tolist()))
                out(f"\nover {via.upper()}:")
                for sentence, label, probability in answers[via]:
                    out(f"  {label:>9} {probability:6.3f}  {sentence}")
        finally:
            # An open gRPC channel keeps a polling thread that aborts the process at exit.
            client.close()
    finally:
        server.stop()
        out("\nModel server stopped.")

    accuracy = metrics.get("test_accuracy", metrics.get("accuracy"))
    out(f"held-out test accuracy: {accuracy:.4f}")
    return {"metrics": metrics, "model_path": model_path, **answers}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
