"""`seqzoo timeline RUN_OR_MODEL ...`: a video's per-frame labels drawn as coloured bars."""

from __future__ import annotations

import argparse
import pathlib


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "timeline",
        help="draw a frame-labeling video's ground truth and predictions as coloured bars (PNG)",
        description="Labels one video with each trained run or exported frame-labeling model "
        "given and draws the labels as coloured bars over the frames, one row per model under "
        "the ground truth, as action-segmentation papers draw them. The video is held-out video "
        "N of the first run directory given (--video N, with its ground truth), or image files "
        "(--frames, no ground truth). Prints each row's frame accuracy against the ground truth.",
    )
    parser.add_argument("models", nargs="+", metavar="RUN_OR_MODEL",
                        help="run directories or exported models (models/NAME[/VERSION])")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--video", type=int, default=0, metavar="N",
                        help="held-out video N of the first run directory (default 0)")
    source.add_argument("--frames", nargs="+", default=None, metavar="PATH",
                        help="label these PNG/JPEG frames (files, or directories of them in "
                        "name order) instead")
    parser.add_argument("--out", default="timeline.png", metavar="FILE.png",
                        help="PNG file to write (default timeline.png)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Before TensorFlow loads.
    for model in args.models:
        if not pathlib.Path(model).is_dir():
            raise ValueError(f"{model!r} is not a directory; give run directories (runs/NAME) "
                             "or exported models (models/NAME or models/NAME/VERSION).")
    runs = [model for model in args.models if (pathlib.Path(model) / "config.yaml").is_file()]
    if args.frames is None and not runs:
        raise ValueError("--video N takes a held-out video of a run directory, and none is "
                         "given; give one, or label image files with --frames.")
    from seqzoo.training.frame_timeline import held_out_video, label_video, read_frames
    from seqzoo.zoo.models.frame_labeling.timeline_plot import plot_timeline

    if args.frames is None:
        video = held_out_video(runs[0], args.video)
        rows = {"ground truth": video["truth"]}
        title = f"held-out video {args.video} of run {pathlib.Path(runs[0]).name}"
    else:
        video, rows, title = {"frames": read_frames(args.frames)}, {}, None
    for model in args.models:
        labels = label_video(model, video)
        name = pathlib.Path(model).name
        if "truth" in video:
            accuracy = sum(a == b for a, b in zip(labels, video["truth"])) / len(labels)
            print(f"{name}: frame accuracy {accuracy:.3f}")
        rows[name] = labels
    path = plot_timeline(rows, args.out, title=title)
    print(f"Timeline of {len(next(iter(rows.values())))} frames drawn to {path}")
    return 0
