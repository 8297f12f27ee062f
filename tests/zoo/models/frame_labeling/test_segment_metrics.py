"""MS-TCN's segment metrics against hand-computed examples and against an independent
formulation (segments as sets of frames, edit distance by exhaustive recursion)."""

import functools

import numpy as np
import pytest

from seqzoo.zoo.models.frame_labeling.segment_metrics import (
    edit_score,
    levenshtein,
    overlap_counts,
    segmentation_scores,
    segments,
)


def test_segments_are_half_open_runs_without_background():
    assert segments("aabbbc") == [("a", 0, 2), ("b", 2, 5), ("c", 5, 6)]
    assert segments(["bg", "a", "a", "bg", "bg", "a"], background=["bg"]) == [
        ("a", 1, 3), ("a", 5, 6)]
    assert segments([]) == []
    assert segments(["bg"], background=["bg"]) == []


def test_levenshtein_hand_examples():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("abc", "abc") == 0
    assert levenshtein("ab", "ba") == 2


def test_edit_score_hand_example():
    # Truth segments a b c; prediction a b a b c (a flicker inside b): distance 2 of max 5.
    truth = list("aaaabbbbcccc")
    predicted = list("aaaabbabcccc")
    assert edit_score(predicted, truth) == pytest.approx(1 - 2 / 5)
    assert edit_score(truth, truth) == 1.0
    assert edit_score(["bg"] * 3, ["bg"] * 3, background=["bg"]) == 1.0


def test_overlap_counts_hand_example():
    # Truth: a [0, 4), b [4, 10). Prediction: a [0, 2), b [2, 10).
    # IoU(a) = 2 / 4 = 0.5; IoU(b) = 6 / 8 = 0.75.
    truth = list("aaaabbbbbb")
    predicted = list("aabbbbbbbb")
    assert overlap_counts(predicted, truth, 0.5) == (2, 0, 0)
    assert overlap_counts(predicted, truth, 0.6) == (1, 1, 1)
    assert overlap_counts(predicted, truth, 0.8) == (0, 2, 2)


def test_overlap_counts_match_each_truth_once_and_only_same_labels():
    # Two predicted a-segments overlap the one true a-segment: the first (IoU 3/6) matches it;
    # the second (IoU 2/6) picks the same, already matched segment, so it is a false positive.
    truth = list("aaaaaa")
    predicted = list("aaabaa")
    assert overlap_counts(predicted, truth, 0.25) == (1, 2, 0)
    # Same extent, other label: IoU counts as 0.
    assert overlap_counts(list("bbbb"), list("aaaa"), 0.1) == (0, 1, 1)


def test_scores_sum_counts_over_videos_before_f1():
    truths = [list("aaaabbbbbb"), list("cccc")]
    predictions = [list("aabbbbbbbb"), list("dddd")]
    scores = segmentation_scores(predictions, truths)
    assert scores["accuracy"] == pytest.approx(8 / 14)
    assert scores["edit"] == pytest.approx((1.0 + 0.0) / 2)
    # At 0.5: video 1 gives tp 2, video 2 gives fp 1 and fn 1 -> precision 2/3, recall 2/3.
    assert scores["f1@50"] == pytest.approx(2 / 3)
    assert set(scores) == {"accuracy", "edit", "f1@10", "f1@25", "f1@50"}


def test_background_frames_count_for_accuracy_but_not_segments():
    truth = ["bg", "bg", "a", "a", "bg"]
    predicted = ["a", "bg", "a", "a", "bg"]
    scores = segmentation_scores([predicted], [truth], background=["bg"])
    assert scores["accuracy"] == pytest.approx(4 / 5)
    # Predicted segments a [0, 1) and a [2, 4); true segment a [2, 4).
    assert scores["edit"] == pytest.approx(1 - 1 / 2)
    assert scores["f1@50"] == pytest.approx(2 * (1 / 2) * 1 / (1 / 2 + 1))


def test_no_segments_at_all_scores_zero_f1():
    scores = segmentation_scores([["bg"] * 4], [["bg"] * 4], background=["bg"])
    assert scores["accuracy"] == 1.0 and scores["f1@10"] == 0.0


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match="one prediction per video"):
        segmentation_scores([[0]], [[0], [1]])
    with pytest.raises(ValueError, match="Video 0 has 2 predicted labels for 3 frames"):
        segmentation_scores([[0, 0]], [[0, 0, 0]])


def _frame_sets(labels):
    """Segments as (label, set of frames), found by scanning label changes."""
    runs = []
    for index, label in enumerate(labels):
        if runs and runs[-1][0] == label and index - 1 in runs[-1][1]:
            runs[-1][1].add(index)
        else:
            runs.append((label, {index}))
    return runs


def _recursive_edit(a, b):
    @functools.lru_cache(maxsize=None)
    def distance(i, j):
        if i == 0 or j == 0:
            return i + j
        return min(distance(i - 1, j) + 1, distance(i, j - 1) + 1,
                   distance(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return distance(len(a), len(b))


def _reference_scores(predictions, truths, overlap):
    tp = fp = fn = 0
    edits = []
    for predicted, truth in zip(predictions, truths):
        p, y = _frame_sets(predicted), _frame_sets(truth)
        p_labels, y_labels = [label for label, _ in p], [label for label, _ in y]
        edits.append(1 - _recursive_edit(p_labels, y_labels) / max(len(p), len(y)))
        used = set()
        for label, frames in p:
            ious = [len(frames & other) / len(frames | other) if label == other_label else 0.0
                    for other_label, other in y]
            best = int(np.argmax(ious))
            if ious[best] >= overlap and best not in used:
                used.add(best)
                tp += 1
            else:
                fp += 1
        fn += len(y) - len(used)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return float(np.mean(edits)), f1


def test_random_videos_match_the_independent_formulation():
    rng = np.random.default_rng(0)
    truths, predictions = [], []
    for _ in range(30):
        length = int(rng.integers(5, 60))
        truth = np.repeat(rng.integers(0, 4, 12), rng.integers(1, 8, 12))[:length]
        # Predictions: the truth with shifted boundaries and random flickers.
        predicted = np.roll(truth, int(rng.integers(-2, 3)))
        flips = rng.random(len(truth)) < 0.08
        predicted[flips] = rng.integers(0, 4, flips.sum())
        truths.append(truth)
        predictions.append(predicted)
    scores = segmentation_scores(predictions, truths)
    for overlap, key in ((0.1, "f1@10"), (0.25, "f1@25"), (0.5, "f1@50")):
        edit, f1 = _reference_scores(predictions, truths, overlap)
        assert scores["edit"] == pytest.approx(edit)
        assert scores[key] == pytest.approx(f1)
    assert 0.2 < scores["f1@50"] < scores["f1@10"] < 1.0  # the example is not degenerate
