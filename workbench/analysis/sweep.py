"""Parameter sweeps: accuracy, spikes and synaptic operations over a grid of conversion settings,
run on Dask so that a large grid over a full test set spreads over many machines.

A grid is given as ``key=v1,v2,...`` items (``parse_grid``); the points are their product.
Keys: ``percentile`` (normalization; 0 = off), ``threshold_scale`` (multiplies the neuron
model's threshold: ``threshold`` or Loihi's ``vth``), ``steps``, ``neuron`` (model name), ``reset``,
``input`` (encoder), ``remedies`` (conversion remedies, ``remedies=baseline,half,half+burst2``:
``analysis.remedies``), and any parameter of the neuron model (``tau_rc=0.02,0.05``).

Each point is a pure function of (model file, data file, calibration file, point, base settings):
``run_point`` loads what it needs itself, so only file names (or the files' bytes, ``FileBlob``,
for workers that do not share a file system) and small dicts travel to the workers. A worker
keeps the last few prepared networks, so points that share a percentile normalize once.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workbench.errors import ConfigError

NUMERIC = {"percentile": float, "threshold_scale": float, "steps": int}
CHOICES = {"reset": ("subtract", "zero", "modulo"), "input": ("constant", "poisson")}
NA = "n/a"  # a swept setting the point's neuron model does not have
RESULT_FIELDS = ("ann_accuracy", "snn_accuracy", "spikes_per_sample", "synops_per_sample", "samples")


@dataclasses.dataclass(frozen=True)
class FileBlob:
    """A file's name and bytes, for workers that cannot see the submitting machine's files."""

    name: str
    data: bytes

    @classmethod
    def read(cls, path) -> "FileBlob":
        return cls(Path(path).name, Path(path).read_bytes())


def _value(key: str, text: str):
    text = text.strip()
    if key in NUMERIC:
        try:
            value = NUMERIC[key](text)
        except ValueError:
            raise ConfigError(key, f"expected {'a whole number' if NUMERIC[key] is int else 'a number'}, got '{text}'") from None
        if key == "percentile" and not 0 <= value <= 100:
            raise ConfigError(key, f"must be in [0, 100] (0 = no normalization), got {value:g}")
        if key != "percentile" and not value > 0:
            raise ConfigError(key, f"must be > 0, got {text}")
        return value
    if key == "remedies":
        from workbench.analysis.remedies import Remedies

        return str(Remedies.parse(text))  # checked (and spelled one way) before anything runs
    if key in CHOICES and text not in CHOICES[key]:
        raise ConfigError(key, f"must be one of {', '.join(CHOICES[key])}, got '{text}'")
    return text  # neuron names and parameters are checked per point by the neuron registry


def parse_grid(items) -> dict[str, list]:
    """``["percentile=99,99.9", "neuron=if,lif"]`` -> ``{"percentile": [99.0, 99.9], ...}``."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = str(item).partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError("grid", f"expected key=value1,value2,..., got '{item}'")
        if key in grid:
            raise ConfigError(key, "given twice in the grid")
        grid[key] = [_value(key, v) for v in values.split(",")]
    return grid


def points(grid: dict[str, list], base: dict | None = None) -> list[dict]:
    """Every combination, the first key varying slowest. A reset mode or threshold scale for a
    model without one (LIF has neither) becomes ``NA`` and the duplicates are dropped. Neuron
    parameters are checked here, so a wrong name fails before anything runs."""
    from workbench.engine.neurons import MODELS

    base = base or {}
    keys = list(grid)
    out, seen = [], set()
    for combo in itertools.product(*(grid[k] for k in keys)):
        p = dict(zip(keys, combo))
        fields = {f.name for f in dataclasses.fields(MODELS.get(p.get("neuron", base.get("neuron", "if")), object))} \
            if p.get("neuron", base.get("neuron", "if")) in MODELS else set()
        if "reset" in p and "reset" not in fields:
            p["reset"] = NA
        if "threshold_scale" in p and not fields & {"threshold", "vth"}:
            p["threshold_scale"] = NA
        key = tuple(p.items())
        if key not in seen:
            seen.add(key)
            _neuron_for(p, base)
            out.append(p)
    return out or [{}]


def _neuron_for(point: dict, base: dict):
    from workbench.engine.neurons import make_neuron, parse_params

    name = point.get("neuron", base.get("neuron", "if"))
    special = set(NUMERIC) | set(CHOICES) | {"neuron", "remedies"}
    items = [f"{k}={v}" for k, v in {**base.get("params", {}), **point}.items() if k not in special]
    params = parse_params(name, items)
    reset = point.get("reset", base.get("reset"))
    if reset not in (None, NA):
        params["reset"] = reset
    model = make_neuron(name, **params)
    scale = point.get("threshold_scale", 1.0)
    if scale not in (1.0, NA):
        fields = {f.name for f in dataclasses.fields(model)}
        if "threshold" in fields:
            model = dataclasses.replace(model, threshold=model.threshold * scale)
        elif "vth" in fields:
            model = dataclasses.replace(model, vth=max(1, int(round(model.vth * scale))))
        else:
            raise ConfigError("threshold_scale", f"neuron '{name}' has no threshold to scale")
    return model


def _local(source) -> str:
    """A path on this machine for a path or a FileBlob (written once into a per-content cache)."""
    if not isinstance(source, FileBlob):
        return str(source)
    digest = hashlib.sha256(source.data).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "snn-workbench-sweep" / digest
    path = folder / source.name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{source.name}.{os.getpid()}"
        tmp.write_bytes(source.data)
        os.replace(tmp, path)
    return str(path)


