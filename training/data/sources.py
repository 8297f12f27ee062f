"""Parsing of `--data` strings: builtin[:NAME], tfds:NAME[/CONFIG], file:PATH."""

from __future__ import annotations

import dataclasses
import pathlib
import random

KINDS = ("builtin", "tfds", "file")


@dataclasses.dataclass(frozen=True)
class DataSource:
    kind: str
    arg: str = ""


def parse_source(text: str) -> DataSource:
    """Parses a `--data` value; raises ValueError naming the accepted forms."""
    kind, _, arg = str(text).partition(":")
    if kind not in KINDS or (kind != "builtin" and not arg):
        raise ValueError(
            f"Bad data source {text!r}; accepted: builtin, builtin:NAME, tfds:NAME "
            "(e.g. tfds:imdb_reviews, tfds:glue/sst2) or file:PATH."
        )
    return DataSource(kind, arg)


def check_source(text: str) -> DataSource:
    """Parses a `--data` value and checks that a `file:` path exists, so that a typo is answered
    before a run starts (the task reads and checks the file's contents when it prepares)."""
    source = parse_source(text)
    if source.kind == "file" and not pathlib.Path(source.arg).exists():
        raise ValueError(f"Data file {source.arg!r} does not exist.")
    return source


def hold_out(items: list, seed: int, fraction: float, where: str) -> tuple[list, list]:
    """`(train, validation)`: a seeded shuffle of `items` with `fraction` of them (at least
    one) held out, for sources without a validation split of their own."""
    if len(items) < 2:
        raise ValueError(f"{where} holds {len(items)} example(s); at least 2 are needed to hold "
                         "one out for validation.")
    items = list(items)
    random.Random(seed).shuffle(items)
    held_out = max(1, int(round(len(items) * fraction)))
    return items[held_out:], items[:held_out]
