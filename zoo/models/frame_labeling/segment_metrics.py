"""Temporal action segmentation metrics as MS-TCN (Farha and Gall, CVPR 2019) evaluates them.

Frame accuracy counts frames; the segmental edit score and F1@k compare segments, the maximal
runs of one label:

- accuracy: correct frames over all frames of all videos.
- edit: per video, `1 - levenshtein(P, Y) / max(|P|, |Y|)` over the sequences of segment labels
  P (predicted) and Y (ground truth), averaged over videos. It penalises over-segmentation
  (a flicker inside a segment adds two segments) that frame accuracy barely sees.
- F1@k: predicted segments are visited in order; each is matched to the ground-truth segment of
  the same label with the highest IoU (intersection over union of frame ranges). It is a true
  positive if that IoU is at least k and that ground-truth segment was not matched before, else
  a false positive; unmatched ground-truth segments are false negatives. Counts are summed over
  all videos before precision, recall and F1 are taken.

These are the definitions of MS-TCN's `eval.py` (segments as half-open frame ranges [start,
end); background labels, if any, excluded from segments but counted by accuracy). Scores here
are fractions in [0, 1]; papers print them multiplied by 100. Two edge cases the reference
leaves undefined are fixed here: the edit score of a video with no segment on either side is 1,
and F1 with no segment at all is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OVERLAPS = (0.1, 0.25, 0.5)


def segments(labels: Sequence, background: Sequence = ()) -> list[tuple]:
    """The segments of a per-frame label sequence: `(label, start, end)`, `end` exclusive.

    Runs of a label in `background` are left out.

    Example:

    >>> segments(["a", "a", "bg", "b", "b", "b"], background=["bg"])
    [('a', 0, 2), ('b', 3, 6)]
    """
    labels = list(labels)
    background = set(background)
    found = []
    start = 0
    for index in range(1, len(labels) + 1):
        if index == len(labels) or labels[index] != labels[start]:
            if labels[start] not in background:
                found.append((labels[start], start, index))
            start = index
    return found


def levenshtein(first: Sequence, second: Sequence) -> int:
    """The edit distance (insertions, deletions, substitutions) between two sequences."""
    previous = list(range(len(second) + 1))
    for i, item in enumerate(first, start=1):
        current = [i]
        for j, other in enumerate(second, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (item != other)))
        previous = current
    return previous[-1]


def edit_score(predicted: Sequence, truth: Sequence, background: Sequence = ()) -> float:
    """The segmental edit score of one video, in [0, 1] (1: the same segment labels in order)."""
    p = [label for label, _, _ in segments(predicted, background)]
    y = [label for label, _, _ in segments(truth, background)]
    if not p and not y:
        return 1.0
    return 1.0 - levenshtein(p, y) / max(len(p), len(y))


def overlap_counts(predicted: Sequence, truth: Sequence, overlap: float,
                   background: Sequence = ()) -> tuple[int, int, int]:
    """`(true_positives, false_positives, false_negatives)` of one video's segments at IoU
    threshold `overlap`, matched as MS-TCN's `f_score` does (see the module docstring)."""
    p = segments(predicted, background)
    y = segments(truth, background)
    matched = np.zeros(len(y), bool)
    true_positives = 0
    for label, start, end in p:
        ious = np.array([
            (min(end, y_end) - max(start, y_start)) / (max(end, y_end) - min(start, y_start))
            if label == y_label else 0.0
            for y_label, y_start, y_end in y
        ])
        best = int(ious.argmax()) if len(ious) else -1
        if best >= 0 and ious[best] >= overlap and not matched[best]:
            matched[best] = True
            true_positives += 1
    return true_positives, len(p) - true_positives, len(y) - int(matched.sum())


def segmentation_scores(predictions: Sequence[Sequence], truths: Sequence[Sequence],
                        overlaps: Sequence[float] = OVERLAPS,
                        background: Sequence = ()) -> dict[str, float]:
    """Frame accuracy, edit score and F1 at each overlap over a set of videos.

    Args:
        predictions: per video, its predicted label of every frame.
        truths: per video, its ground-truth label of every frame (same lengths).
        overlaps: IoU thresholds of the F1 scores.
        background: labels left out of segments (e.g. GTEA's "background").

    Returns:
        `{"accuracy", "edit", "f1@10", "f1@25", "f1@50"}` (one `f1@K` per overlap, K its
        percentage), all in [0, 1].

    Example:

    >>> segmentation_scores([[0, 1, 1, 1]], [[0, 0, 0, 1]])  # both segments have IoU 1/3
    {'accuracy': 0.5, 'edit': 1.0, 'f1@10': 1.0, 'f1@25': 1.0, 'f1@50': 0.0}
    """
    if len(predictions) != len(truths) or not len(truths):
        raise ValueError(
            "segmentation_scores needs one prediction per video and at least one video. "
            f"Received: {len(predictions)} predictions, {len(truths)} ground truths"
        )
    correct = frames = 0
    edit = 0.0
    counts = np.zeros((len(overlaps), 3))
    for index, (predicted, truth) in enumerate(zip(predictions, truths)):
        predicted, truth = list(predicted), list(truth)
        if len(predicted) != len(truth):
            raise ValueError(f"Video {index} has {len(predicted)} predicted labels for "
                             f"{len(truth)} frames; give one label per frame.")
        correct += sum(bool(p == y) for p, y in zip(predicted, truth))
        frames += len(truth)
        edit += edit_score(predicted, truth, background)
        for row, overlap in enumerate(overlaps):
            counts[row] += overlap_counts(predicted, truth, overlap, background)
    scores = {"accuracy": correct / max(frames, 1), "edit": edit / len(truths)}
    for overlap, (tp, fp, fn) in zip(overlaps, counts):
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[f"f1@{round(overlap * 100)}"] = float(f1)
    return scores
