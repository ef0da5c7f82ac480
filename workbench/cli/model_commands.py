"""Bodies of the core sub-commands (``run``, ``verify``, ``convert``, ``neurons``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from workbench.cli.args import is_default
from workbench.cli.progress import normalizing, progress_bar
from workbench.analysis import warmup
from workbench.errors import ConfigError, DataFileError


def make_config(args, batch: int):
    """A SimConfig from the shared simulation arguments; every error names its option."""
    from workbench.engine.config import SimConfig
    from workbench.engine.neurons import make_neuron, parse_params

    params = parse_params(args.neuron, args.param)
    if args.reset:
        if "reset" in params and params["reset"] != args.reset:
            raise ConfigError("reset", "given both as --reset and --param reset=...")
        params["reset"] = args.reset
    neuron = make_neuron(args.neuron, **params)
    overrides = {}
    for item in getattr(args, "layer", None) or []:
        layer, sep, spec = str(item).partition("=")
        if not sep or not layer.strip() or not spec.strip():
            raise ConfigError("layer", f"expected LAYER=NEURON[:KEY=VALUE,...], got '{item}'")
        model_name, _, kv = spec.partition(":")
        model_name = model_name.strip()
        items = [p for p in kv.split(",") if p.strip()]
        overrides[layer.strip()] = make_neuron(model_name, **parse_params(model_name, items))
    if getattr(args, "input_spikes", None) and args.input != "recorded":
        raise ConfigError("input-spikes", "replays a spike train only with --input recorded")
    return SimConfig(neuron=neuron, overrides=overrides, encoder=args.input, dt=args.dt, steps=args.steps,
                     batch=batch, seed=args.seed, rate_scale=args.rate_scale, record=(), record_membrane=False,
                     float64=getattr(args, "float64", False), synaptic_delay=getattr(args, "synaptic_delay", 0),
                     softmax_output=getattr(args, "softmax_output", "if"), synapse=getattr(args, "synapse", None),
                     rate_inversion=not getattr(args, "no_rate_inversion", False),
                     readout=getattr(args, "readout", "auto"), auto_neurons=not getattr(args, "uniform", False))


def conversion_lines(network, config, notes=(), warnings: bool = True) -> list[str]:
    """What every command prints before its results: normalization's and the conversion plan's
    warnings, the notes of ``prepare``, and which neuron model each layer runs."""
    from workbench.engine.conversion import plan

    config.check_against(network)
    p = plan(network, config)
    lines = [f"note      {n}" for n in notes]
    if warnings:  # (diagnose's report prints them itself)
        lines += [f"warning   {w}" for w in network.normalization.get("warnings", ())]
        lines += [f"warning   {w}" for w in p.warnings]
    lines += [f"layer     {d}" for d in p.describe()]
    return lines


def prepare_args(args, data=None, calibration=None, percentile=None, on_progress=None, demo=False,
                 keep_normalized=False):
    """``prepare`` with the normalization rule and file options of ``add_model_args``."""
    from workbench.models.prepare import prepare

    model = args.model
    return prepare(model, data, calibration, percentile, demo=demo, on_progress=on_progress,
                   keep_normalized=keep_normalized,
                   rule=getattr(args, "normalize_rule", "workbench"),
                   factors_file=getattr(args, "normalization_file", None))


def _run_recorded(args, prep, config) -> int:
    """``run --input recorded``: replay the spike train of --input-spikes (its batch, its steps)."""
    from workbench.engine.encoders import input_train
    from workbench.engine.simulator import Simulator
    from workbench.exchange.trace_io import load_trace, save_trace

    if not args.input_spikes:
        raise ConfigError("input-spikes", "--input recorded needs the trace to replay (--input-spikes FILE)")
    net = prep.network
    train = input_train(load_trace(args.input_spikes), net.input_layer.name, net.input_shape)
    steps = min(args.steps, len(train))
    cfg = config.replace(batch=train.shape[1], record=None if args.record_trace else (),
                         record_membrane=bool(args.record_trace), max_record_bytes=None, steps=steps)
    sim = Simulator(net, cfg)
    sim.set_input_spikes(train)
    sim.run(steps)
    print(f"network   {net.name}   input replayed from {args.input_spikes} "
          f"({train.shape[1]} sample(s), {len(train)} recorded steps)")
    print(f"run       {steps} steps   neuron {config.neuron.describe()}")
    print("predicted " + " ".join(str(int(p)) for p in sim.prediction()))
    if args.record_trace:
        save_trace(sim.trace(), args.record_trace)
        print(f"trace     {args.record_trace}")
    return 0


def cmd_run(args) -> int:
    from workbench.analysis.layer_stats import format_table
    from workbench.analysis.evaluate import evaluate

    if args.model is None and not args.demo:
        raise ConfigError("model", "name a model file or use --demo")
    with normalizing(not args.no_progress) as bar:
        prep = prepare_args(args, args.data, args.calibration, args.normalize or None, bar, demo=args.demo,
                            keep_normalized=is_default(args.normalize))
    if args.input == "recorded":
        return _run_recorded(args, prep, make_config(args, 1))
    if prep.samples is None:
        raise DataFileError("no sample data: pass --data FILE.npz (x and optional y)")
    x, y = prep.samples.x, prep.samples.y
    if args.samples is not None:
        if args.samples < 1:
            raise ConfigError("samples", f"must be >= 1, got {args.samples}")
        x = x[: args.samples]
        y = None if y is None else y[: args.samples]
    if args.batch < 1:
        raise ConfigError("batch", f"must be >= 1, got {args.batch}")
    if args.batch > len(x) and not is_default(args.batch):
        raise ConfigError("batch", f"{args.batch} is more than the {len(x)} sample(s) in the data; "
                                   f"use --batch {len(x)} or less")
    config = make_config(args, min(args.batch, len(x)))
    warmup.announce()  # a first run on this machine compiles for ~20 s before the bar moves
    from workbench.analysis.remedies import with_remedies

    prep, config = with_remedies(prep, config, args.remedies)
    if getattr(args, "record_trace", None):
        _record_trace(args, prep.network, config, x, y)
    total = -(-len(x) // config.batch) * config.steps
    show = not args.no_progress and total >= 200
    update, close = progress_bar(total, "step", show)
    try:
        result = evaluate(prep.network, config, x, y, on_progress=update)
    finally:
        close()
    net = prep.network
    print(f"network   {net.name}  ({len(net.neuron_layers)} neuron layers, "
          f"{sum(l.size for l in net.neuron_layers)} neurons)")
    norm = net.normalization
    norm_text = f"percentile {norm['percentile']:g} on {norm['n_samples']} samples" if norm else "off"
    if norm and norm.get("method") == "snntoolbox-0.6":
        norm_text += ", SNN Toolbox's rule" + (" (factors from its file)" if norm.get("factors") else "")
    print(f"normalize {norm_text}")
    print(f"remedies  {norm.get('remedies', 'baseline') if norm else 'baseline'}")
    print(f"neuron    {config.neuron.describe()}   input {config.encoder}   dt {config.effective_dt:g}")
    print(f"run       {result.samples} samples x {result.steps} steps, batch {config.batch}, seed {config.seed}")
    for line in conversion_lines(net, config, prep.notes):
        print(line)
    print()
    print(format_table(list(result.stats)))
    print()
    if y is not None:
        ann, snn = result.ann_accuracy, result.snn_accuracy[-1]
        print(f"ANN accuracy  {100 * ann:6.2f} %")
        print(f"SNN accuracy  {100 * snn:6.2f} %  after {result.steps} steps  (difference {100 * (snn - ann):+.2f} points)")
        marks = sorted({max(1, result.steps // 4), max(1, result.steps // 2), result.steps})
        print("SNN accuracy over time: " + ", ".join(f"t={t}: {100 * result.snn_accuracy[t - 1]:.1f}%" for t in marks))
    else:
        counts = np.bincount(result.predictions[result.predictions >= 0], minlength=prep.n_classes)
        print("no labels: predicted class counts " + " ".join(map(str, counts)))
    return 0


def _record_trace(args, network, config, x, y) -> None:
    """Record the first batch to ``args.record_trace``: in memory when the estimate is within
    ``--max-record-mb``, else streamed to HDF5 (other formats are refused above the limit)."""
    import math

    from workbench.engine.recording import estimate_bytes
    from workbench.engine.simulator import Simulator
    from workbench.exchange.trace_io import format_for, save_trace, stream_run
    from workbench.models.forward import forward

    mb = args.max_record_mb
    if not (math.isfinite(mb) and mb > 0):
        raise ConfigError("max-record-mb", f"must be a positive number of megabytes, got {mb:g}")
    path = args.record_trace
    fmt = format_for(path)
    chosen = trace_layers(network, getattr(args, "trace_layer", None), fmt)
    xb = x[: config.batch]
    yb = None if y is None else y[: config.batch]
    sizes = {layer.name: layer.size for layer in network.neuron_layers if chosen is None or layer.name in chosen}
    need = estimate_bytes(sizes, config.steps, len(xb), True, False)
    cfg = config.replace(record=chosen, record_membrane=True, batch=len(xb), max_record_bytes=None)
    ann = forward(network, xb)
    if chosen is not None:
        ann = {name: value for name, value in ann.items() if name in chosen}
    if need <= mb * 1024**2:
        sim = Simulator(network, cfg, xb, yb)
        sim.run(config.steps)
        save_trace(sim.trace(ann=ann), path, layer=chosen[0] if fmt == "csv" else None)
        how = "in memory"
    elif fmt == "hdf5":
        sim = Simulator(network, cfg, xb, yb, record_capacity=1)
        stream_run(sim, config.steps, path, ann=ann)
        how = "streamed to disk"
    else:
        raise ConfigError(
            "max-record-mb",
            f"recording {len(sizes)} layers x {config.steps} steps x {len(xb)} samples needs "
            f"{need / 1024**2:.1f} MB, above --max-record-mb {mb:g}; write an .h5 file to stream it "
            "to disk, use fewer --steps or a smaller --batch, or raise --max-record-mb",
        )
    which = f"layer {', '.join(chosen)}, " if chosen is not None else ""
    print(f"trace     first batch ({which}{len(xb)} samples x {config.steps} steps, "
          f"{need / 1024**2:.1f} MB) {how} to {path}")


def trace_layers(network, wanted, fmt: str) -> tuple[str, ...] | None:
    """The layers ``--trace-layer`` chose (None: every neuron layer); a CSV file holds exactly one."""
    names = [layer.name for layer in network.neuron_layers]
    chosen = tuple(dict.fromkeys(wanted or ()))
    for name in chosen:
        if name not in names:
            raise ConfigError("trace-layer", f"no neuron layer '{name}' in {network.name}; choose from {', '.join(names)}")
    if fmt == "csv":
        if len(chosen) > 1:
            raise ConfigError("trace-layer", f"a CSV trace holds one layer, {len(chosen)} were named "
                                             "(write .npz or .h5 for several)")
        if not chosen and len(names) > 1:
            raise ConfigError("trace-layer", f"a CSV trace holds one layer: add --trace-layer NAME, one of "
                                             f"{', '.join(names)} (or write .npz or .h5 for every layer)")
        return chosen or tuple(names)
    return chosen or None


def cmd_verify(args) -> int:
    from workbench.models.data import load_samples
    from pathlib import Path

    from workbench.models.keras.importer import load_model_safely, network_from_keras
    from workbench.models.verify import verify_report

    if args.samples < 1:
        raise ConfigError("samples", f"must be >= 1, got {args.samples}")
    if not args.tolerance >= 0 or args.tolerance == float("inf"):
        raise ConfigError("tolerance", f"must be a finite number >= 0, got {args.tolerance}")
    if not args.rtol >= 0 or args.rtol == float("inf"):
        raise ConfigError("rtol", f"must be a finite number >= 0, got {args.rtol}")
    if Path(args.model).suffix.lower() == ".onnx":
        return _verify_onnx(args)
    model = load_model_safely(args.model)  # loaded once, compared against its own import
    network = network_from_keras(model, Path(args.model).name)
    if args.data:
        x = load_samples(args.data, network.input_shape).x[: args.samples]
    else:
        x = np.random.default_rng(0).uniform(0, 1, (args.samples, *network.input_shape)).astype(np.float32)
    ok, text = verify_report(network, model, x, args.tolerance, args.rtol)
    print(text)
    return 0 if ok else 1


def convert_output_path(output: str):
    """``output`` as the .npz path the network is written to: no suffix gets '.npz' (what
    ``run`` and the window open), any other suffix is refused before the slow import."""
    from pathlib import Path

    path = Path(output)
    if path.is_dir():
        return path  # refused by the writer, naming the folder
    if path.suffix == "":
        return path.with_name(path.name + ".npz")
    if path.suffix.lower() != ".npz":
        raise ConfigError("output", f"'{output}': a saved network is an .npz file (e.g. {path.with_suffix('.npz')})")
    return path


def _verify_onnx(args) -> int:
    """``verify model.onnx``: against onnxruntime; data may be NCHW or NHWC (see models.data)."""
    from workbench.models.data import load_samples
    from workbench.models.loading import open_model
    from workbench.models.onnx.verify import verify_onnx_report

    network = open_model(args.model)
    if args.data:
        x = load_samples(args.data, network.input_shape).x[: args.samples]
    else:
        x = np.random.default_rng(0).uniform(0, 1, (args.samples, *network.input_shape)).astype(np.float32)
    ok, text = verify_onnx_report(args.model, x, args.tolerance)
    print(text)
    return 0 if ok else 1


def cmd_convert(args) -> int:
    output = convert_output_path(args.output)
    with normalizing(True) as bar:
        prep = prepare_args(args, None, args.calibration, args.normalize if args.calibration else None, bar)
    if args.remedies:
        from workbench.analysis.remedies import with_remedies
        from workbench.engine.config import SimConfig

        if not args.calibration:
            raise ConfigError("remedies", "converting with remedies needs --calibration data")
        prep, _config = with_remedies(prep, SimConfig(), args.remedies)
    prep.network.save(output)
    from workbench.engine.config import SimConfig

    for line in conversion_lines(prep.network, SimConfig(), prep.notes):
        print(line)
    what = "normalized " if prep.network.scales else ""
    if args.remedies:
        what += f"({prep.network.normalization['remedies']}) "
    print(f"saved {what}network '{prep.network.name}' ({len(prep.network.layers)} layers) to {output}")
    return 0


def cmd_bundled(args) -> int:
    """The folders a pip-installed user copies the demo or the C reference from (the docs'
    ``workbench/bundled/...`` paths are relative to a source checkout)."""
    from workbench.bundled import C_REFERENCE_DIR, DEMO_DIR

    print(f"demo          {DEMO_DIR}")
    for path in sorted(DEMO_DIR.glob("*.npz")) + sorted(DEMO_DIR.glob("*.keras")):
        print(f"  {path.name}")
    print(f"c_reference   {C_REFERENCE_DIR}")
    for path in sorted(C_REFERENCE_DIR.glob("*")):
        if path.is_file():
            print(f"  {path.name}")
    return 0


def cmd_neurons(args) -> int:
    from workbench.engine.neurons import MODELS

    for name, cls in MODELS.items():
        fields = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls))
        print(f"{name:<20} {cls.description}")
        print(f"{'':<20} parameters: {fields or 'none'}")
        if cls.reference:
            print(f"{'':<20} definition: {cls.reference}")
    return 0
