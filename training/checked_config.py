"""Config dataclasses whose fields declare the values they accept.

A setting is declared once, with its default and its rule, and the dataclass checks every rule
when it is built (from defaults, YAML or `--set`), so a bad value fails before any data is read:

```python
@dataclasses.dataclass
class SentimentConfig(CheckedConfig):
    units: int = at_least(1, 32)
    cell: str = one_of(("lstm", "gru"), "gru")
    dropout: float = rate(0.0)
```

`SentimentConfig(units=0)` raises `ValueError: model.units must be at least 1; received 0.`
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar


@dataclasses.dataclass
class CheckedConfig:
    """Base of config dataclasses: checks each field declared with `at_least`, `above`,
    `one_of`, `rate`, `fraction` or `positive_sizes` after `__init__`.

    Subclasses set `section` to the prefix users write in `--set` ("model" by default, "train"
    for the loop's settings), so errors name the setting as it is typed. A subclass with a rule
    between several fields extends `__post_init__` and calls `super().__post_init__()` first.
    """

    section: ClassVar[str] = "model"

    def __post_init__(self):
        for field in dataclasses.fields(self):
            check = field.metadata.get("check")
            if check is not None:
                check(f"{self.section}.{field.name}", getattr(self, field.name))


def _field(default, check: Callable[[str, Any], None]):
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"check": check})
    return dataclasses.field(default=default, metadata={"check": check})


def _require_number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number; received {value!r}.")


def at_least(minimum, default):
    """A number field of at least `minimum` (e.g. `at_least(1, 32)` for a size, 0 for a count
    where 0 means "all")."""
    def check(name, value):
        _require_number(name, value)
        if value < minimum:
            relation = ">= 0" if minimum == 0 else f"at least {minimum}"
            raise ValueError(f"{name} must be {relation}; received {value}.")
    return _field(default, check)


def above(bound, default):
    """A number field strictly greater than `bound` (e.g. a learning rate above 0)."""
    def check(name, value):
        _require_number(name, value)
        if value <= bound:
            raise ValueError(f"{name} must be above {bound}; received {value}.")
    return _field(default, check)


def one_of(choices, default):
    """A field taking one of `choices` (names such as cells, modes or strategies)."""
    choices = tuple(choices)

    def check(name, value):
        if value not in choices:
            raise ValueError(f"Unknown {name} {value!r}; accepted: {', '.join(choices)}.")
    return _field(default, check)


def rate(default):
    """A probability such as a dropout rate: in [0, 1)."""
    def check(name, value):
        _require_number(name, value)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1); received {value}.")
    return _field(default, check)


def fraction(default):
    """A share of the data strictly between 0 and 1, such as a validation fraction."""
    def check(name, value):
        _require_number(name, value)
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be in (0, 1); received {value}.")
    return _field(default, check)


def positive_sizes(default: list[int]):
    """A non-empty list of positive integers, such as hidden layer sizes."""
    def check(name, value):
        if (not isinstance(value, list) or not value
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
            raise ValueError(f"{name} must be a non-empty list of positive sizes; received "
                             f"{value!r}.")
    return _field(default, check)
