"""`seqzoo serve`: serves SavedModels over TF Serving's REST and gRPC APIs.

It accepts TF Serving's flag spellings (`--port`, `--rest_api_port`, `--model_name`,
`--model_base_path`, `--model_config_file`, ...), so one command line works for both servers.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import signal
import sys
import threading

MEBIBYTE = 1 << 20


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
    parser.add_argument("--model_config_file_poll_wait_seconds", type=_non_negative(float),
                        default=0.0, help="seconds between re-reads of --model_config_file "
                                          "(default: 0, read once)")
    parser.add_argument("--allow_version_labels_for_unavailable_models", action="store_true",
                        help="let a label point at a version that is not AVAILABLE yet")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default: 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", "--grpc-port", "--grpc_port", dest="port", type=int, default=8500,
                        help="gRPC port (default: 8500)")
    parser.add_argument("--rest_api_port", "--rest-api-port", "--rest-port", dest="rest_api_port",
                        type=int, default=8501, help="REST port (default: 8501)")
    parser.add_argument("--file_system_poll_wait_seconds", "--poll-seconds", dest="poll_seconds",
                        type=float, default=2.0, help="seconds between looks for new versions")
    parser.add_argument("--rest_api_timeout_in_ms", type=_positive(int), default=30000,
                        help="how long a REST request may take to arrive, and an idle connection "
                             "stay open (default: 30000)")
    parser.add_argument("--rest_api_max_body_bytes", type=_positive(int), default=16 * MEBIBYTE,
                        help="largest REST request body; larger ones get 413 unparsed "
                             "(default: 16 MiB)")
    parser.add_argument("--rest_api_max_elements", type=_positive(int), default=1 << 22,
                        help="most tensor elements in one REST predict request (default: 4194304)")
    parser.add_argument("--rest_api_num_threads", type=_positive(int), default=None,
                        help="threads computing REST answers at once (default: 4 per CPU)")
    parser.add_argument("--grpc_max_threads", type=_positive(int), default=8,
                        help="threads answering gRPC calls at once (default: 8)")
    parser.add_argument("--grpc_channel_arguments", type=_channel_arguments, default={},
                        help="gRPC server arguments as comma-separated key=value pairs, e.g. "
                             "grpc.max_receive_message_length=1048576 (default: messages up to "
                             "64 MiB received)")
    parser.add_argument("--monitoring_config_file", default=None,
                        help="TF Serving monitoring config (text MonitoringConfig), e.g. "
                             "prometheus_config { enable: true path: \"/metrics\" }: serves "
                             "Prometheus metrics at that path of the REST port")
    parser.add_argument("--enable_batching", type=_boolean, nargs="?", const=True, default=False,
                        help="merge concurrent predict requests into batched model calls "
                             "(TF Serving's flag; also --enable_batching=true|false)")
    parser.add_argument("--batching_parameters_file", default=None,
                        help="TF Serving batching parameters (text BatchingParameters), e.g. "
                             "max_batch_size { value: 32 } batch_timeout_micros { value: 2000 }; "
                             "default: TF Serving's (max_batch_size 1000, batch_timeout_micros "
                             "0, max_enqueued_batches 10, a batch thread per core)")
    parser.add_argument("--enable_per_model_batching_parameters", type=_boolean, nargs="?",
                        const=True, default=False,
                        help="with --enable_batching, batch only the model versions whose "
                             "directory holds a batching_params.pbtxt, by its parameters; the "
                             "batch threads stay those of --batching_parameters_file (TF "
                             "Serving's flag)")
    for flag, pools in (("session", "both thread pools (intra- and inter-op)"),
                        ("intra_op", "threads one op may use"),
                        ("inter_op", "ops run at once")):
        parser.add_argument(
            f"--tensorflow_{flag}_parallelism", type=_non_negative(int), default=0,
            help=f"TensorFlow session threads of every model: {pools}; 0 (default): "
                 "TensorFlow chooses. As in TF Serving, the intra/inter-op flags win over "
                 "--tensorflow_session_parallelism (all three together are refused)")
    parser.add_argument("--platform_config_file", default=None,
                        help="TF Serving platform config (text PlatformConfigMap): the "
                             "session_config (any ConfigProto, e.g. inter_op_parallelism_threads: "
                             "-1 runs ops in the calling thread) and batching_parameters of the "
                             "tensorflow platform; replaces --enable_batching, "
                             "--batching_parameters_file and --tensorflow_*_parallelism")
    parser.add_argument("--drain_timeout_seconds", type=_non_negative(float), default=20.0,
                        help="on SIGTERM or Ctrl-C, how long requests already accepted may take "
                             "to finish before the server exits (default: 20)")
    parser.set_defaults(func=run)


def _checked(kind, accepts, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {what} {kind.__name__}; received {text!r}")
        return value
    return parse


def _channel_arguments(text: str) -> dict[str, int | str]:
    """TF Serving's `--grpc_channel_arguments`: comma-separated `key=value` pairs, whole
    numbers read as integers."""
    arguments = {}
    for pair in filter(None, (item.strip() for item in text.split(","))):
        key, equals, value = (part.strip() for part in pair.partition("="))
        if not equals or not key:
            raise argparse.ArgumentTypeError(
                f"expected key=value pairs separated by commas; received {pair!r}")
        arguments[key] = int(value) if value.lstrip("-").isdigit() else value
    return arguments


def _boolean(text: str) -> bool:
    """A boolean flag's value as TF Serving's flag parser reads it."""
    values = {"true": True, "1": True, "false": False, "0": False}
    if text.lower() not in values:
        raise argparse.ArgumentTypeError(f"expected true or false; received {text!r}")
    return values[text.lower()]


def _positive(kind):
    return _checked(kind, lambda value: value > 0, "a positive")


def _non_negative(kind):
    return _checked(kind, lambda value: value >= 0, "a non-negative")


def run(args) -> int:
    if (args.model_name is None) != (args.model_base_path is None):
        raise ValueError("--model_name and --model_base_path go together; give both or neither.")
    sources = [args.models_dir, args.model_base_path, args.model_config_file]
    if sum(source is not None for source in sources) > 1:
        raise ValueError(
            "Give one of --models-dir, --model_name/--model_base_path or --model_config_file."
        )
    if args.model_config_file_poll_wait_seconds and args.model_config_file is None:
        raise ValueError("--model_config_file_poll_wait_seconds re-reads --model_config_file; "
                         "give one.")
    metrics_path = None
    if args.monitoring_config_file is not None:
        from seqzoo.serving.serving_metrics import read_monitoring_config

        metrics_path = read_monitoring_config(args.monitoring_config_file)
    session_threads = _session_threads(args)
    batching = _batching_parameters(args)
    use_models_dir = args.model_base_path is None and args.model_config_file is None
    models_dir = (args.models_dir or "models") if use_models_dir else None
    watched = (("--models-dir", models_dir), ("--model_base_path", args.model_base_path))
    for flag, directory in watched:
        if directory is not None and not pathlib.Path(directory).is_dir():
            # A warning, not an error: a server may start before the first export (TF Serving
            # also waits for versions to appear), but a typo must not go unnoticed.
            print(f"seqzoo serve: warning: {flag} {directory!r} does not exist (yet); nothing is "
                  "served until models are exported there.", file=sys.stderr, flush=True)
    # From here a SIGTERM (Kubernetes' stop) or Ctrl-C drains instead of killing, even while
    # the first versions load.
    stopping = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)

    def stop_gracefully(signum, frame):
        stopping.set()
        for each in signals:  # a second one stops at once
            signal.signal(each, signal.SIG_DFL)

    for signum in signals:
        signal.signal(signum, stop_gracefully)
    from seqzoo.serving.rest_limits import RestLimits
    from seqzoo.serving.server import ModelServer

    session_config = None
    if args.platform_config_file is not None:
        from seqzoo.serving.platform_config import read_platform_config

        platform = read_platform_config(args.platform_config_file)
        session_config, batching = platform.session_config, platform.batching
    elif any(session_threads):
        from tensorflow.core.protobuf import config_pb2

        session_config = config_pb2.ConfigProto(intra_op_parallelism_threads=session_threads[0],
                                                inter_op_parallelism_threads=session_threads[1])

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = ModelServer(
        models_dir,
        model_name=args.model_name, model_base_path=args.model_base_path,
        model_config_file=args.model_config_file, host=args.host,
        rest_port=args.rest_api_port, grpc_port=args.port, poll_seconds=args.poll_seconds,
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
        allow_version_labels_for_unavailable_models=(
            args.allow_version_labels_for_unavailable_models),
        rest_limits=RestLimits(max_body_bytes=args.rest_api_max_body_bytes,
                               timeout_seconds=args.rest_api_timeout_in_ms / 1000,
                               max_elements=args.rest_api_max_elements),
        rest_num_threads=args.rest_api_num_threads,
        grpc_max_threads=args.grpc_max_threads, grpc_arguments=args.grpc_channel_arguments,
        metrics_path=metrics_path, batching=batching, session_config=session_config,
        per_model_batching=args.enable_per_model_batching_parameters,
    )
    server.start()
    loaded = {name: server.registry.versions(name) for name in server.registry.names()}
    print(f"Serving {loaded or 'no models yet'}: gRPC on {args.host}:{server.grpc_port}, "
          f"REST on http://{args.host}:{server.rest_port}/v1/models/NAME (Ctrl-C stops)",
          flush=True)
    # The kernel may hand a signal to any thread, and Python runs the handler only once the main
    # thread runs again: an untimed wait would sleep through a SIGTERM that another thread got.
    while not stopping.wait(0.2):
        pass
    print(f"Stopping: no new requests; answering those accepted (up to "
          f"{args.drain_timeout_seconds:g} s) ...", flush=True)
    server.stop(drain_seconds=args.drain_timeout_seconds)
    print("Stopped.", flush=True)
    return 0


def _session_threads(args) -> tuple[int, int]:
    """The (intra-op, inter-op) thread counts of every session, chosen from the three flags as
    TF Serving chooses (0: TensorFlow's default)."""
    flags = ("--tensorflow_session_parallelism", "--tensorflow_intra_op_parallelism",
             "--tensorflow_inter_op_parallelism")
    session, intra, inter = (args.tensorflow_session_parallelism,
                             args.tensorflow_intra_op_parallelism,
                             args.tensorflow_inter_op_parallelism)
    if args.platform_config_file is not None:
        # TF Serving ignores these without a word; here a flag that would do nothing is refused.
        given = [flag for flag, value in zip(flags, (session, intra, inter)) if value]
        given += ["--enable_batching"] * bool(args.enable_batching)
        given += (["--enable_per_model_batching_parameters"]
                  * bool(args.enable_per_model_batching_parameters))
        if given:
            raise ValueError(f"--platform_config_file sets the session config and batching; "
                             f"{', '.join(given)} would be ignored (as in TF Serving): set them in "
                             "the file's session_config and batching_parameters instead.")
        return 0, 0
    if session and intra and inter:
        raise ValueError("Give either --tensorflow_session_parallelism or "
                         "--tensorflow_intra_op_parallelism and --tensorflow_inter_op_parallelism, "
                         "not all three.")
    if intra or inter:
        return intra, inter
    return session, session


def _batching_parameters(args):
    """The `BatchingParameters` the flags ask for (None without --enable_batching), read
    before TensorFlow loads so that a bad file is refused at once."""
    from seqzoo.serving import batching_parameters

    if not args.enable_batching:
        if args.batching_parameters_file is not None:
            # TF Serving refuses this too: the file would silently do nothing.
            raise ValueError("--batching_parameters_file is given without --enable_batching; "
                             "add --enable_batching to batch requests.")
        if args.enable_per_model_batching_parameters:
            raise ValueError("--enable_per_model_batching_parameters is given without "
                             "--enable_batching; add --enable_batching to batch requests.")
        return None
    if args.batching_parameters_file is None:
        return batching_parameters.BatchingParameters(
            thread_pool_name=batching_parameters.MODEL_SERVER_THREAD_POOL_NAME)
    return batching_parameters.read_batching_parameters(args.batching_parameters_file)
