"""Sub-commands for traces and external implementations: ``compare``, ``export-params``,
``export-nir``. ``register(subparsers)`` adds them; each sets ``handler`` (returns the exit code).

``compare A B`` exits 0 when the traces are equal, 1 when they differ, 2 for bad input (a
``WorkbenchError``, printed by the main CLI with the file and field it concerns).
"""

from __future__ import annotations

import argparse
import sys

from workbench.errors import ConfigError

EXIT_EQUAL, EXIT_DIFFER = 0, 1


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare two trace files (ours or an external implementation's)",
                       description="Align layers by name (or --map), report the first divergence and "
                                   "per-layer mismatch counts. Exit 0 equal, 1 differ, 2 bad input.")
    p.add_argument("a", help="trace A: .npz, .h5/.hdf5, .csv, or a raw trace folder")
    p.add_argument("b", help="trace B")
    p.add_argument("--map", action="append", default=[], metavar="A=B",
                   help="compare layer A of the first file with layer B of the second (repeatable); "
                        "only mapped layers are compared")
    p.add_argument("--membrane-atol", type=float, default=1e-5, help="absolute membrane tolerance (default 1e-5)")
    p.add_argument("--membrane-rtol", type=float, default=0.0, help="relative membrane tolerance (default 0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_compare)

    for name, helptext in (("export-params", "write the converted network's parameters for external implementations"),
                           ("export-nir", "write the converted SNN as a NIR graph (nir package, HDF5)")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("network", help="a saved network (.npz, from 'snn-workbench convert'; normalized there), "
                                       "or a .keras/.h5/.onnx model (exported un-normalized)")
        p.add_argument("output", help="output file (a folder for --format raw)" if name == "export-params"
                       else "output NIR file (HDF5, e.g. net.nir)")
        p.add_argument("--neuron", default="if", help="neuron model (default if)")
        p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="neuron parameter")
        p.add_argument("--reset", choices=["subtract", "zero", "modulo"], help="IF reset mode (default subtract)")
        p.add_argument("--dt", type=float, help="timestep (default: the neuron model's)")
        p.add_argument("--input", choices=["constant", "poisson"], default="constant", help="input encoding")
        if name == "export-params":
            p.add_argument("--format", choices=["npz", "c", "raw"], default="npz",
                           help="npz (default), c (a C header) or raw (folder of .bin + manifest.txt/.json)")
            p.set_defaults(handler=cmd_export_params)
        else:
            p.add_argument("--strict", action="store_true", help="refuse approximations (reset by subtraction)")
            p.set_defaults(handler=cmd_export_nir)


def parse_mapping(items) -> dict[str, str]:
    mapping = {}
    for item in items:
        a, sep, b = str(item).partition("=")
        if not sep or not a or not b:
            raise ConfigError("map", f"expected LAYER_A=LAYER_B, got '{item}'")
        if a in mapping:
            raise ConfigError("map", f"layer '{a}' mapped twice")
        mapping[a] = b
    return mapping


def compare_files(path_a, path_b, mapping=None, membrane_atol=1e-5, membrane_rtol=0.0):
    """Load two trace files and compare them (TraceFileError names the file and field)."""
    from workbench.analysis.compare import compare_traces
    from workbench.exchange.trace_io import load_trace

    for name, value in (("membrane-atol", membrane_atol), ("membrane-rtol", membrane_rtol)):
        if not value >= 0:
            raise ConfigError(name, f"must be >= 0, got {value}")
    a, b = load_trace(path_a), load_trace(path_b)
    return compare_traces(a, b, mapping, membrane_atol, membrane_rtol, names=(str(path_a), str(path_b)))


def cmd_compare(args) -> int:
    from workbench.analysis.compare import format_comparison

    result = compare_files(args.a, args.b, parse_mapping(args.map), args.membrane_atol, args.membrane_rtol)
    print(result.to_json() if args.json else format_comparison(result))
    return EXIT_EQUAL if result.equal else EXIT_DIFFER


def _config(args):
    from workbench.engine.config import SimConfig
    from workbench.engine.neurons import make_neuron, parse_params

    params = parse_params(args.neuron, args.param)
    if args.reset:
        params["reset"] = args.reset
    # the exporters describe every neuron layer as the chosen neuron with a spike readout: the
    # uniform conversion (docs/conversion.md, 'Not covered'), so the config says so
    return SimConfig(neuron=make_neuron(args.neuron, **params), encoder=args.input, dt=args.dt,
                     auto_neurons=False, readout="spikes")


def cmd_export_params(args) -> int:
    from workbench.exchange.export_params import export_params
    from workbench.models.loading import open_model

    path = export_params(open_model(args.network), _config(args), args.output, args.format)
    print(f"wrote {path} ({args.format})")
    return 0


def cmd_export_nir(args) -> int:
    import warnings

    from workbench.exchange.nir_export import export_nir
    from workbench.models.loading import open_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        notes = export_nir(open_model(args.network), _config(args), args.output, strict=args.strict)
    for note in sorted(set(n.split(": ", 1)[1] for n in notes)):
        print(f"approximation: {note}", file=sys.stderr)
    print(f"wrote {args.output} (NIR)")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry (tests, scripts): the three sub-commands without the main CLI."""
    from workbench.errors import WorkbenchError

    parser = argparse.ArgumentParser(prog="snn-workbench")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except WorkbenchError as exc:
        print(f"snn-workbench: error: {exc}", file=sys.stderr)
        return 2
