"""CSV traces: ONE layer in long format, for diffing in a spreadsheet.

The first line is ``# `` followed by the JSON header (same schema as the other formats, with one
layer). Then a column header and one row per (step, sample, neuron), in that nesting order::

    # {"schema": "snn-workbench.trace/1", "layers": [{"name": "fc1", "shape": [4], ...}], ...}
    step,sample,neuron,i0,spike,membrane
    1,0,0,0,0,0.25

``neuron`` is the row-major flat index; the coordinate columns are ``h,w,c`` for image layers
and ``i0..`` otherwise. Floats are written with 9 significant digits (exact for float32).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from workbench.atomic import atomic_path
from workbench.engine.trace import Trace
from workbench.exchange.trace_io.schema import build_trace, header_for, parse_header
from workbench.errors import TraceFileError

_COLUMN = {"spikes": "spike", "membrane": "membrane", "current": "current"}


def coord_names(shape) -> list[str]:
    return ["h", "w", "c"] if len(shape) == 3 else [f"i{k}" for k in range(len(shape))]


def save_csv(trace: Trace, path, layer: str | None = None) -> None:
    if layer is None:
        if len(trace.layers) != 1:
            raise TraceFileError(f"{path}: field 'layer': CSV holds one layer; choose one of {', '.join(trace.layers)}")
        layer = next(iter(trace.layers))
    if layer not in trace.layers:
        raise TraceFileError(f"{path}: field 'layer': no layer '{layer}' in the trace")
    lt = trace.layers[layer]
    header = header_for(trace)
    header["layers"] = [rec for rec in header["layers"] if rec["name"] == layer]
    header["ann"] = []
    header["has_predictions"] = False
    fields = header["layers"][0]["fields"]
    T, B, N = lt.spikes.shape[0], lt.spikes.shape[1], int(np.prod(lt.shape))
    cols = ["step", "sample", "neuron", *coord_names(lt.shape), *(_COLUMN[f] for f in fields)]
    # Index columns for every (step, sample, neuron) row, C order.
    coords = np.indices(lt.shape).reshape(len(lt.shape), -1).T  # [N, ndim]
    with atomic_path(path) as tmp, open(tmp, "w", newline="\n", encoding="utf-8") as fh:
        fh.write("# " + json.dumps(header) + "\n")
        fh.write(",".join(cols) + "\n")
        int_part = np.empty((B * N, 3 + coords.shape[1]), dtype=np.int64)
        int_part[:, 1] = np.repeat(np.arange(B), N)
        int_part[:, 2] = np.tile(np.arange(N), B)
        int_part[:, 3:] = np.tile(coords, (B, 1))
        fmt = ",".join(["%d"] * (int_part.shape[1] + 1) + ["%.9g"] * (len(fields) - 1))
        for t in range(T):
            int_part[:, 0] = trace.steps[t]
            values = [lt.flat(f)[t].reshape(-1) for f in fields]
            block = np.column_stack([int_part, *[v.astype(np.float64) for v in values]])
            buf = io.StringIO()
            np.savetxt(buf, block, fmt=fmt)
            fh.write(buf.getvalue())


def load_csv(path) -> Trace:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
            columns = fh.readline().strip().split(",")
            body = fh.read()
    except FileNotFoundError:
        raise TraceFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFileError(f"{path}: not a CSV trace ({exc})") from None
    if not first.startswith("# "):
        raise TraceFileError(f"{path}: field 'header': first line must be '# ' and the JSON header")
    header = parse_header(first[2:], path)
    if len(header["layers"]) != 1:
        raise TraceFileError(f"{path}: field 'header.layers': a CSV trace holds exactly one layer")
    rec = header["layers"][0]
    shape, fields = rec["shape"], rec["fields"]
    want = ["step", "sample", "neuron", *coord_names(shape), *(_COLUMN[f] for f in fields)]
    if columns != want:
        raise TraceFileError(f"{path}: field 'columns': {','.join(columns)}, expected {','.join(want)}")
    try:
        table = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise TraceFileError(f"{path}: field 'rows': not numeric CSV ({exc})") from None
    N = int(np.prod(shape))
    if table.size == 0:
        table = np.zeros((0, len(want)))
    if table.shape[1] != len(want):
        raise TraceFileError(f"{path}: field 'rows': {table.shape[1]} columns, expected {len(want)}")
    steps_col, sample_col, neuron_col = (table[:, k].astype(np.int64) for k in range(3))
    steps = np.unique(steps_col)
    B = int(header.get("batch") or (sample_col.max() + 1 if table.size else 0))
    T = steps.shape[0]
    if table.shape[0] != T * B * N:
        raise TraceFileError(f"{path}: field 'rows': {table.shape[0]} rows, expected steps*batch*neurons = "
                             f"{T}*{B}*{N} (truncated?)")
    t_idx = np.searchsorted(steps, steps_col)
    if sample_col.min(initial=0) < 0 or sample_col.max(initial=0) >= B or neuron_col.min(initial=0) < 0 \
            or neuron_col.max(initial=0) >= N:
        raise TraceFileError(f"{path}: field 'sample/neuron': index out of range for batch {B}, {N} neurons")
    flat = (t_idx * B + sample_col) * N + neuron_col
    if np.unique(flat).shape[0] != flat.shape[0]:
        raise TraceFileError(f"{path}: field 'rows': repeated (step, sample, neuron) rows")
    arrays = {}
    for k, f in enumerate(fields):
        col = np.empty(T * B * N, dtype=np.float64)
        col[flat] = table[:, 3 + len(shape) + k]
        arrays[f] = col.reshape(T, B, *shape)
    header["batch"] = B

    def get(what):
        if what == "steps":
            return steps
        if isinstance(what, tuple) and what[0] == "layer":
            return arrays.get(what[2])
        return None

    return build_trace(header, get, path)
