"""Parsing of `--data` strings: builtin[:NAME], tfds:NAME[/CONFIG], file:PATH."""

from __future__ import annotations

import dataclasses

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
