"""Reading CSV/TSV files of text columns (e.g. text + label, or source + target).

The delimiter comes from the extension (.csv comma, .tsv/.tab tab) or is sniffed among comma,
tab, semicolon and bar. A header row is optional: when the first row names every requested
column, columns are found by name; otherwise they are taken by position, in the requested order.
Rows with a wrong number of fields or an empty requested value are collected and reported
together, with their line numbers, in one ValueError: a file is never silently truncated.
"""

from __future__ import annotations

import csv
import pathlib

DELIMITERS_BY_SUFFIX = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
SNIFFED_DELIMITERS = ",\t;|"
MAX_REPORTED_ROWS = 20


def _delimiter(path: pathlib.Path, sample: str) -> str:
    if path.suffix.lower() in DELIMITERS_BY_SUFFIX:
        return DELIMITERS_BY_SUFFIX[path.suffix.lower()]
    try:
        return csv.Sniffer().sniff(sample, delimiters=SNIFFED_DELIMITERS).delimiter
    except csv.Error:
        raise ValueError(
            f"Cannot tell the delimiter of {str(path)!r}: name it .csv (comma) or .tsv (tab), "
            f"or use one of {SNIFFED_DELIMITERS!r} consistently."
        ) from None


def read_text_table(path, columns=("text", "label")) -> dict[str, list[str]]:
    """Reads the named columns of a CSV/TSV file.

    Args:
        path: file path; .csv is comma separated, .tsv/.tab tab separated, others are sniffed.
        columns: names of the columns to return. With a header row naming them they can be
            anywhere in the row; without one they are the first `len(columns)` fields.

    Returns:
        A dict from column name to the list of its values (stripped strings), one per data row.

    Raises:
        ValueError: if the file is missing or empty, a header lacks a column, or any row is bad
            (every bad row is listed with its line number).

    Example:

    >>> read_text_table("reviews.tsv")  # "text\\tlabel\\ngreat film\\tpositive\\n"
    {'text': ['great film'], 'label': ['positive']}
    """
    path = pathlib.Path(path)
    columns = tuple(columns)
    if not path.is_file():
        raise ValueError(f"Data file {str(path)!r} does not exist.")
    with path.open(newline="", encoding="utf-8") as handle:
        delimiter = _delimiter(path, handle.read(8192))
        handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        rows = [(reader.line_num, row) for row in reader if row]
    if not rows:
        raise ValueError(f"Data file {str(path)!r} holds no rows.")

    first = [field.strip() for field in rows[0][1]]
    if set(columns) <= set(first):
        indices = [first.index(name) for name in columns]
        width = len(first)
        rows = rows[1:]
    elif any(name in first for name in columns):
        missing = [name for name in columns if name not in first]
        raise ValueError(
            f"The header of {str(path)!r} lacks column(s) {missing}; it has {first}."
        )
    else:
        indices = list(range(len(columns)))
        width = len(first)
        if width < len(columns):
            raise ValueError(
                f"{str(path)!r} has {width} field(s) per row; {len(columns)} are needed "
                f"({', '.join(columns)})."
            )

    values: dict[str, list[str]] = {name: [] for name in columns}
    problems = []
    for line, row in rows:
        if len(row) != width:
            problems.append(f"line {line}: {len(row)} field(s), expected {width}")
            continue
        fields = [row[i].strip() for i in indices]
        empty = [name for name, field in zip(columns, fields) if not field]
        if empty:
            problems.append(f"line {line}: empty {', '.join(empty)}")
            continue
        for name, field in zip(columns, fields):
            values[name].append(field)
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED_ROWS])
        more = len(problems) - MAX_REPORTED_ROWS
        raise ValueError(
            f"{len(problems)} bad row(s) in {str(path)!r} (delimiter {delimiter!r}): {shown}"
            + (f"; and {more} more" if more > 0 else "")
        )
    if not values[columns[0]]:
        raise ValueError(f"Data file {str(path)!r} has a header but no data rows.")
    return values
