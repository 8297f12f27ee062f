"""The request of `seqzoo predict` (TEXTs, `--image` files, `--input NAME=JSON` or a `--json`
body), checked against the signature's inputs, and the printout of the outputs it answers."""

from __future__ import annotations

import json
import pathlib
import sys
import typing

DEFAULT_SIGNATURE = "serving_default"
OUTPUT_FORMATS = ("text", "json")
REQUEST_KEYS = ("instances", "inputs", "signature_name")


class _Spec(typing.NamedTuple):
    """An input of a signature: its element type and shape (None: unknown rank; -1: any size)."""

    dtype: "DataType"
    shape: list[int] | None


def input_specs(signature: dict) -> dict[str, _Spec]:
    """The inputs of a signature def (a dict, as `Client.signature` gives it) by name."""
    from seqzoo.serving.data_type import DataType

    specs = {}
    for name, info in sorted(signature["inputs"].items()):
        shape = info.get("tensor_shape", {})
        specs[name] = _Spec(DataType.of(info["dtype"]),
                            None if shape.get("unknown_rank") else
                            [int(dim["size"]) for dim in shape.get("dim", [])])
    return specs


def _describe(specs: dict) -> str:
    def shape(spec):
        return "?" if spec.shape is None else str([None if size < 0 else size
                                                   for size in spec.shape])

    return ", ".join(f"{name} ({spec.dtype.name} {shape(spec)})" for name, spec in specs.items())


def _string_input(specs: dict, arguments: str, where: str) -> str:
    """The name of the signature's one string input, which TEXT or --image arguments fill."""
    if len(specs) != 1 or not next(iter(specs.values())).dtype.is_string:
        raise ValueError(
            f"{arguments} go to a signature with a single string input, but {where} has "
            f"inputs {_describe(specs)}; give them as --input NAME=JSON or --json FILE."
        )
    return next(iter(specs))


def text_inputs(specs: dict, texts: list[str], where: str) -> dict:
    """The request of TEXT arguments: the texts as the signature's one string input."""
    return {_string_input(specs, "TEXT arguments", where): texts}


def image_inputs(specs: dict, files: list[pathlib.Path], where: str) -> dict:
    """The request of --image files: their bytes as the signature's one string input."""
    return {_string_input(specs, "--image files", where): [path.read_bytes() for path in files]}


def named_inputs(specs: dict, pairs: list[str], where: str) -> dict:
    """The request of `--input NAME=JSON` arguments, each checked against the signature."""
    from seqzoo.serving import json_tensors

    arrays = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or not name:
            raise ValueError(f"--input takes NAME=JSON, e.g. x='[[0.5, 1.0]]'. Received: {pair!r}")
        if name not in specs:
            raise ValueError(f"{where} has no input {name!r}; its inputs are {_describe(specs)}.")
        if name in arrays:
            raise ValueError(f"--input {name} is given twice; give each input once.")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"--input {name}: the value is not JSON ({err}); give a number, a quoted string or "
                f"nested lists of them, e.g. {name}='[[0.5, 1.0]]'. Received: {text!r}"
            ) from None
        arrays[name] = json_tensors.to_array(value, specs[name].dtype, f"--input {name}")
    return _complete(arrays, specs, where)


def read_request_body(source: str) -> dict:
    """Reads a TF Serving request body from file `source` (stdin if "-")."""
    text = sys.stdin.read() if source == "-" else pathlib.Path(source).read_text(encoding="utf-8")
    where = "stdin" if source == "-" else source
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"--json {where} is not JSON ({err}); expected a TF Serving request body "
            '{"instances": [...]} or {"inputs": ...}.'
        ) from None
    unknown = sorted(set(body) - set(REQUEST_KEYS)) if isinstance(body, dict) else None
    if unknown is None or unknown:
        raise ValueError(
            f"--json {where} must hold a JSON object with keys among {', '.join(REQUEST_KEYS)}. "
            f"Received: {'keys ' + ', '.join(unknown) if unknown else type(body).__name__}."
        )
    if not isinstance(body.get("signature_name", ""), str):
        raise ValueError(
            f"--json {where}: signature_name must be a string. "
            f"Received: signature_name={body['signature_name']!r}"
        )
    return body


def resolve_signature(flag: str | None, body: dict | None) -> str:
    """--signature, else the body's signature_name, else serving_default; they must agree."""
    in_body = (body or {}).get("signature_name") or None
    if flag and in_body and flag != in_body:
        raise ValueError(
            f"--signature {flag} and the body's signature_name {in_body!r} differ; give one, or "
            "make them equal."
        )
    return flag or in_body or DEFAULT_SIGNATURE


def body_inputs(specs: dict, body: dict, where: str) -> dict:
    """The inputs of a request body, read as the server reads them."""
    from seqzoo.serving import json_tensors

    arrays, _ = json_tensors.parse_predict_request(
        {key: value for key, value in body.items() if key != "signature_name"}, specs)
    return _complete(arrays, specs, where)


