"""`seqzoo gradients`: measures ‖∂s_t/∂s_k‖ against t − k per recurrent cell and draws a PNG."""

from __future__ import annotations

import argparse


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gradients",
        help="show vanishing gradients: ‖∂s_t/∂s_k‖ against t − k for SimpleRNN, Elman, LSTM, GRU",
        description="Runs the cells on the same inputs (freshly initialised on random inputs, or "
        "trained on the adding problem with --train-steps), measures the spectral norm of the "
        "Jacobian of the state at step t with respect to the state at step k for every k < t, "
        "prints its geometric mean per lag t − k and draws it on a log scale.",
    )
    parser.add_argument("--out", default="gradient_flow.png", metavar="FILE.png",
                        help="PNG file to write (default gradient_flow.png)")
    parser.add_argument("--length", type=_positive, default=60, metavar="T",
                        help="sequence length; lags 1..T are measured (default 60)")
    parser.add_argument("--units", type=_positive, default=32, help="units per cell (default 32)")
    parser.add_argument("--batch", type=_positive, default=8,
                        help="random sequences averaged over (default 8)")
    parser.add_argument("--input-scale", type=float, default=1.0,
                        help="standard deviation of the Gaussian inputs (default 1.0)")
    parser.add_argument("--cells", default=None,
                        help="comma-separated cells (default simple_rnn,elman,lstm,gru)")
    parser.add_argument("--seed", type=int, default=0, help="seed of inputs and weights")
    parser.add_argument("--train-steps", type=int, default=0, metavar="N",
                        help="first train each cell N steps on the adding problem of T steps "
                        "and measure it on adding-problem sequences (default 0: at initialisation)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqzoo.training import gradient_flow
    from seqzoo.training.long_lag_training import parse_cell_names

    cells = parse_cell_names(args.cells) if args.cells else gradient_flow.CELL_NAMES
    curves = gradient_flow.compare_cells(
        length=args.length, units=args.units, batch=args.batch, input_scale=args.input_scale,
        cells=cells, seed=args.seed,
        train_steps=args.train_steps,
    )
    print(gradient_flow.format_norms_table(curves))
    when = (f"after {args.train_steps} steps on the adding problem" if args.train_steps
            else f"at initialisation, inputs N(0, {args.input_scale}²)")
    path = gradient_flow.plot_gradient_flow(
        curves, args.out, title=f"‖∂s_t/∂s_k‖, {args.units} units, {when}")
    print(f"Drawn to {path}")
    return 0
