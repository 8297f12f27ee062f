"""`seqzoo predict NAME`: sends texts, image files or named inputs to a served model and prints
its outputs.

The request and the printout are built in `seqzoo.serving.predict_request`.
"""

from __future__ import annotations

from seqzoo.serving.predict_request import OUTPUT_FORMATS, format_outputs, predict

LDS_EXAMPLE = "observations='[[[0.5, -0.2], [0.1, 0.3]]]'"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="send texts, images or named inputs to a served model and print its "
        "outputs",
        usage="seqzoo predict NAME [TEXT ...] [--image FILE|DIR ...] [--input NAME=JSON ...] "
              "[--json FILE] [--frames PATH ...] [--signature NAME] [--version N] [--grpc] "
              "[--output {text,json}] [...]",
        description="Send TEXTs or image files (--image, to a signature with one string input, "
                    "whatever its name), named inputs (--input NAME=JSON, repeatable), a TF "
                    "Serving request body (--json FILE, - for stdin) or a video's frames "
                    "(--frames, to a frame-labeling model) to model NAME and print the outputs.",
    )
    parser.add_argument("name", metavar="NAME", help="model name")
    texts = parser.add_argument("texts", nargs="+", default=[], metavar="TEXT",
                                help="texts, one row each, for a signature with one string input")
    # nargs="*" would match zero texts right after NAME and reject texts given after an option
    # (`predict NAME --signature S TEXT`); "+" made optional keeps them wherever they are.
    texts.required = False
    parser.add_argument("--image", dest="images", action="append", default=[],
                        metavar="FILE|DIR",
                        help="a JPEG or PNG file, or a directory of them (repeatable), one row "
                        "each, e.g. for the captioning model of `seqzoo train captioning`")
    parser.add_argument("--input", dest="inputs", action="append", default=[],
                        metavar="NAME=JSON",
                        help=f"an input as JSON (repeatable), e.g. {LDS_EXAMPLE} for the lds "
                        "model of `seqzoo train lds` (a batch of one sequence of two steps of "
                        "its two observed values)")
    parser.add_argument("--json", dest="json_file", default=None, metavar="FILE",
                        help='a request body {"instances": ...} or {"inputs": ...} (optional '
                             '"signature_name"), read from FILE or from stdin if FILE is -')
    parser.add_argument("--frames", nargs="+", default=[], metavar="PATH",
                        help="a video for a frame-labeling model: PNG/JPEG files, or directories "
                        "of them in name order; sent to its `encoded` signature, and the "
                        "segments (start and end frame, label) are printed")
    parser.add_argument("--output", choices=OUTPUT_FORMATS, default="text",
                        help="text (readable, default) or json (one object of the outputs)")
    parser.add_argument("--grpc", action="store_true", help="use gRPC instead of REST")
    parser.add_argument("--host", default="127.0.0.1", help="server host (default: 127.0.0.1)")
    parser.add_argument("--port", "--grpc-port", dest="port", type=int, default=8500,
                        help="gRPC port (default: 8500)")
    parser.add_argument("--rest_api_port", "--rest-api-port", "--rest-port", dest="rest_api_port",
                        type=int, default=8501, help="REST port (default: 8501)")
    parser.add_argument("--signature", default=None,
                        help="signature name (default: the body's signature_name, else "
                             "serving_default)")
    parser.add_argument("--version", type=int, default=None, help="model version (default: latest)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from seqzoo.serving.client import Client
    from seqzoo.zoo.image_formats import image_files

    images = image_files(args.images, "--image")
    # Closed on exit: an open gRPC channel keeps a polling thread that can abort the process.
    with Client(args.host, rest_port=args.rest_api_port, grpc_port=args.port) as client:
        outputs = predict(client, args.name, texts=args.texts, images=images, pairs=args.inputs,
                          json_file=args.json_file, frames=args.frames,
                          signature=args.signature, version=args.version,
                          via="grpc" if args.grpc else "rest")
    if args.frames and args.output == "text":
        from seqzoo.serving.video_request import format_segments

        print(format_segments(outputs), flush=True)
    else:
        labels = [str(path) for path in images] or args.texts
        print(format_outputs(outputs, labels, args.output), flush=True)
    return 0
