"""The ``snn-workbench`` command line: the same engine the window drives, for scripts and CI.

User errors (ours: ``WorkbenchError``) print one line and exit 2 (``compare`` exits 1 when the
traces differ); ``--debug`` shows the traceback. With no sub-command the window opens on the demo.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from workbench import __version__
from workbench.errors import WorkbenchError

EXIT_USER_ERROR = 2


class _Default(int):
    """An int default that remembers it was not typed: ``--batch`` larger than the data is an
    error when given, and quietly becomes the data size when it is only the default."""


DEFAULT_BATCH = _Default(64)


def is_default(value) -> bool:
    return isinstance(value, _Default)


def _add_model_args(p: argparse.ArgumentParser, model_required: bool = False) -> None:
    p.add_argument("model", nargs=None if model_required else "?", help="a .keras/.h5 model or a saved network (.npz)")
    p.add_argument("--demo", action="store_true", help="use the bundled digits CNN and its test set")
    p.add_argument("--data", help="sample data: .npz with x (and y), .npy, or an image")
    p.add_argument("--calibration", help="data to normalize with (default: the demo's calibration set, or --data)")
    p.add_argument("--normalize", type=float, default=99.9, metavar="P",
                   help="percentile of ANN activations for data-based normalization (100 = max); 0 = off")


def _add_sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--neuron", default="if", help="neuron model (see 'snn-workbench neurons')")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="neuron parameter (repeatable)")
    p.add_argument("--reset", choices=["subtract", "zero", "modulo"], help="IF reset mode (default subtract)")
    p.add_argument("--input", choices=["constant", "poisson"], default="constant", help="input encoding")
    p.add_argument("--steps", type=int, default=100, help="timesteps per sample")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help="samples simulated together (default 64, or all samples when fewer)")
    p.add_argument("--samples", type=int, help="use only the first N samples")
    p.add_argument("--dt", type=float, help="timestep (default: the neuron model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate-scale", type=float, default=1.0, metavar="S",
                   help="multiply currents by S, divide spike values by S (NengoDL scale_firing_rates)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snn-workbench", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"snn-workbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("run", help="simulate a converted network; print per-layer statistics and accuracy")
    _add_model_args(p)
    _add_sim_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--record-trace", metavar="FILE",
                   help="also record the first batch (spikes, membrane, ANN) to a trace file: .npz, .h5, .csv")
    p.add_argument("--max-record-mb", type=float, default=2048, metavar="MB",
                   help="memory a recording may take (default 2048); above it an .h5 trace is streamed "
                        "to disk and other formats are refused")

    p = sub.add_parser("verify", help="check the imported network's numpy forward pass against Keras")
    p.add_argument("model", help="a .keras or .h5 model")
    p.add_argument("--data", help="sample inputs (default: random inputs in [0, 1])")
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--tolerance", type=float, default=1e-4)

    p = sub.add_parser("convert", help="import a Keras model and save it as a network file (no TensorFlow needed to open it)")
    p.add_argument("model")
    p.add_argument("output", help="output .npz")
    p.add_argument("--calibration", help="normalize with this data before saving")
    p.add_argument("--normalize", type=float, default=99.9, metavar="P")

    sub.add_parser("neurons", help="list neuron models and their parameters")

    p = sub.add_parser("gui", help="open the window (default: on the bundled demo)")
    p.add_argument("model", nargs="?")
    p.add_argument("--data")

    for module in _extension_modules():
        module.register(sub)
    return parser


def _extension_modules():
    """Sub-command modules that register themselves (traces, evaluation, ...)."""
    import importlib

    mods = []
    for name in ("workbench.cli_traces", "workbench.cli_eval"):
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return mods


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None or args.command == "gui":
            from workbench.views.app import run_app

            return run_app(getattr(args, "model", None), getattr(args, "data", None))
        from workbench import cli_commands

        handler = getattr(cli_commands, f"cmd_{args.command.replace('-', '_')}", None)
        if handler is None:
            return args.handler(args)
        return handler(args)
    except WorkbenchError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"snn-workbench: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # the system refused a file we were told to read or write
        if args.debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"snn-workbench: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        if args.debug:
            traceback.print_exc()
        print("snn-workbench: error: out of memory; use fewer samples, a smaller --batch or fewer --steps",
              file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("snn-workbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
