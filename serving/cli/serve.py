"""`seqzoo serve`: serves SavedModels over TF Serving's REST and gRPC APIs.

It accepts TF Serving's flag spellings (`--port`, `--rest_api_port`, `--model_name`,
`--model_base_path`, `--model_config_file`, ...), so one command line works for both servers.
"""

from __future__ import annotations

import logging
import pathlib
import signal
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve SavedModels over TF Serving's REST and gRPC APIs",
        description="Serve every model of --models-dir (or one model given by --model_name and "
                    "--model_base_path) over TF Serving's REST and gRPC APIs.",
    )
    parser.add_argument("--models-dir", "--models_dir", default=None,
                        help="directory of models NAME/VERSION/ (default: models, unless "
                             "--model_base_path is given)")
    parser.add_argument("--model_name", "--model-name", default=None)
    parser.add_argument("--model_base_path", "--model-base-path", default=None)
    parser.add_argument("--model_config_file", "--model-config-file", default=None,
                        help="TF Serving model config file (text ModelServerConfig)")
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float, default=None,
                        help="accepted for TF Serving compatibility; the config file is re-read "
                             "at every poll")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default: 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", "--grpc-port", "--grpc_port", dest="port", type=int, default=8500,
                        help="gRPC port (default: 8500)")
    parser.add_argument("--rest_api_port", "--rest-api-port", "--rest-port", dest="rest_api_port",
                        type=int, default=8501, help="REST port (default: 8501)")
    parser.add_argument("--file_system_poll_wait_seconds", "--poll-seconds", dest="poll_seconds",
                        type=float, default=2.0, help="seconds between looks for new versions")
    parser.set_defaults(func=run)


def run(args) -> int:
    if (args.model_name is None) != (args.model_base_path is None):
        raise ValueError("--model_name and --model_base_path go together; give both or neither.")
    sources = [args.models_dir, args.model_base_path, args.model_config_file]
    if sum(source is not None for source in sources) > 1:
        raise ValueError(
            "Give one of --models-dir, --model_name/--model_base_path or --model_config_file."
        )
    use_models_dir = args.model_base_path is None and args.model_config_file is None
    models_dir = (args.models_dir or "models") if use_models_dir else None
    watched = (("--models-dir", models_dir), ("--model_base_path", args.model_base_path))
    for flag, directory in watched:
        if directory is not None and not pathlib.Path(directory).is_dir():
            # A warning, not an error: a server may start before the first export (TF Serving
            # also waits for versions to appear), but a typo must not go unnoticed.
            print(f"seqzoo serve: warning: {flag} {directory!r} does not exist (yet); nothing is "
                  "served until models are exported there.", file=sys.stderr, flush=True)
    from seqzoo.serving.server import ModelServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = ModelServer(
        models_dir,
        model_name=args.model_name, model_base_path=args.model_base_path,
        model_config_file=args.model_config_file, host=args.host,
        rest_port=args.rest_api_port, grpc_port=args.port, poll_seconds=args.poll_seconds,
    )
    server.start()
    # Before the line below announces the server: whoever reads it may stop it at once.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.stop())
    loaded = {name: server.registry.versions(name) for name in server.registry.names()}
    print(f"Serving {loaded or 'no models yet'}: gRPC on {args.host}:{server.grpc_port}, "
          f"REST on http://{args.host}:{server.rest_port}/v1/models/NAME (Ctrl-C stops)",
          flush=True)
    server.wait()
    return 0
