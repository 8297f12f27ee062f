"""TF Serving's config files: text protos read with errors that say what is wrong."""

from __future__ import annotations

from google.protobuf import text_format


def read_text_proto(path, message, what: str, example: str, descriptor_pool=None):
    """Fills `message` from the text proto file at `path` and returns it.

    Args:
        path: the file.
        message: an empty message of the file's type.
        what: the file's kind in errors, e.g. "monitoring config".
        example: a valid text for the error of a file that does not parse.
        descriptor_pool: where the types named in `google.protobuf.Any` fields are looked
            up (`[type.googleapis.com/NAME] { ... }`); None: protobuf's default pool.

    Raises:
        ValueError: the file cannot be read or does not parse (the parser's message names
            the line and field).
    """
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as err:
        raise ValueError(f"Cannot read the {what} file {str(path)!r}: {err}") from None
    try:
        text_format.Parse(text, message, descriptor_pool=descriptor_pool)
    except text_format.ParseError as err:
        raise ValueError(f"{what.capitalize()} file {str(path)!r} is not a text "
                         f"{message.DESCRIPTOR.name} ({err}); expected e.g. {example}") from None
    return message
