"""Built-in sentiment dataset: short movie reviews whose label depends on word order.

Every review is built from clauses such as "the plot was not very good" or "really dull acting".
A clause's polarity is its adjective's, flipped by a negator in front of it ("not", "hardly",
"never", "not very", "far from", or "not ... at all"), and kept by an intensifier ("very",
"really"...). Reviews combine clauses so that the label needs the order of the words:

- single clause: its polarity ("the ending was not bad at all" is positive);
- contrast: "C1 but C2", "although C1, C2" and "C2, although C1" take C2's polarity, and C1 has
  the opposite one, so both polarities' words appear and only their position decides;
- agreement: "C1 and C2", "P1 with P2" (two phrases) of the same polarity.

Clauses are sentences ("the plot was not good"), phrases ("a really dull plot", "hardly a great
movie") or bare ("not bad at all").

A bag of words cannot tell "not good but fun" from "good but not fun", nor "not bad" from
"not good" plus "bad": it scores near chance on the contrast and negation reviews. Casing and
punctuation vary ("The plot was dull, but ...!") so that tokenization has to normalize them.
Generation is deterministic for a given seed; the pool is de-duplicated before it is split, so
no review of the test split appears in the training split.
"""

from __future__ import annotations

import numpy as np

LABELS = ("negative", "positive")
POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "enjoyable", "charming",
            "superb", "fun", "moving", "clever", "delightful")
NEGATIVE = ("bad", "awful", "terrible", "boring", "dull", "poor", "weak", "tedious", "clumsy",
            "bland", "messy", "forgettable")
ASPECTS = ("acting", "plot", "script", "soundtrack", "cast", "direction", "dialogue", "ending",
           "pacing", "visuals", "story", "film", "movie", "humor", "camera work")
VERBS = ("was", "is", "felt", "seemed")
INTENSIFIERS = ("", "", "", "very", "really", "truly", "quite", "extremely", "so")
# (before the adjective, after it): each flips the adjective's polarity.
NEGATORS = (("not", ""), ("not very", ""), ("not really", ""), ("hardly", ""), ("never", ""),
            ("far from", ""), ("not", " at all"), ("not so", ""))
PHRASE_NEGATORS = ("not", "hardly", "never", "far from")
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _clause(rng: np.random.Generator, polarity: int, shape: str | None = None) -> str:
    """One clause of the given polarity (1 positive, 0 negative).

    Shapes: "sentence" ("the plot was not good"), "phrase" ("a really dull plot", "hardly a
    great movie") or "bare" ("not bad at all"); None picks one at random.
    """
    if shape is None:
        shape = str(rng.choice(("sentence", "phrase", "bare"), p=(0.55, 0.3, 0.15)))
    negated = rng.random() < 0.45
    adjective_polarity = 1 - polarity if negated else polarity
    adjective = str(rng.choice(POSITIVE if adjective_polarity else NEGATIVE))
    aspect = str(rng.choice(ASPECTS))
    if negated:
        before, after = NEGATORS[rng.integers(len(NEGATORS))]
        if shape == "phrase":
            return f"{rng.choice(PHRASE_NEGATORS)} {_article(adjective)} {adjective} {aspect}"
        if shape == "bare":
            return f"{before} {adjective}{after}"
        return f"the {aspect} {rng.choice(VERBS)} {before} {adjective}{after}"
    phrase = f"{rng.choice(INTENSIFIERS)} {adjective}".strip()
    if shape == "phrase":
        determiner = str(rng.choice(("", _article(phrase), "some")))
        return f"{determiner} {phrase} {aspect}".lstrip()
    if shape == "bare":
        return phrase
    return f"the {aspect} {rng.choice(VERBS)} {phrase}"


def _review(rng: np.random.Generator) -> tuple[str, int]:
    label = int(rng.integers(2))
    form = rng.choice(("single", "but", "although", "although_after", "and", "with"),
                      p=(0.25, 0.3, 0.15, 0.12, 0.1, 0.08))
    decisive = _clause(rng, label, "phrase" if form == "with" else None)
    if form == "single":
        text = decisive
    elif form in ("and", "with"):
        text = f"{_clause(rng, label, 'phrase' if form == 'with' else None)} {form} {decisive}"
    else:
        other = _clause(rng, 1 - label)
        text = {
            "but": f"{other}{rng.choice(('', ','))} but {decisive}",
            "although": f"although {other}, {decisive}",
            "although_after": f"{decisive}, although {other}",
        }[str(form)]
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.1:
        text = text.upper()
    return text + str(rng.choice(("", "", ".", "!", " !"))), label


def generate(num_examples: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Returns `num_examples` distinct reviews and their labels (0 negative, 1 positive).

    Args:
        num_examples: number of reviews, at least 1.
        seed: seed of the generator; the same seed gives the same reviews in the same order.
    """
    if num_examples < 1:
        raise ValueError(f"num_examples must be at least 1; received {num_examples}.")
    rng = np.random.default_rng(seed)
    seen: dict[str, int] = {}
    while len(seen) < num_examples:
        text, label = _review(rng)
        seen.setdefault(text, label)
    return list(seen), np.array(list(seen.values()), dtype=np.int64)


def load(num_examples: int = 12000, seed: int = 0) -> dict[str, tuple[list[str], np.ndarray]]:
    """Generates `num_examples` distinct reviews split 80/10/10 into train, validation and test.

    Args:
        num_examples: total number of reviews over the three splits, at least 10.
        seed: seed of the generator.

    Returns:
        `{"train": (texts, labels), "validation": (...), "test": (...)}` with labels indexing
        `LABELS`.

    Example:

    >>> splits = load(100, seed=0)
    >>> len(splits["train"][0]), len(splits["validation"][0]), len(splits["test"][0])
    (80, 10, 10)
    """
    if num_examples < 10:
        raise ValueError(f"num_examples must be at least 10; received {num_examples}.")
    texts, labels = generate(num_examples, seed)
    n_train = int(num_examples * SPLIT_FRACTIONS["train"])
    n_validation = int(num_examples * SPLIT_FRACTIONS["validation"])
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_validation),
              "test": (n_train + n_validation, num_examples)}
    return {name: (texts[a:b], labels[a:b]) for name, (a, b) in bounds.items()}
