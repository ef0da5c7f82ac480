"""Sub-commands ``evaluate``, ``diagnose`` and ``sweep`` (registered by ``workbench.cli.main``).

    snn-workbench evaluate MODEL --data FILE [--steps T] [--top-k 5] [--out PREFIX]
    snn-workbench diagnose MODEL --data FILE [--steps T] [--json FILE]
    snn-workbench sweep MODEL --data FILE --grid percentile=99,100 --grid steps=50,100 [--scheduler tcp://...]

Ctrl-C during ``evaluate`` or ``sweep`` stops after the running batch (or cancels the unfinished
points) and writes what finished; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import signal
import sys
from pathlib import Path

from workbench.cli.args import is_default
from workbench.cli.progress import normalizing, progress_bar
from workbench.analysis import warmup
from workbench.errors import ConfigError, DataFileError


def register(sub) -> None:
    from workbench.cli.args import add_model_args, add_sim_args

    p = sub.add_parser("evaluate", help="accuracy over a data set: ANN, and SNN over timesteps (top-1, top-k); "
                       "writes JSON, CSV and a PNG plot")
    add_model_args(p)
    add_sim_args(p)
    p.add_argument("--top-k", type=int, action="append", default=[], metavar="K", help="also top-K accuracy (repeatable)")
    p.add_argument("--out", metavar="PREFIX", help="write PREFIX.json, PREFIX.csv, PREFIX.png (default: <model>-eval)")
    p.add_argument("--variant", action="append", default=[], metavar="SPEC",
                   help="a conversion variant to compare (remedies as --remedies, e.g. baseline, half, "
                        "half+burst2); repeatable: every variant runs on the same data, one curve each")
    p.add_argument("--no-plot", action="store_true", help="no PNG (no Qt needed)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("diagnose", help="why the SNN differs from the ANN: per-layer findings with evidence and suggestions")
    add_model_args(p)
    add_sim_args(p)
    p.add_argument("--json", metavar="FILE", help="also write the findings and evidence as JSON")
    p.add_argument("--try", dest="try_remedy", nargs="?", const="suggested", metavar="SPEC",
                   help="apply the suggested remedies (or SPEC) and report the accuracy and each layer "
                        "before and after")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=cmd_diagnose)

    p = sub.add_parser("sweep", help="accuracy, spikes and synaptic operations over a grid of settings, on Dask")
    add_model_args(p)
    add_sim_args(p)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a swept setting: percentile, threshold_scale, steps, neuron, reset, input, remedies "
                        "(e.g. remedies=baseline,half,half+burst2), or a neuron parameter (repeatable; the points are all combinations)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (tcp://host:8786); "
                   "default: a local cluster of processes")
    p.add_argument("--workers", type=int, default=2, help="processes of the local cluster (default 2)")
    p.add_argument("--shared-files", action="store_true",
                   help="with --scheduler: workers read the files by path instead of receiving their bytes")
    p.add_argument("--serial", action="store_true", help="run in this process, without Dask")
    p.add_argument("--out", metavar="PREFIX", help="write PREFIX.csv, PREFIX.json, PREFIX.png (default: <model>-sweep)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=cmd_sweep)


# ---- shared helpers ----------------------------------------------------------------------------
@contextlib.contextmanager
def _interruptible():
    """``stop()`` turns true after the first Ctrl-C; the second raises KeyboardInterrupt."""
    state = {"stop": False}

    def handler(signum, frame):
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True
        print("\nsnn-workbench: stopping after the running batch (Ctrl-C again to abort)", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield lambda: state["stop"]
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _paths(args):
    from workbench.models import loading

    if args.model is None and not args.demo:
        raise ConfigError("model", "name a model file or use --demo")
    model = args.model or str(loading.DEMO_NETWORK)
    data = args.data or (str(loading.DEMO_TEST) if args.demo else None)
    calibration = args.calibration or (str(loading.DEMO_CALIBRATION) if args.demo else None)
    if data is None:
        raise DataFileError("no sample data: pass --data FILE.npz (x and optional y)")
    return model, data, calibration


def _prepare(args):
    from workbench.cli.model_commands import make_config
    from workbench.models.prepare import prepare

    model, data, calibration = _paths(args)
    with normalizing(not args.no_progress) as bar:
        prep = prepare(model, data, calibration, args.normalize or None, on_progress=bar,
                       keep_normalized=is_default(args.normalize), rule=args.normalize_rule,
                       factors_file=args.normalization_file)
    x, y = prep.samples.x, prep.samples.y
    if args.samples is not None:
        if args.samples < 1:
            raise ConfigError("samples", f"must be >= 1, got {args.samples}")
        x, y = x[: args.samples], None if y is None else y[: args.samples]
    if args.batch < 1:
        raise ConfigError("batch", f"must be >= 1, got {args.batch}")
    config = make_config(args, min(args.batch, len(x)))
    warmup.announce()  # a first run on this machine compiles for ~20 s before the bar moves
    prep, config = with_remedies(prep, config, args.remedies)
    return prep, x, y, config


def with_remedies(prep, config, text):
    """``prep`` with its network converted with the remedies ``text`` (and the config they need)."""
    from workbench.analysis.remedies import with_remedies as convert

    return convert(prep, config, text)


def _prefix(args, model: str, what: str) -> Path:
    """Where results go; its folder is made (or refused) before any work, so a long run never
    ends in an unwritable path."""
    prefix = Path(args.out) if args.out else Path(f"{Path(model).name.split('.')[0]}-{what}")
    folder = prefix.parent
    if not folder.is_dir():  # created, as mkdir -p would; a file in the way is an error
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("out", f"cannot create the folder '{folder}': {exc.strerror or exc}") from None
    return prefix


def _write_text(path: Path, text: str) -> None:
    from workbench.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _json_text(obj) -> str:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if hasattr(v, "item"):  # numpy scalars
            return clean(v.item())
        return v

    return json.dumps(clean(obj), indent=1)


def _plot(kind: str, path: Path, *args) -> str:
    """Write a PNG through the Qt views (imported only here); a note instead when Qt is missing."""
    try:
        from workbench.views import qt_eval_plots
    except ImportError as exc:  # pragma: no cover - Qt is a dependency, but may lack system libs
        return f"no plot written (Qt unavailable: {exc})"
    getattr(qt_eval_plots, f"{kind}_png")(*args, path)
    return str(path)


# ---- evaluate ----------------------------------------------------------------------------------
def curve_csv(result) -> str:
    """One row per timestep: step, top-1 and every top-k accuracy."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["step"] + [f"top{k}" for k in result.top_k])
    for t in range(result.steps):
        w.writerow([t + 1] + [f"{float(result.snn_topk[k][t]):.6f}" for k in result.top_k])
    return out.getvalue()


