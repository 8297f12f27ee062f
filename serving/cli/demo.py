"""`seqzoo demo`: trains, exports, serves and queries the sentiment model end to end."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train, export, serve and query the sentiment model end to end",
        description="Train the sentiment model on the built-in data (reused on later runs), export it "
        "to MODELS_DIR/sentiment/<version>, serve it on loopback and query it over REST and gRPC.",
    )
    parser.add_argument("--run-dir", default="runs/sentiment")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rest-port", "--rest_api_port", dest="rest_port", type=int, default=8501)
    parser.add_argument("--grpc-port", "--port", dest="grpc_port", type=int, default=8500)
    parser.add_argument("--retrain", action="store_true", help="train again even if a trained run exists")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a training setting, e.g. train.steps=300")
    parser.set_defaults(func=run)


def run(args) -> int:
    from seqzoo.serving.demo import run_demo

    run_demo(args.run_dir, args.models_dir, host=args.host, rest_port=args.rest_port,
             grpc_port=args.grpc_port, retrain=args.retrain, overrides=args.overrides)
    return 0
