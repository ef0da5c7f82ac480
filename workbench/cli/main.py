"""The ``snn-workbench`` command line: the same engine the window drives, for scripts and CI.

User errors (ours: ``WorkbenchError``) print one line and exit 2 (``compare`` exits 1 when the
traces differ); ``--debug`` shows the traceback. With no sub-command the window opens on the demo.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from workbench import __version__
from workbench.cli.args import add_model_args, add_sim_args
from workbench.errors import WorkbenchError

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snn-workbench", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"snn-workbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("run", help="simulate a converted network; print per-layer statistics and accuracy")
    add_model_args(p)
    add_sim_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--record-trace", metavar="FILE",
                   help="also record the first batch (spikes, membrane, ANN) to a trace file: .npz, .h5, .csv")
    p.add_argument("--trace-layer", action="append", metavar="NAME",
                   help="record only this neuron layer (repeatable; default every layer); "
                        "a .csv trace holds exactly one")
    p.add_argument("--max-record-mb", type=float, default=2048, metavar="MB",
                   help="memory a recording may take (default 2048); above it an .h5 trace is streamed "
                        "to disk and other formats are refused")

    p = sub.add_parser("verify", help="check the imported network's numpy forward pass against Keras "
                                      "(or onnxruntime for .onnx), layer by layer")
    p.add_argument("model", help="a .keras, .h5 or .onnx model")
    p.add_argument("--data", help="sample inputs (default: random inputs in [0, 1])")
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="absolute tolerance per layer (default 1e-4)")
    p.add_argument("--rtol", type=float, default=1e-3,
                   help="relative tolerance: max|diff| within RTOL x the layer's max|keras| (default 1e-3)")

    p = sub.add_parser("convert", help="import a Keras/ONNX model and save it as a network file (no TensorFlow needed to open it)")
    p.add_argument("model")
    p.add_argument("output", help="output .npz (the suffix is added when missing)")
    p.add_argument("--calibration", help="normalize with this data before saving")
    p.add_argument("--normalize", type=float, default=99.9, metavar="P")
    p.add_argument("--normalize-rule", choices=["workbench", "snntoolbox"], default="workbench")
    p.add_argument("--normalization-file", metavar="JSON", help="SNN Toolbox's <percentile>.json factors")
    p.add_argument("--remedies", metavar="SPEC", default="",
                   help="convert with low-latency remedies (half, channel, burstN, balance, calibN, lateral; "
                        "joined by '+'); saved with the network, used whenever it runs")

    sub.add_parser("neurons", help="list neuron models and their parameters")
    sub.add_parser("bundled", help="where the shipped demo files and the C reference are (also after a pip install)")

    p = sub.add_parser("gui", help="open the window (default: on the bundled demo)")
    p.add_argument("model", nargs="?")
    p.add_argument("--data")

    for module in _extension_modules():
        module.register(sub)
    for p in sub.choices.values():  # ``run x.keras --debug`` works as well as ``--debug run x.keras``
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
    return parser


def _extension_modules():
    """Sub-command modules that register themselves (traces, evaluation, ...)."""
    import importlib

    mods = []
    for name in ("workbench.cli.trace_commands", "workbench.cli.eval_commands"):
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return mods


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:  # TensorFlow's own log lines too (models.keras.import_keras keeps them quiet)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    try:
        if args.command is None or args.command == "gui":
            from workbench.views.app import run_app

            return run_app(getattr(args, "model", None), getattr(args, "data", None))
        from workbench.cli import model_commands as cli_commands

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