def _complete(arrays: dict, specs: dict, where: str) -> dict:
    missing = [name for name in specs if name not in arrays]
    if missing:
        raise ValueError(
            f"{where} needs inputs {_describe(specs)}; missing: {', '.join(missing)}."
        )
    return arrays


def predict(client, name: str, *, texts: list[str] = (), images: list[pathlib.Path] = (),
            pairs: list[str] = (), json_file: str | None = None, frames: list[str] = (),
            signature: str | None = None, version: int | None = None,
            via: str = "rest") -> dict:
    """Sends the request of `seqzoo predict` and returns the outputs by name.

    Args:
        client: a `seqzoo.serving.client.Client`.
        name: the model name.
        texts: texts, one row each, for a signature with one string input.
        images: image files (see `seqzoo.zoo.image_formats.image_files`), one row each, for a signature with one string
            input; their bytes are sent (over REST base64 encoded, as `{"b64": ...}`).
        pairs: `NAME=JSON` inputs.
        json_file: a TF Serving request body's file (stdin if "-").
        frames: image files and directories of them, one video for a frame-labeling model's
            `encoded` signature (see `seqzoo.serving.video_request`).
        signature: the signature name (default: the body's, else serving_default; `encoded`
            for frames).
        version: the model version (default: the latest).
        via: "rest" or "grpc"; the signature is read by the same transport.

    Exactly one of `texts`, `images`, `pairs`, `json_file` and `frames` is given; the request is
    checked against the signature's inputs before it is sent.
    """
    given = [source for source, value in (("TEXT", texts), ("--image", images),
                                          ("--input", pairs), ("--json", json_file is not None),
                                          ("--frames", frames)) if value]
    if len(given) != 1:
        raise ValueError(
            "Give the request one way: TEXT arguments, --image FILE|DIR, --input NAME=JSON "
            "(repeatable), --json FILE or --frames. Received: "
            f"{' and '.join(given) if given else 'none of them'}."
        )
    if frames:
        from seqzoo.serving.video_request import ENCODED_SIGNATURE, video_inputs

        signature = signature or ENCODED_SIGNATURE
    body = read_request_body(json_file) if json_file is not None else None
    signature_name = resolve_signature(signature, body)
    specs = input_specs(client.signature(name, signature_name, version, via=via))
    where = f"signature {signature_name!r} of model {name!r}"
    if frames:
        inputs = _complete(video_inputs(frames), specs, where)
    elif texts:
        inputs = text_inputs(specs, list(texts), where)
    elif images:
        inputs = image_inputs(specs, list(images), where)
    elif pairs:
        inputs = named_inputs(specs, pairs, where)
    else:
        inputs = body_inputs(specs, body, where)
    return client.predict(name, inputs, signature_name=signature_name, version=version, via=via)


def format_outputs(outputs: dict, labels: list[str], output_format: str = "text") -> str:
    """The printout of a prediction.

    `json`: one JSON object of the outputs (nested lists; strings as text, `*_bytes` as b64).
    `text`: for requests of one row per label (the texts of TEXT requests, the files of --image
    requests), each label followed by its row of every output with one row per label; then
    every other output (scalars, other batch sizes, all outputs of --input and --json requests)
    by name, arrays in NumPy's compact notation.
    """
    import numpy as np

    from seqzoo.serving import json_tensors

    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"Unknown output format {output_format!r}; accepted: "
                         f"{', '.join(OUTPUT_FORMATS)}.")
    outputs = {name: np.asarray(value) for name, value in sorted(outputs.items())}
    if output_format == "json":
        return json.dumps({name: json_tensors.to_json(name, value)
                           for name, value in outputs.items()})
    rows = {name: value for name, value in outputs.items()
            if labels and value.ndim and value.shape[0] == len(labels)}
    lines = []
    for index, label in enumerate(labels if rows else []):
        lines.append(label)
        lines.extend(_shown(name, value[index], indent="  ") for name, value in rows.items())
    lines.extend(_shown(name, value) for name, value in outputs.items() if name not in rows)
    return "\n".join(lines)


def _shown(name: str, value, indent: str = "") -> str:
    import numpy as np

    prefix = f"{indent}{name}: "
    value = np.asarray(value)
    if value.ndim == 0:
        item = value.item()
        if isinstance(item, float):
            return prefix + _float(item)
        return prefix + (item if isinstance(item, str) else repr(item) if isinstance(item, bytes)
                         else str(item))
    # Six significant digits without NumPy's column padding keep rows short (--output json has
    # every digit); `prefix` aligns the continuation lines of matrices under the first row.
    return prefix + np.array2string(value, separator=", ", prefix=prefix, threshold=200,
                                    edgeitems=3, max_line_width=100,
                                    formatter={"float_kind": _float})


def _float(value: float) -> str:
    return f"{value:.6g}"
