"""Captioning: attention against none on long captions, and captions per second when served.

Table 1 trains the default captioning model (Bahdanau attention over the region grid) and the
Show-and-Tell baseline (`attention=none`: the decoder sees the picture only through its initial
state) with the same budget on the built-in shapes pictures, and reports exact-caption rates of
greedy decoding by number of objects, BLEU-4, and the training time of each run.

Table 2 exports the attention model and measures captions per second of the `greedy` and
`serving_default` (beam 4) signatures on PNG bytes: called in process on the loaded SavedModel,
and through the model server over REST (b64) and gRPC (bytes tensor), in batches of `--batch`
pictures. Ratios compare each row with in-process greedy, and beam search with greedy on the
same path.

    python -m bench captioning [--steps N] [--batch 32] [--rounds 4] [--quick]

Without `--steps`, both runs use the task's default budget (what `seqzoo train captioning`
does), so the table checks the README's claims: about 10 minutes or less per run on 2 CPU
cores, >= 95% exact captions for the attention model, and a baseline at least 10 points lower
on pictures of three objects or more.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import tensorflow as tf

from bench.timing import decoder_rates, print_decoder_rates, train_quietly

QUICK_SETTINGS = ["model.num_train=100", "model.num_validation=20", "model.eval_beam=false"]


def _train(run_dir, attention, steps, extra):
    from seqzoo.training import run_directory

    overrides = [f"model.attention={attention}", "train.checkpoint_every=100000", *extra]
    if steps:
        overrides.append(f"train.steps={steps}")
    config = run_directory.configure("captioning", run_dir, overrides=overrides)
    started = time.perf_counter()
    metrics = train_quietly(config, run_dir)
    return metrics, time.perf_counter() - started, config.train.steps


def quality_table(root, steps, extra, quick):
    results = {attention: _train(root / attention, attention, steps, extra)
               for attention in ("bahdanau", "none")}
    (attended, attended_time, budget), (baseline, baseline_time, _) = (
        results["bahdanau"], results["none"])
    print(f"Built-in shapes, {budget} steps each{' (quick)' if quick else ''}: attention vs none "
          "(greedy decoding, held-out pictures).")
    print(f"{'metric':<28} {'attention':>10} {'none':>10} {'difference':>11}")
    names = [f"exact_match_objects_{n}" for n in range(1, 6)]
    rows = [("exact captions", "exact_match"), ("exact, 3+ objects", "exact_match_objects_3plus")]
    rows += [(f"exact, {name[-1]} object{'s' if name[-1] != '1' else ''}", name)
             for name in names if name in attended]
    for label, key in rows:
        print(f"{label:<28} {attended[key]:>10.3f} {baseline[key]:>10.3f} "
              f"{attended[key] - baseline[key]:>11.3f}")
    for label, key in (("BLEU-4", "bleu"), ("BLEU-4, 3+ objects", "bleu_objects_3plus")):
        if key in attended:
            print(f"{label:<28} {attended[key]:>10.2f} {baseline[key]:>10.2f} "
                  f"{attended[key] - baseline[key]:>11.2f}")
    print(f"{'training minutes':<28} {attended_time / 60:>10.2f} {baseline_time / 60:>10.2f} "
          f"{attended_time / baseline_time:>10.2f}x")
    return root / "bahdanau"


def throughput_table(root, run_dir, batch_size, rounds, quick):
    from seqzoo.serving.export import export_model
    from seqzoo.training import run_directory

    task, model = run_directory.restore(run_dir)
    export_model(task, model, root / "models", "captioning")
    pictures = [tf.io.encode_png(image).numpy() for image in task.validation.images[:2 * batch_size]]
    batches = [pictures[i:i + batch_size] for i in range(0, len(pictures), batch_size)]
    rates = decoder_rates(root / "models", "captioning", "image", batches, rounds)
    print(f"\nServing the attention model: PNG pictures in batches of {batch_size}, {rounds} "
          f"rounds{' (quick)' if quick else ''}.")
    print_decoder_rates(rates, "captions")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench captioning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of each run (default: the task's default)")
    parser.add_argument("--batch", type=int, default=32, help="pictures per request")
    parser.add_argument("--rounds", type=int, default=4, help="timed passes over the batches")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args(argv)
    extra = []
    if args.quick:
        args.steps, args.batch, args.rounds, extra = 10, 4, 1, QUICK_SETTINGS
    with tempfile.TemporaryDirectory(prefix="captioning-bench-") as root:
        root = pathlib.Path(root)
        run_dir = quality_table(root, args.steps, extra, args.quick)
        throughput_table(root, run_dir, args.batch, args.rounds, args.quick)
    return 0
