"""`seqzoo export`, `seqzoo serve` and `seqzoo predict`: argument parsing only (the request and
printout of `predict` are built in serving/predict_request.py).

`serve` accepts TF Serving's flag spellings (`--port`, `--rest_api_port`, `--model_name`,
`--model_base_path`, `--model_config_file`, ...), so one command line works for both servers.
"""

from __future__ import annotations

import json
import logging
import signal
import sys

from seqzoo.serving.predict_request import (OUTPUT_FORMATS, body_inputs, format_outputs, input_specs,
                                     named_inputs, read_request_body, resolve_signature,
                                     text_inputs)


def register(subparsers) -> None:
    export = subparsers.add_parser(
        "export", help="export a run's latest checkpoint as a new SavedModel version",
        description="Export RUN_DIR's latest checkpoint to MODELS_DIR/NAME/VERSION (TF Serving layout).",
    )
    export.add_argument("run_dir", help="run directory written by `seqzoo train`")
    export.add_argument("--models-dir", "--models_dir", default="models",
                        help="root of the model directories (default: models)")
    export.add_argument("--name", default=None, help="model name (default: the run's task name)")
    export.add_argument("--version", type=int, default=None,
                        help="version number (default: one after the latest; never overwritten)")
    export.set_defaults(func=_export)

    serve = subparsers.add_parser(
        "serve", help="serve SavedModels over TF Serving's REST and gRPC APIs",
        description="Serve every model of --models-dir (or one model given by --model_name and "
                    "--model_base_path) over TF Serving's REST and gRPC APIs.",
    )
    serve.add_argument("--models-dir", "--models_dir", default=None,
                       help="directory of models NAME/VERSION/ (default: models, unless "
                            "--model_base_path is given)")
    serve.add_argument("--model_name", "--model-name", default=None)
    serve.add_argument("--model_base_path", "--model-base-path", default=None)
    serve.add_argument("--model_config_file", "--model-config-file", default=None,
                       help="TF Serving model config file (text ModelServerConfig)")
    serve.add_argument("--model_config_file_poll_wait_seconds", type=float, default=None,
                       help="accepted for TF Serving compatibility; the config file is re-read "
                            "at every poll")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 for all)")
    serve.add_argument("--port", "--grpc-port", "--grpc_port", dest="port", type=int, default=8500,
                       help="gRPC port (default: 8500)")
    serve.add_argument("--rest_api_port", "--rest-api-port", "--rest-port", dest="rest_api_port",
                       type=int, default=8501, help="REST port (default: 8501)")
    serve.add_argument("--file_system_poll_wait_seconds", "--poll-seconds", dest="poll_seconds",
                       type=float, default=2.0, help="seconds between looks for new versions")
    serve.set_defaults(func=_serve)

    predict = subparsers.add_parser(
        "predict", help="send texts or named inputs to a served model and print its outputs",
        usage="seqzoo predict NAME [TEXT ...] [--input NAME=JSON ...] [--json FILE] "
              "[--signature NAME] [--version N] [--grpc] [--output {text,json}] [...]",
        description="Send TEXTs (to a signature with one string input, whatever its name), named "
                    "inputs (--input NAME=JSON, repeatable) or a TF Serving request body "
                    "(--json FILE, - for stdin) to model NAME and print the outputs.",
    )
    predict.add_argument("name", metavar="NAME", help="model name")
    texts = predict.add_argument("texts", nargs="+", default=[], metavar="TEXT",
                                 help="texts, one row each, for a signature with one string input")
    # nargs="*" would match zero texts right after NAME and reject texts given after an option
    # (`predict NAME --signature S TEXT`); "+" made optional keeps them wherever they are.
    texts.required = False
    predict.add_argument("--input", dest="inputs", action="append", default=[],
                         metavar="NAME=JSON",
                         help="an input as JSON, e.g. observations='[[[0.1], [0.2]]]' (repeatable)")
    predict.add_argument("--json", dest="json_file", default=None, metavar="FILE",
                         help='a request body {"instances": ...} or {"inputs": ...} (optional '
                              '"signature_name"), read from FILE or from stdin if FILE is -')
    predict.add_argument("--output", choices=OUTPUT_FORMATS, default="text",
                         help="text (readable, default) or json (one object of the outputs)")
    predict.add_argument("--grpc", action="store_true", help="use gRPC instead of REST")
    predict.add_argument("--host", default="127.0.0.1")
    predict.add_argument("--port", "--grpc-port", dest="port", type=int, default=8500,
                         help="gRPC port (default: 8500)")
    predict.add_argument("--rest_api_port", "--rest-api-port", "--rest-port", dest="rest_api_port",
                         type=int, default=8501, help="REST port (default: 8501)")
    predict.add_argument("--signature", default=None,
                         help="signature name (default: the body's signature_name, else "
                              "serving_default)")
    predict.add_argument("--version", type=int, default=None, help="model version (default: latest)")
    predict.set_defaults(func=_predict)


def _export(args) -> int:
    from seqzoo.serving.export import export_run

    path = export_run(args.run_dir, args.models_dir, args.name, args.version)
    print(f"Exported {args.run_dir} to {path}")
    return 0


def _serve(args) -> int:
    from seqzoo.serving.server import ModelServer

    if (args.model_name is None) != (args.model_base_path is None):
        raise ValueError("--model_name and --model_base_path go together; give both or neither.")
    sources = [args.models_dir, args.model_base_path, args.model_config_file]
    if sum(source is not None for source in sources) > 1:
        raise ValueError(
            "Give one of --models-dir, --model_name/--model_base_path or --model_config_file."
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    use_models_dir = args.model_base_path is None and args.model_config_file is None
    server = ModelServer(
        (args.models_dir or "models") if use_models_dir else None,
        model_name=args.model_name, model_base_path=args.model_base_path,
        model_config_file=args.model_config_file, host=args.host,
        rest_port=args.rest_api_port, grpc_port=args.port, poll_seconds=args.poll_seconds,
    )
    server.start()
    loaded = {name: server.registry.versions(name) for name in server.registry.names()}
    print(f"Serving {loaded or 'no models yet'}: gRPC on {args.host}:{server.grpc_port}, "
          f"REST on http://{args.host}:{server.rest_port}/v1/models/NAME (Ctrl-C stops)",
          flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.stop())
    server.wait()
    return 0


def _predict(args) -> int:
    from seqzoo.serving.client import Client

    given = [source for source, value in (("TEXT", args.texts), ("--input", args.inputs),
                                          ("--json", args.json_file is not None)) if value]
    if len(given) != 1:
        raise ValueError(
            "Give the request one way: TEXT arguments, --input NAME=JSON (repeatable) or --json "
            f"FILE. Received: {' and '.join(given) if given else 'none of them'}."
        )
    body = read_request_body(args.json_file) if args.json_file is not None else None
    signature_name = resolve_signature(args.signature, body)
    client = Client(args.host, rest_port=args.rest_api_port, grpc_port=args.port)
    try:
        specs = input_specs(client.signature(args.name, signature_name, args.version))
        where = f"signature {signature_name!r} of model {args.name!r}"
        if args.texts:
            inputs = text_inputs(specs, args.texts, where)
        elif args.inputs:
            inputs = named_inputs(specs, args.inputs, where)
        else:
            inputs = body_inputs(specs, body, where)
        outputs = client.predict(args.name, inputs, signature_name=signature_name,
                                 version=args.version, via="grpc" if args.grpc else "rest")
    finally:
        # An open gRPC channel keeps a polling thread that can abort the process at exit.
        client.close()
    print(format_outputs(outputs, args.texts, args.output), flush=True)
    return 0