def variants_csv(names, results) -> str:
    """One row per timestep: step, then each variant's top-1 accuracy."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["step"] + list(names))
    for t in range(max(r.steps for r in results)):
        w.writerow([t + 1] + [f"{float(r.snn_accuracy[t]):.6f}" if t < len(r.snn_accuracy) else "" for r in results])
    return out.getvalue()


def _evaluate_variants(args) -> int:
    """``evaluate --variant A --variant B ...``: every variant on the same data, one curve each."""
    import numpy as np

    from workbench.analysis.evaluate import evaluate
    from workbench.models.forward import predict

    base_args = argparse.Namespace(**{**vars(args), "remedies": ""})
    prep, x, y, config = _prepare(base_args)
    prefix = _prefix(args, _paths(args)[0], "eval")
    names, results, configs, norms = [], [], [], []
    with _interruptible() as stop:
        for text in args.variant:
            p, cfg = with_remedies(prep, config, text)
            name = p.network.normalization.get("remedies", "baseline")
            total = -(-len(x) // cfg.batch) * cfg.steps
            update, close = progress_bar(total, f"step ({name})", not args.no_progress and total >= 200)
            try:
                r = evaluate(p.network, cfg, x, y, on_progress=update, should_stop=stop, top_k=tuple(args.top_k))
            finally:
                close()
            names.append(name)
            results.append(r)
            configs.append(cfg)
            norms.append(p.network.normalization)
            if stop():
                break
    ann = float("nan")
    if y is not None:  # the ANN before any remedy (calibration moves biases; channel scales do not change it)
        ann = float(np.mean(np.argmax(predict(prep.network, x).reshape(len(x), -1), axis=1) == np.asarray(y)))
    meta = {"model": _paths(args)[0], "data": _paths(args)[1], "encoder": config.encoder, "batch": config.batch,
            "seed": config.seed, "ann_accuracy": ann}
    _write_text(prefix.with_suffix(".json"), _json_text({**meta, "variants": [
        {"remedies": n, "neuron": c.neuron.describe(), "normalization": norm, **r.to_dict()}
        for n, c, r, norm in zip(names, configs, results, norms)]}))
    _write_text(prefix.with_suffix(".csv"), variants_csv(names, results))
    plot = None if args.no_plot else _plot("variants", prefix.with_suffix(".png"), dict(zip(names, results)), ann)
    steps = results[0].steps
    marks = sorted({t for t in (4, 8, 16, 32, 64, steps) if t <= steps})
    print(f"samples   {results[0].samples}   steps {steps}   neuron {config.neuron.describe()}")
    if y is not None:
        print(f"ANN       {100 * ann:.2f} %")
    width = max(len(n) for n in names)
    print(f"{'variant':<{width}}  " + "  ".join(f"{'t=' + str(t):>7}" for t in marks) + "   synops/sample")
    for n, r in zip(names, results):
        accs = "  ".join(f"{100 * r.snn_accuracy[t - 1]:6.2f}%" for t in marks) if r.labelled else ""
        print(f"{n:<{width}}  {accs}   {r.synops_per_sample:.4g}")
    print(f"wrote     {prefix.with_suffix('.json')}, {prefix.with_suffix('.csv')}" + (f", {plot}" if plot else ""))
    return 0


def cmd_evaluate(args) -> int:
    from workbench.analysis.evaluate import evaluate

    if args.variant:
        if args.remedies:
            raise ConfigError("variant", "give the remedies inside each --variant, not also as --remedies")
        return _evaluate_variants(args)
    prep, x, y, config = _prepare(args)
    prefix = _prefix(args, _paths(args)[0], "eval")
    total = -(-len(x) // config.batch) * config.steps
    update, close = progress_bar(total, "step", not args.no_progress and total >= 200)
    with _interruptible() as stop:
        try:
            result = evaluate(prep.network, config, x, y, on_progress=update, should_stop=stop,
                              top_k=tuple(args.top_k))
        finally:
            close()
    meta = {"model": _paths(args)[0], "data": _paths(args)[1], "neuron": config.neuron.describe(),
            "encoder": config.encoder, "dt": config.effective_dt, "batch": config.batch, "seed": config.seed,
            "normalization": prep.network.normalization,
            "remedies": prep.network.normalization.get("remedies", "baseline")}
    _write_text(prefix.with_suffix(".json"), _json_text({**meta, **result.to_dict()}))
    _write_text(prefix.with_suffix(".csv"), curve_csv(result))
    plot = None if args.no_plot else _plot("evaluation", prefix.with_suffix(".png"), result)
    if not result.completed:
        print(f"stopped: {result.samples} of {result.total} samples finished; the results cover those")
    from workbench.cli.model_commands import conversion_lines

    for line in conversion_lines(prep.network, config, prep.notes):
        print(line)
    print(f"samples   {result.samples}   steps {result.steps}   neuron {config.neuron.describe()}")
    print(f"remedies  {prep.network.normalization.get('remedies', 'baseline')}")
    if result.labelled and result.samples:
        for k in result.top_k:
            snn = result.snn_topk[k]
            marks = sorted({max(1, result.steps // 4), max(1, result.steps // 2), result.steps})
            over = ", ".join(f"t={t}: {100 * snn[t - 1]:.2f}%" for t in marks)
            print(f"top-{k:<3} ANN {100 * result.ann_topk[k]:6.2f} %   SNN {over}")
        print(f"chance    {100 * result.chance:.2f} %")
    print(f"spikes per sample {result.spikes_per_sample:.1f}   synaptic operations per sample "
          f"{result.synops_per_sample:.4g}")
    print(f"wrote     {prefix.with_suffix('.json')}, {prefix.with_suffix('.csv')}" + (f", {plot}" if plot else ""))
    return 0


# ---- diagnose ----------------------------------------------------------------------------------
def cmd_diagnose(args) -> int:
    from workbench.analysis.diagnosis import diagnose, format_report

    base_prep, x, y, base_config = _prepare(argparse.Namespace(**{**vars(args), "remedies": ""}))
    prep, config = with_remedies(base_prep, base_config, args.remedies)
    total = -(-len(x) // config.batch) * config.steps
    update, close = progress_bar(total, "step", not args.no_progress and total >= 200)
    try:
        d = diagnose(prep.network, config, x, y, on_progress=update)
    finally:
        close()
    from workbench.cli.model_commands import conversion_lines

    for line in conversion_lines(prep.network, config, prep.notes, warnings=False):
        print(line)
    print(f"remedies  {prep.network.normalization.get('remedies', 'baseline')}")
    print(format_report(d))
    tried = None
    if args.try_remedy:
        from workbench.analysis.diagnosis import suggested_remedies
        from workbench.analysis.remedies import format_try

        spec = suggested_remedies(d) if args.try_remedy == "suggested" else args.try_remedy
        if not spec:
            print("\n--try: no finding suggests a remedy")
        else:
            tried_prep, tried_cfg = with_remedies(base_prep, base_config, spec)
            update, close = progress_bar(total, "step", not args.no_progress and total >= 200)
            try:
                tried = diagnose(tried_prep.network, tried_cfg, x, y, on_progress=update)
            finally:
                close()
            print()
            print(format_try(d, tried, tried_prep.network.normalization.get("remedies", spec)))
    if args.json:
        out = d.to_dict()
        if tried is not None:
            out["tried"] = {"remedies": tried_prep.network.normalization.get("remedies"),
                            **tried.to_dict()}
        _write_text(Path(args.json), _json_text(out))
        print(f"\nwrote {args.json}")
    return 0


# ---- sweep -------------------------------------------------------------------------------------
def _sweep_base(args) -> dict:
    from workbench.engine.neurons import parse_params

    base = {"steps": args.steps, "batch": args.batch, "samples": args.samples, "seed": args.seed,
            "input": args.input, "neuron": args.neuron, "percentile": float(args.normalize), "dt": args.dt,
            "params": parse_params(args.neuron, args.param), "readout": args.readout,
            "auto_neurons": not args.uniform}
    if args.reset:
        base["reset"] = args.reset
    if args.remedies:
        base["remedies"] = args.remedies
    return base


def sweep_csv(rows, keys) -> str:
    from workbench.analysis.sweep import RESULT_FIELDS

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(list(keys) + list(RESULT_FIELDS) + ["seconds"])
    for r in rows:
        if r is not None:
            w.writerow([r.get(k) for k in keys] + [r[f] for f in RESULT_FIELDS] + [f"{r['seconds']:.3f}"])
    return out.getvalue()


def cmd_sweep(args) -> int:
    from workbench.analysis import sweep

    if not args.grid:
        raise ConfigError("grid", "give at least one --grid KEY=V1,V2,... (see 'snn-workbench sweep --help')")
    if args.workers < 1:
        raise ConfigError("workers", f"must be >= 1, got {args.workers}")
    model, data, calibration = _paths(args)
    for path in (model, data, calibration):
        if path is not None and not Path(path).is_file():
            raise DataFileError(f"{path}: no such file")
    prefix = _prefix(args, model, "sweep")
    grid = sweep.parse_grid(args.grid)
    base = _sweep_base(args)
    pts = sweep.points(grid, base)
    keys = list(grid)
    where = "this process" if args.serial else args.scheduler or f"a local Dask cluster of {args.workers} processes"
    print(f"sweep     {len(pts)} point{'' if len(pts) == 1 else 's'} on {where}", file=sys.stderr)
    done = {"n": 0}
    warmup.announce()
    update, close = progress_bar(len(pts), "point", not args.no_progress)

    def on_result(_i, _row):
        done["n"] += 1
        update(done["n"])

    try:
        if args.serial:
            with _interruptible() as stop:
                rows = sweep.run_serial(model, data, calibration, pts, base, on_result, stop)
        else:
            rows = sweep.run_dask(model, data, calibration, pts, base, args.scheduler, args.workers,
                                  ship_files=False if args.shared_files else None, on_result=on_result)
    finally:
        close()
    finished = [r for r in rows if r is not None]
    _write_text(prefix.with_suffix(".csv"), sweep_csv(rows, keys))
    _write_text(prefix.with_suffix(".json"), _json_text({"grid": grid, "base": base, "points": finished,
                                                         "pareto": sweep.pareto(finished)}))
    plot = None if args.no_plot or not finished else _plot("sweep", prefix.with_suffix(".png"), finished, keys)
    if len(finished) < len(pts):
        print(f"stopped: {len(finished)} of {len(pts)} points finished")
    for w in dict.fromkeys(w for r in finished for w in r.get("warnings", ())):
        print(f"warning   {w}")
    print(sweep.format_table(rows, keys))
    front = sweep.pareto(finished)
    if front:
        print("\ntrade-off curve (no other point is both more accurate and cheaper):")
        for r in front:
            print("  " + ", ".join(f"{k}={r[k]}" for k in keys) +
                  f": {100 * r['snn_accuracy']:.2f} % at {r['synops_per_sample']:.4g} synaptic ops per sample")
    print(f"wrote     {prefix.with_suffix('.csv')}, {prefix.with_suffix('.json')}" + (f", {plot}" if plot else ""))
    return 0
