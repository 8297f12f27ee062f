"""Translation: serving throughput of greedy and beam search, and attention on long inputs.

Table 1 trains a date translator briefly, exports it (beam width 4 in `serving_default`) and
measures sentences per second for the `greedy` and `serving_default` (beam 4) signatures:
called in process on the loaded SavedModel, and through the model server over REST and gRPC,
in batches of `--batch` sentences of different lengths. Ratios compare each row with the
in-process greedy rate, and beam search with greedy on the same path.

Table 2 trains two models with the same budget on the built-in `long` task (20-40 letters,
translated letter by letter), one with Bahdanau attention and one without (`attention=none`:
the decoder sees the source only through the bridged final encoder states), and reports
validation exact match, character BLEU and per-character accuracy by source length.

    python -m bench translation [--steps 300] [--long-steps 300] [--batch 32] [--rounds 8]
                                [--quick]
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile

import numpy as np
import tensorflow as tf

from bench.timing import decoder_rates, print_decoder_rates, train_quietly

LENGTH_BUCKETS = ((20, 26), (27, 33), (34, 40))


# A smoke run's models: small, on little data, so that tracing and not training is its cost.
QUICK_OVERRIDES = ["model.num_train=1000", "model.num_validation=40", "model.units=16",
                   "model.embedding_dim=16"]


def _train(run_dir, data, steps, extra, quick):
    from seqzoo.training import run_directory

    overrides = [f"data={data}", f"train.steps={steps}", "train.learning_rate=0.004",
                 "train.checkpoint_every=100000", "model.embedding_dim=32",
                 "model.num_train=20000", "model.num_validation=200", "model.eval_beam=false",
                 *extra, *(QUICK_OVERRIDES if quick else [])]
    config = run_directory.configure("translation", run_dir, overrides=overrides)
    return train_quietly(config, run_dir)


def throughput_table(root, steps, batch_size, rounds, quick):
    from seqzoo.serving.export import export_run
    from seqzoo.training.data.translation_builtin import generate

    run_dir = root / "dates"
    metrics = _train(run_dir, "builtin:dates", steps, ["model.beam_width=4"], quick)
    export_run(run_dir, root / "models", "dates")
    _, pairs = generate("dates", 0, 2 * batch_size, seed=99)
    sentences = [source for source, _ in pairs]
    batches = [sentences[i:i + batch_size] for i in range(0, len(sentences), batch_size)]
    rates = decoder_rates(root / "models", "dates", "text", batches, rounds)
    print(f"Dates model after {steps} steps: greedy exact match {metrics['exact_match']:.3f}; "
          f"batches of {batch_size} sentences, {rounds} rounds{' (quick)' if quick else ''}.")
    print_decoder_rates(rates, "sentences")


def _char_accuracy(hypothesis, reference):
    matches = sum(h == r for h, r in zip(hypothesis, reference))
    return matches / max(len(reference), len(hypothesis))


def attention_table(root, steps, quick):
    from seqzoo.training import run_directory

    results = {}
    for attention in ("bahdanau", "none"):
        run_dir = root / f"long_{attention}"
        metrics = _train(run_dir, "builtin:long", steps, [f"model.attention={attention}"], quick)
        task, model = run_directory.restore(run_dir)
        sources, references = zip(*task.validation_pairs)
        hypotheses = task.translate(model, list(sources), "greedy")
        by_bucket = []
        for low, high in LENGTH_BUCKETS:
            scores = [_char_accuracy(h, r) for s, h, r in zip(sources, hypotheses, references)
                      if low <= len(s) <= high]
            by_bucket.append(float(np.mean(scores)) if scores else float("nan"))
        results[attention] = (metrics, by_bucket)
    with_attention, without = results["bahdanau"], results["none"]
    print(f"\nLong task (20-40 letters), {steps} steps each{' (quick)' if quick else ''}: "
          "attention vs none.")
    print(f"{'metric':<28} {'attention':>10} {'none':>10} {'ratio':>10}")
    rows = [("exact match", with_attention[0]["exact_match"], without[0]["exact_match"]),
            ("char BLEU", with_attention[0]["bleu"], without[0]["bleu"])]
    rows += [(f"char accuracy, {low}-{high} letters", a, n)
             for (low, high), a, n in zip(LENGTH_BUCKETS, with_attention[1], without[1])]
    for name, a, n in rows:
        ratio = f"{a / n:10.2f}" if n > 0 else f"{'inf' if a > 0 else 'n/a':>10}"
        print(f"{name:<28} {a:>10.3f} {n:>10.3f} {ratio}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench translation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps of the dates model")
    parser.add_argument("--long-steps", type=int, default=300,
                        help="training steps of each long-task model")
    parser.add_argument("--batch", type=int, default=32, help="sentences per request")
    parser.add_argument("--rounds", type=int, default=8, help="timed passes over the batches")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.long_steps, args.batch, args.rounds = 20, 20, 8, 1
    with tempfile.TemporaryDirectory(prefix="translation-bench-") as root:
        root = pathlib.Path(root)
        throughput_table(root, args.steps, args.batch, args.rounds, args.quick)
        attention_table(root, args.long_steps, args.quick)
    return 0
