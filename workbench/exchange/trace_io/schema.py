"""The trace file schema shared by every format, and the checks that turn bad files into errors.

A trace file holds, per recorded layer, ``spikes`` [T, B, *shape] (integer counts, negative for
signed models), optionally ``membrane`` (post-reset) and ``current`` [T, B, *shape] (float32);
``steps`` [T] (1-based timestep of each row); optionally ``predictions`` [T, B], ``labels`` [B]
and ANN activations [B, *shape] per layer; and a JSON header (see ``header_for``). Layout is
channels-last; a layer's neurons are flattened row-major over ``shape``. docs/trace-format.md is
the reference a C programmer writes against; keep it in step with this module.
"""

from __future__ import annotations

import json

import numpy as np

from workbench.engine.trace import LayerTrace, Trace
from workbench.errors import TraceFileError

SCHEMA = "snn-workbench.trace/1"
FIELDS = ("spikes", "membrane", "current")
SPIKE_DTYPE = np.int16
FLOAT_DTYPE = np.float32


def header_for(trace: Trace) -> dict:
    """The JSON header: schema, layout, layer names/shapes/fields, ANN layer names, metadata."""
    return {
        "schema": SCHEMA,
        "layout": "channels_last",
        "flatten_order": "row-major over shape (channels last)",
        "membrane": "post-reset",
        "batch": trace.batch,
        "n_steps": trace.n_steps,
        "layers": [
            {
                "name": lt.name,
                "shape": list(lt.shape),
                "fields": [f for f in FIELDS if getattr(lt, f) is not None],
            }
            for lt in trace.layers.values()
        ],
        "ann": [{"name": k, "shape": list(v.shape[1:])} for k, v in trace.ann.items()],
        "has_predictions": trace.predictions is not None,
        "has_labels": trace.labels is not None,
        "metadata": _jsonable(dict(trace.metadata)),
    }


def _jsonable(obj):
    """Metadata as plain JSON types (numpy scalars/arrays become numbers/lists)."""
    return json.loads(json.dumps(obj, default=_default))


def _default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def parse_header(raw, path) -> dict:
    """Decode and check a JSON header (bytes or str); TraceFileError names file and field."""
    try:
        if isinstance(raw, (bytes, bytearray, np.ndarray)):
            raw = bytes(raw).decode("utf-8")
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise TraceFileError(f"{path}: field 'header': not JSON text ({exc})") from None
    if not isinstance(header, dict):
        raise TraceFileError(f"{path}: field 'header': must be a JSON object")
    if header.get("schema") != SCHEMA:
        raise TraceFileError(f"{path}: field 'header.schema': expected '{SCHEMA}', got {header.get('schema')!r}")
    layers = header.get("layers")
    if not isinstance(layers, list):
        raise TraceFileError(f"{path}: field 'header.layers': must be a list")
    for i, rec in enumerate(layers):
        where = f"header.layers[{i}]"
        if not isinstance(rec, dict) or not isinstance(rec.get("name"), str) or not rec["name"]:
            raise TraceFileError(f"{path}: field '{where}.name': must be a non-empty string")
        shape = rec.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape):
            raise TraceFileError(f"{path}: field '{where}.shape': must be a list of positive integers")
        fields = rec.get("fields", ["spikes"])
        if not isinstance(fields, list) or "spikes" not in fields or any(f not in FIELDS for f in fields):
            raise TraceFileError(f"{path}: field '{where}.fields': must list 'spikes' and only {FIELDS}")
        rec["fields"] = fields
    names = [rec["name"] for rec in layers]
    if len(set(names)) != len(names):
        raise TraceFileError(f"{path}: field 'header.layers': duplicate layer names")
    header.setdefault("ann", [])
    if not isinstance(header["ann"], list):
        raise TraceFileError(f"{path}: field 'header.ann': must be a list")
    batch = header.get("batch")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 0):
        raise TraceFileError(f"{path}: field 'header.batch': must be a whole number >= 0")
    header.setdefault("metadata", {})
    if not isinstance(header["metadata"], dict):
        raise TraceFileError(f"{path}: field 'header.metadata': must be a JSON object")
    return header


def check_array(arr, path, field: str, kind: str, shape: tuple | None = None) -> np.ndarray:
    """Return ``arr`` as the schema's dtype after checking dtype and shape.

    ``kind``: 'spikes' (integers, or floats holding whole numbers), 'float', 'steps', 'int'.
    """
    arr = np.asarray(arr)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TraceFileError(f"{path}: field '{field}': dtype {arr.dtype} is not numeric")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise TraceFileError(f"{path}: field '{field}': shape {tuple(arr.shape)}, expected {tuple(shape)}")
    if kind == "float":
        return arr.astype(FLOAT_DTYPE, copy=False)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise TraceFileError(f"{path}: field '{field}': dtype {arr.dtype} holds non-integer values")
    target = {"spikes": SPIKE_DTYPE, "steps": np.int64, "int": np.int64}[kind]
    info = np.iinfo(target)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise TraceFileError(f"{path}: field '{field}': values out of range for {np.dtype(target).name}")
    return arr.astype(target, copy=False)


def build_trace(header: dict, get, path) -> Trace:
    """Assemble a Trace from a checked header and ``get(key) -> array or None``.

    Keys: 'steps', 'predictions', 'labels', ('layer', i, field), ('ann', i)."""
    layers_meta = header["layers"]
    steps = get("steps")
    if steps is None:
        raise TraceFileError(f"{path}: field 'steps': missing")
    steps = check_array(steps, path, "steps", "steps")
    if steps.ndim != 1:
        raise TraceFileError(f"{path}: field 'steps': must be 1-D, has shape {steps.shape}")
    if steps.size > 1 and not np.all(np.diff(steps) > 0):
        raise TraceFileError(f"{path}: field 'steps': must be strictly increasing")
    T = steps.shape[0]
    batch = header.get("batch")
    layers = {}
    for i, rec in enumerate(layers_meta):
        arrays = {}
        for f in FIELDS:
            arr = get(("layer", i, f))
            label = f"{rec['name']}.{f}"
            if arr is None:
                if f in rec["fields"]:
                    raise TraceFileError(f"{path}: field '{label}': missing")
                continue
            if batch is None:
                batch = int(np.shape(arr)[1]) if np.ndim(arr) >= 2 else 0
            arrays[f] = check_array(arr, path, label, "spikes" if f == "spikes" else "float",
                                    (T, batch, *rec["shape"]))
        layers[rec["name"]] = LayerTrace(rec["name"], tuple(rec["shape"]), arrays["spikes"],
                                         arrays.get("membrane"), arrays.get("current"))
    batch = 0 if batch is None else batch
    pred = get("predictions")
    if pred is not None:
        pred = check_array(pred, path, "predictions", "int", (T, batch)).astype(np.int16)
    labels = get("labels")
    if labels is not None:
        labels = check_array(labels, path, "labels", "int", (batch,))
    ann = {}
    for i, rec in enumerate(header.get("ann", [])):
        if not isinstance(rec, dict) or not isinstance(rec.get("name"), str):
            raise TraceFileError(f"{path}: field 'header.ann[{i}]': must be an object with a name")
        arr = get(("ann", i))
        if arr is None:
            raise TraceFileError(f"{path}: field 'ann.{rec['name']}': missing")
        shape = rec.get("shape")
        ann[rec["name"]] = check_array(arr, path, f"ann.{rec['name']}", "float",
                                       None if shape is None else (batch, *shape))
    return Trace(layers, steps, pred, labels, ann, header.get("metadata", {}))