@functools.lru_cache(maxsize=4)
def _prepared(model: str, data: str, calibration: str | None, percentile: float):
    from workbench.models.prepare import prepare

    return prepare(model, data, calibration, percentile or None)


def run_point(model, data, calibration, point: dict, base: dict) -> dict:
    """One grid point: accuracy, spikes and synaptic operations per sample. ``base``: settings
    not swept (``steps``, ``batch``, ``samples``, ``seed``, ``input``, ``neuron``, ``params``,
    ``percentile``, ``dt``). Pure: the same arguments give the same numbers on any machine."""
    from workbench.engine.config import SimConfig
    from workbench.analysis.evaluate import evaluate

    start = time.perf_counter()
    percentile = float(point.get("percentile", base.get("percentile", 99.9)))
    prep = _prepared(_local(model), _local(data), None if calibration is None else _local(calibration), percentile)
    x, y = prep.samples.x, prep.samples.y
    if base.get("samples"):
        x = x[: base["samples"]]
        y = None if y is None else y[: base["samples"]]
    steps = int(point.get("steps", base.get("steps", 100)))
    config = SimConfig(neuron=_neuron_for(point, base), encoder=point.get("input", base.get("input", "constant")),
                       dt=base.get("dt"), steps=steps, batch=min(int(base.get("batch", 64)), len(x)),
                       seed=int(base.get("seed", 0)), record=(), record_membrane=False,
                       readout=base.get("readout", "auto"), auto_neurons=bool(base.get("auto_neurons", True)))
    network = prep.network
    remedies = point.get("remedies", base.get("remedies"))
    if remedies:
        from workbench.analysis.remedies import apply

        network, config = apply(prep, config, remedies)
    r = evaluate(network, config, x, y, steps=steps)
    return {**point, "ann_accuracy": float(r.ann_accuracy), "snn_accuracy": float(r.snn_accuracy[-1]),
            "spikes_per_sample": r.spikes_per_sample, "synops_per_sample": r.synops_per_sample,
            "samples": r.samples, "chance": r.chance, "seconds": time.perf_counter() - start,
            "warnings": list(r.warnings)}


def run_serial(model, data, calibration, grid_points, base, on_result: Callable[[int, dict], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> list[dict | None]:
    rows: list[dict | None] = [None] * len(grid_points)
    for i, p in enumerate(grid_points):
        if should_stop is not None and should_stop():
            break
        rows[i] = run_point(model, data, calibration, p, base)
        if on_result is not None:
            on_result(i, rows[i])
    return rows


def run_dask(model, data, calibration, grid_points, base, scheduler: str | None = None, workers: int = 2,
             ship_files: bool | None = None, on_result: Callable[[int, dict], None] | None = None) -> list[dict | None]:
    """Every point as a Dask task: on a new local cluster of ``workers`` processes, or on the
    cluster at ``scheduler`` (tcp://host:port). ``ship_files`` (default: with ``scheduler``) sends
    the files' bytes, scattered once to every worker, instead of their paths (made absolute). On
    KeyboardInterrupt the unfinished tasks are cancelled and the finished rows returned."""
    from distributed import Client, LocalCluster, as_completed

    ship = scheduler is not None if ship_files is None else ship_files
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise ConfigError("scheduler", f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    rows: list[dict | None] = [None] * len(grid_points)
    futures = []
    try:
        args = [model, data, calibration]
        if ship:
            args = [None if a is None else client.scatter(FileBlob.read(a), broadcast=True) for a in args]
        else:  # read by path on the workers, whose working folder is not ours
            args = [None if a is None else str(Path(a).resolve()) for a in args]
        futures = [client.submit(run_point, *args, p, base, pure=False, key=f"sweep-point-{i}-{time.time_ns()}")
                   for i, p in enumerate(grid_points)]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in as_completed(futures):
            i = index[fut.key]
            rows[i] = fut.result()
            if on_result is not None:
                on_result(i, rows[i])
    except KeyboardInterrupt:
        client.cancel(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return rows


def pareto(rows: list[dict]) -> list[dict]:
    """The rows no other row beats on both accuracy (higher) and synaptic operations (lower),
    sorted by operations: the trade-off curve. Points not above chance level are left out."""
    done = sorted((r for r in rows if r is not None and not r["snn_accuracy"] <= r.get("chance", 0.0)),
                  key=lambda r: (r["synops_per_sample"], -r["snn_accuracy"]))
    front, best = [], -np.inf
    for r in done:
        if r["snn_accuracy"] > best:
            front.append(r)
            best = r["snn_accuracy"]
    return front


def format_table(rows: list[dict | None], keys: list[str]) -> str:
    """The sweep's table: one line per finished point, the swept settings first."""
    widths = [max(len(k), 8) for k in keys]
    head = "  ".join(f"{k:>{w}}" for k, w in zip(keys, widths))
    head += f"  {'SNN acc %':>9} {'ANN acc %':>9} {'spikes/sample':>13} {'synops/sample':>13}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if r is None:
            continue
        cells = "  ".join(f"{r.get(k, '')!s:>{w}}" if isinstance(r.get(k), str) else f"{r.get(k):>{w}g}"
                          for k, w in zip(keys, widths))
        lines.append(f"{cells}  {100 * r['snn_accuracy']:>9.2f} {100 * r['ann_accuracy']:>9.2f} "
                     f"{r['spikes_per_sample']:>13.1f} {r['synops_per_sample']:>13.4g}")
    return "\n".join(lines)
