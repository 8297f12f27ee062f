"""Built-in sentiment data: determinism, splits, and labels that follow negation and contrast."""

import re

import numpy as np
import pytest

from seqzoo.training.data import sentiment_builtin

# An independent reading of the reviews: its own lexicon and clause rules.
GOOD = set("good great excellent wonderful brilliant enjoyable charming superb fun moving clever "
           "delightful".split())
BAD = set("bad awful terrible boring dull poor weak tedious clumsy bland messy forgettable".split())
NEGATORS = {"not", "hardly", "never", "far"}


def _polarity(clause):
    words = clause.split()
    adjectives = [w for w in words if w in GOOD | BAD]
    assert len(adjectives) == 1, clause
    positive = adjectives[0] in GOOD
    return int(positive != bool(NEGATORS & set(words)))


def _read(text):
    """(kind, decisive clause, other clause or None) of one review."""
    text = re.sub(r"[.!]", "", text.lower()).strip()
    if " but " in text:
        other, decisive = text.split(" but ")
        return "contrast", decisive, other.rstrip(",")
    if text.startswith("although "):
        other, decisive = text[len("although "):].split(", ")
        return "contrast", decisive, other
    if ", although " in text:
        decisive, other = text.split(", although ")
        return "contrast", decisive, other
    for joint in (" and ", " with "):
        if joint in text:
            first, decisive = text.split(joint)
            return "agreement", decisive, first
    return "single", text, None


def test_same_seed_same_data_other_seed_other_data():
    a = sentiment_builtin.load(200, seed=5)
    b = sentiment_builtin.load(200, seed=5)
    c = sentiment_builtin.load(200, seed=6)
    for split in ("train", "validation", "test"):
        assert a[split][0] == b[split][0]
        np.testing.assert_array_equal(a[split][1], b[split][1])
    assert a["train"][0] != c["train"][0]


def test_splits_sizes_disjoint_and_balanced():
    splits = sentiment_builtin.load(2000, seed=0)
    assert [len(splits[s][0]) for s in ("train", "validation", "test")] == [1600, 200, 200]
    train = set(splits["train"][0])
    assert not train & set(splits["test"][0]) and not train & set(splits["validation"][0])
    assert 0.45 < splits["train"][1].mean() < 0.55


def test_labels_follow_negation_and_the_clause_after_but_or_although():
    texts, labels = sentiment_builtin.generate(3000, seed=1)
    kinds = {"single": 0, "contrast": 0, "agreement": 0}
    negated = 0
    for text, label in zip(texts, labels):
        kind, decisive, other = _read(text)
        kinds[kind] += 1
        assert _polarity(decisive) == label, text
        if kind == "contrast":
            assert _polarity(other) == 1 - label, text
        if kind == "agreement":
            assert _polarity(other) == label, text
        negated += bool(NEGATORS & set(re.findall(r"\w+", text.lower())))
    assert kinds["contrast"] > 0.45 * len(texts)
    assert kinds["single"] > 0.15 * len(texts) and kinds["agreement"] > 0.1 * len(texts)
    assert negated > 0.5 * len(texts)
    # Both "not <good word>" (negative) and "not <bad word>" (positive) are common.
    lowered = [t.lower() for t in texts]
    assert sum(any(f"not {w}" in t for w in GOOD) for t in lowered) > 150
    assert sum(any(f"not {w}" in t for w in BAD) for t in lowered) > 150


def test_casing_and_punctuation_vary():
    texts, _ = sentiment_builtin.generate(500, seed=2)
    assert any(t[0].isupper() for t in texts) and any(t[0].islower() for t in texts)
    assert any(t.endswith("!") for t in texts) and any("," in t for t in texts)


@pytest.mark.parametrize("num_examples", [0, 9])
def test_rejects_too_few_examples(num_examples):
    with pytest.raises(ValueError, match=f"received {num_examples}"):
        sentiment_builtin.load(num_examples)
