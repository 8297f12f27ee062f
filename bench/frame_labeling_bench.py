"""Frame labeling: what the temporal model buys, and frames per second in process and served.

Table 1 trains three models with the same budget on the built-in videos (the task's default
settings, so the first row is `seqzoo train frame_labeling`): the bidirectional model, the
unidirectional one (online labeling) and a per-frame classifier without recurrence. It reports
held-out frame accuracy, accuracy on the first frame of each segment (whose motion only the
next frame shows) and inside segments, the segmental edit score and F1@{10,25,50}, each with
its ratio to the bidirectional model, and the training time.

Table 2 exports the bidirectional model and measures frames per second of `serving_default`
(uint8 frames) on batches of `--videos` videos of several lengths: called in process on the
loaded SavedModel, and through the model server over REST and gRPC; and of `encoded` (PNG
frames, base64 in the JSON) over REST. Ratios compare each path with in process at the same
length.

    python -m bench frame_labeling [--steps N] [--lengths 32,128,512] [--videos 4]
                                   [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

import numpy as np
import tensorflow as tf

from bench.timing import interleaved_rates, train_quietly

MODELS = ("bidirectional", "unidirectional", "none")
QUICK_OVERRIDES = ["model.num_train=16", "model.num_validation=8", "model.min_frames=10",
                   "model.max_frames=16", "model.units=8", "model.embedding_dim=8",
                   "model.frame_filters=[4]", "train.batch_size=8"]


def _boundary_accuracy(predicted, truths):
    """Accuracy on the first frame of every segment, and on every other frame."""
    start_hits, inner_hits = [], []
    for p, y in zip(predicted, truths):
        starts = np.r_[True, y[1:] != y[:-1]]
        start_hits.extend(p[starts] == y[starts])
        inner_hits.extend(p[~starts] == y[~starts])
    return float(np.mean(start_hits)), float(np.mean(inner_hits))


def quality_table(root, steps, quick):
    from seqzoo.training import run_directory

    rows = {}
    for temporal in MODELS:
        run_dir = root / temporal
        overrides = [f"model.temporal={temporal}", "train.checkpoint_every=100000"]
        if steps:
            overrides.append(f"train.steps={steps}")
        if quick:
            overrides += QUICK_OVERRIDES
        config = run_directory.configure("frame_labeling", run_dir, overrides=overrides)
        started = time.perf_counter()
        metrics = train_quietly(config, run_dir)
        seconds = time.perf_counter() - started
        task, model = run_directory.restore(run_dir)
        starts, inner = _boundary_accuracy(task.predict_labels(model, "validation"),
                                           task.true_labels("validation"))
        rows[temporal] = {"accuracy": metrics["accuracy"], "segment starts": starts,
                          "inside segments": inner, "edit": metrics["edit"],
                          "F1@10": metrics["f1@10"], "F1@25": metrics["f1@25"],
                          "F1@50": metrics["f1@50"], "train seconds": seconds}
        trained_steps = config.train.steps
    print(f"Built-in videos, {trained_steps} steps each, held-out split "
          f"(load average {os.getloadavg()[0]:.1f}){' (quick)' if quick else ''}.")
    header = f"{'metric':<16}" + "".join(f"{name:>16}" for name in MODELS)
    print(header + f"{'uni/bi':>9}{'none/bi':>9}")
    for metric in rows["bidirectional"]:
        values = [rows[name][metric] for name in MODELS]
        ratios = "".join(f"{v / values[0]:>9.2f}" if values[0] else f"{'n/a':>9}"
                         for v in values[1:])
        print(f"{metric:<16}" + "".join(f"{v:>16.3f}" for v in values) + ratios)
    return root / "bidirectional"


def _png(frames):
    return np.array([[tf.io.encode_png(frame).numpy() for frame in video] for video in frames],
                    dtype=object)


def _frame_count(batch):
    return int(batch["lengths"].sum())


def throughput_table(root, run_dir, lengths, videos, rounds, quick):
    from seqzoo.serving.client import Client
    from seqzoo.serving.export import export_run
    from seqzoo.serving.server import ModelServer
    from seqzoo.training import config as run_config
    from seqzoo.training.data.frame_labeling_builtin import generate

    model_config = run_config.load(run_dir).model
    version_dir = export_run(run_dir, root / "models", "frames")
    function = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    rates = {}
    with ModelServer(root / "models", rest_port=0, grpc_port=0, poll_seconds=0) as server:
        # Long videos as JSON pixel arrays take long to parse on a loaded machine.
        client = Client(rest_port=server.rest_port, grpc_port=server.grpc_port, timeout=300)
        for length in lengths:
            clips = generate(videos, seed=7, min_frames=length, max_frames=length,
                             frame_size=model_config.frame_size)
            batch = {"frames": clips.frames, "lengths": clips.lengths}
            # REST clients send frames as base64 PNGs to the `encoded` signature: JSON arrays
            # of pixel values are large and slow to parse.
            encoded = {"encoded_frames": _png(clips.frames), "lengths": clips.lengths}
            calls = {
                "in process": lambda b: function(frames=tf.constant(b["frames"]),
                                                 lengths=tf.constant(b["lengths"])),
                "server rest": lambda b: client.predict("frames", b, via="rest"),
                "server grpc": lambda b: client.predict("frames", b, via="grpc"),
                "rest png": lambda b, e=encoded: client.predict(
                    "frames", e, signature_name="encoded", via="rest"),
            }
            for path, rate in interleaved_rates(calls, [batch], rounds, _frame_count).items():
                rates[(path, length)] = rate
        client.close()
    print(f"\nserving_default frames/s, batches of {videos} videos, {rounds} rounds "
          f"(load average {os.getloadavg()[0]:.1f}){' (quick)' if quick else ''}.")
    print(f"{'path':<12}{'frames/video':>14}{'frames/s':>12}{'vs in process':>15}")
    for (path, length), rate in rates.items():
        print(f"{path:<12}{length:>14}{rate:>12.1f}{rate / rates[('in process', length)]:>15.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench frame_labeling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=0,
                        help="training steps of each model (default: the task's default)")
    parser.add_argument("--lengths", default="32,128,512",
                        help="comma-separated video lengths of the throughput table")
    parser.add_argument("--videos", type=int, default=4, help="videos per request")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per length")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args(argv)
    lengths = [int(n) for n in args.lengths.split(",")]
    if args.quick:
        args.steps, lengths, args.videos, args.rounds = 4, [16, 32], 2, 1
    with tempfile.TemporaryDirectory(prefix="frame-labeling-bench-") as root:
        root = pathlib.Path(root)
        run_dir = quality_table(root, args.steps, args.quick)
        throughput_table(root, run_dir, lengths, args.videos, args.rounds, args.quick)
    return 0
