"""The `kerasdrop` command: `kerasdrop demo` and the other subcommands."""

import argparse
import os
import sys


def _add_demo_parser(subparsers):
    parser = subparsers.add_parser("demo", help="train, save, reload and sample a small model on the digits data")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs (default 40)")
    parser.add_argument("--samples", type=int, default=30, help="Monte Carlo samples per input (default 30)")
    parser.add_argument("--output-dir", default="saved_models", help="where the model is saved (default saved_models)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split, weights and masks (default 0)")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args):
    from kerasdrop.demo import run_demo

    run_demo(epochs=args.epochs, samples=args.samples, output_dir=args.output_dir, seed=args.seed)


def build_parser():
    parser = argparse.ArgumentParser(prog="kerasdrop", description="Dropout variants for Keras 3.")
    from kerasdrop import __version__

    parser.add_argument("--version", action="version", version=f"kerasdrop {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_demo_parser(subparsers)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"kerasdrop {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
