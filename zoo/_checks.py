"""Constructor argument checks shared by the zoo's layers and models; each error names the
argument, what it accepts and the value received, in the Keras style."""

from __future__ import annotations


def check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value}")


def check_one_of(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}. Received: {name}={value!r}"
        )


def check_rate(name: str, value) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value}")


def checked_class_names(class_names) -> list[str]:
    """`class_names` as a list of str, which must hold at least two distinct names."""
    names = [str(name) for name in class_names]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(
            f"`class_names` must hold at least two distinct names. Received: class_names={names}"
        )
    return names
