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
    parser.add_argument("--plot-dir", default="plots", help="where the two PNG plots are written (default plots)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args):
    from kerasdrop.demo import run_demo

    run_demo(
        epochs=args.epochs,
        samples=args.samples,
        output_dir=args.output_dir,
        seed=args.seed,
        plot_dir=args.plot_dir,
        verbose=0 if args.quiet else 1,
    )


def _add_predict_parser(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="Monte Carlo dropout predictions of a saved model",
        description="Runs kerasdrop.MCDropout on a .keras model and writes the mean, variance and std of the "
        "sampled outputs (and, for probability outputs, the predictive entropy, expected entropy and mutual "
        "information) to a .npz file.",
    )
    parser.add_argument("model", help="the model, a .keras file")
    parser.add_argument(
        "input",
        help="the inputs: a .npy array of shape (N, ...) as the model expects, or a .npz file with one array per "
        "model input, named as the inputs",
    )
    parser.add_argument("--output", required=True, help="the .npz file to write")
    parser.add_argument("--batch-size", type=int, default=None, help="inputs per batch (default: automatic)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the samples (default: new samples each run)")
    parser.add_argument("--keep-samples", action="store_true", help="also write every sample, shape (T, N, ...)")
    _add_sampler_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_predict)


def _add_sampler_arguments(parser):
    """The MCDropout arguments that `predict` and `export` share."""
    from kerasdrop.mc.outputs import OUTPUT_TYPES

    parser.add_argument("--samples", type=int, default=50, help="Monte Carlo samples per input (default 50)")
    parser.add_argument("--memory-budget-mb", type=float, default=256.0, help="memory per sampler call (default 256)")
    parser.add_argument(
        "--output-type",
        default=["auto"],
        nargs="+",
        choices=OUTPUT_TYPES,
        help="how outputs are read (default auto: probabilities after a softmax or sigmoid, else regression; "
        "logits: softmax, or sigmoid for one unit, on each sample); one for every output, or one per output in "
        "their order (dict outputs: sorted by key)",
    )


def _load_model(path):
    _existing_file(path, "model file")
    import keras

    import kerasdrop  # noqa: F401  (registers the kerasdrop layers for loading)

    return keras.saving.load_model(path)


def _existing_file(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _run_predict(args):
    import numpy as np

    model = _load_model(args.model)
    _existing_file(args.input, "input file")
    import kerasdrop
    from kerasdrop.mc.outputs import output_keys

    x = np.load(args.input, allow_pickle=False)
    if isinstance(x, np.lib.npyio.NpzFile):  # several inputs: one array per input name
        with x:
            x = {name: x[name] for name in x.files}
    sampler = _mc_dropout(model, args)
    results = sampler.predict(
        x, batch_size=args.batch_size, verbose=0 if args.quiet else 1, keep_samples=args.keep_samples
    )
    arrays = {}
    if isinstance(results, kerasdrop.MCDropoutResult):
        arrays.update(_result_arrays(results))
    else:  # several outputs: keys prefixed with the output's key or index
        keys = output_keys(results, len(results))
        flat = [results[key] for key in keys] if isinstance(results, dict) else list(results)
        for key, result in zip(keys, flat, strict=True):
            arrays.update({f"{key}_{name}": value for name, value in _result_arrays(result).items()})
    output = args.output if args.output.endswith(".npz") else args.output + ".npz"  # as np.savez names it
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    np.savez(output, **arrays)
    count = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    print(f"wrote {', '.join(arrays)} for {count} inputs ({args.samples} samples each) to {output}")


def _result_arrays(result):
    arrays = {"mean": result.mean, "variance": result.variance, "std": result.std}
    if result.output_type == "gaussian":
        arrays["aleatoric_variance"] = result.aleatoric_variance
        arrays["predictive_variance"] = result.predictive_variance()
    elif result.output_type != "regression":
        arrays["predictive_entropy"] = result.predictive_entropy()
        arrays["expected_entropy"] = result.expected_entropy()
        arrays["mutual_information"] = result.mutual_information()
    if result.samples is not None:
        arrays["samples"] = result.samples
    return arrays


def _add_export_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="a SavedModel that serves Monte Carlo predictions of a saved model",
        description="Writes a TensorFlow SavedModel whose serve(x) endpoint (also the serving_default signature) "
        "draws the Monte Carlo samples of each input and returns mean, variance and, for probability outputs, the "
        "predictive entropy, expected entropy and mutual information. It loads with tf.saved_model.load alone.",
    )
    parser.add_argument("model", help="the model, a .keras file")
    parser.add_argument("directory", help="the SavedModel folder to write (new or empty)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first call's samples (default: none)")
    _add_sampler_arguments(parser)
    parser.set_defaults(handler=_run_export)


def _mc_dropout(model, args):
    import kerasdrop
    from kerasdrop._compat import output_structure

    output_type = args.output_type[0] if len(args.output_type) == 1 else list(args.output_type)
    outputs = output_structure(model)
    if isinstance(output_type, list) and isinstance(outputs, dict) and len(outputs) == len(output_type):
        output_type = dict(zip(sorted(outputs), output_type, strict=True))  # the sorted keys, as the help says
    return kerasdrop.MCDropout(
        model,
        samples=args.samples,
        seed=args.seed,
        memory_budget_mb=args.memory_budget_mb,
        output_type=output_type,
    )


def _run_export(args):
    _mc_dropout(_load_model(args.model), args).export(args.directory)
    print(f"wrote a SavedModel serving {args.samples} Monte Carlo samples per input to {args.directory}")


def _add_list_parser(subparsers):
    parser = subparsers.add_parser("list", help="print every dropout variant with its paper")
    parser.set_defaults(handler=_run_list)


def _run_list(args):
    from kerasdrop.catalog import format_table

    print(format_table())


def build_parser():
    parser = argparse.ArgumentParser(prog="kerasdrop", description="Dropout variants for Keras 3.")
    from kerasdrop import __version__

    parser.add_argument("--version", action="version", version=f"kerasdrop {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_demo_parser(subparsers)
    _add_predict_parser(subparsers)
    _add_export_parser(subparsers)
    _add_list_parser(subparsers)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"kerasdrop {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
