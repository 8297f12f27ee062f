"""Built-in translation datasets generated in code, so training and tests need no download.

- `dates`: a date written in one of many human forms ("the third of March, 2021", "03/03/21",
  "Wed, Mar 3rd 2021", "3.3.2021", ...) translated to ISO form "2021-03-03". Word order differs
  between forms (day first, month first, year first), so the decoder must find the right source
  characters for every output character: it needs attention and reordering.
- `long`: a string of 20 to 40 letters translated letter by letter into a shifted, upper-case
  alphabet. Sequences are long and random, so an encoder-decoder that must squeeze the whole
  source into one fixed vector degrades, while attention reads each letter where it is.
"""

from __future__ import annotations

import datetime
import random

DATASETS = ("dates", "long")

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_UNITS = ["", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
          "ninth"]
_TEENS = ["tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
          "seventeenth", "eighteenth", "nineteenth"]
FIRST_DAY = datetime.date(1950, 1, 1)
LAST_DAY = datetime.date(2049, 12, 31)


def ordinal_word(day: int) -> str:
    """1 -> "first", 22 -> "twenty-second", 30 -> "thirtieth"."""
    if day < 10:
        return _UNITS[day]
    if day < 20:
        return _TEENS[day - 10]
    tens = {2: "twenty", 3: "thirty"}[day // 10]
    if day % 10 == 0:
        return tens[:-1] + "ieth"
    return f"{tens}-{_UNITS[day % 10]}"


def ordinal_suffix(day: int) -> str:
    """1 -> "1st", 12 -> "12th", 23 -> "23rd"."""
    if 10 <= day % 100 <= 20:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def _formats(d: datetime.date) -> list[str]:
    """Every human form of `d`. Two-digit years mean 1950-2049; slashes are month first (US),
    dots and dashes day first, so no form is ambiguous."""
    month, short = MONTHS[d.month - 1], MONTHS[d.month - 1][:3]
    weekday = WEEKDAYS[d.weekday()]
    yy = f"{d.year % 100:02d}"
    return [
        f"the {ordinal_word(d.day)} of {month}, {d.year}",
        f"the {ordinal_word(d.day)} of {month.lower()} {d.year}",
        f"{month} {ordinal_suffix(d.day)} {d.year}",
        f"{month} {d.day}, {d.year}",
        f"{short} {d.day} {d.year}",
        f"{short}. {ordinal_suffix(d.day)}, {yy}",
        f"{d.day} {month} {d.year}",
        f"{d.day} {short.lower()} {yy}",
        f"{weekday}, {month} {d.day}, {d.year}",
        f"{weekday[:3]} {d.day} {short} {d.year}",
        f"{d.month:02d}/{d.day:02d}/{yy}",
        f"{d.month}/{d.day}/{d.year}",
        f"{d.day:02d}.{d.month:02d}.{d.year}",
        f"{d.day}.{d.month}.{yy}",
        f"{d.day:02d}-{short}-{d.year}",
        f"{d.year}/{d.month:02d}/{d.day:02d}",
        f"{d.year}{d.month:02d}{d.day:02d}",
        f"{month.upper()} {d.day}, {d.year}",
    ]


def date_pair(rng: random.Random) -> tuple[str, str]:
    """One (human form, ISO form) pair of a uniformly drawn date and form."""
    span = (LAST_DAY - FIRST_DAY).days
    day = FIRST_DAY + datetime.timedelta(days=rng.randrange(span + 1))
    return rng.choice(_formats(day)), day.isoformat()


LONG_SOURCE = "abcdefghijklmnop"
LONG_TARGET = "DEFGHIJKLMNOPQRS"


def long_pair(rng: random.Random, min_length: int = 20, max_length: int = 40) -> tuple[str, str]:
    """A random letter string and its letter-by-letter translation (shifted, upper case)."""
    source = "".join(rng.choice(LONG_SOURCE) for _ in range(rng.randint(min_length, max_length)))
    return source, source.translate(str.maketrans(LONG_SOURCE, LONG_TARGET))


def generate(name: str, num_train: int, num_validation: int, seed: int = 0):
    """Train and validation pairs of built-in dataset `name`; no validation source occurs in
    the training pairs, so validation measures generalisation, not memory.

    Returns `(train_pairs, validation_pairs)`, lists of (source, target) strings.
    """
    if name not in DATASETS:
        raise ValueError(
            f"Unknown built-in translation dataset {name!r}; accepted: {', '.join(DATASETS)} "
            "(e.g. --data builtin:dates)."
        )
    make = date_pair if name == "dates" else long_pair
    rng = random.Random(f"{name}-{seed}")
    validation, seen = [], set()
    while len(validation) < num_validation:
        pair = make(rng)
        if pair[0] not in seen:
            seen.add(pair[0])
            validation.append(pair)
    train = []
    while len(train) < num_train:
        pair = make(rng)
        if pair[0] not in seen:
            train.append(pair)
    return train, validation
