"""Raw traces: a folder of little-endian binaries and a plain-text manifest, easy to write from C.

``trace.txt`` (one directive per line, ``#`` starts a comment)::

    snn-workbench-trace 1
    batch 1
    steps 20
    layer conv1 3 8 8 16 spikes,membrane
    layer fc1 1 64 spikes

``layer NAME NDIM D0 .. DN-1 FIELDS``: the i-th ``layer`` line owns ``layer<i>.spikes.bin``
(int16) and, when listed, ``layer<i>.membrane.bin`` / ``layer<i>.current.bin`` (float32), each
``steps * batch * prod(D)`` values in C order [T][B][D0]..[DN-1]. Optional: ``steps.bin`` (int64,
default 1..T), ``predictions.bin`` (int16 [T][B]), ``labels.bin`` (int64 [B]), ``metadata.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from workbench.atomic import atomic_dir
from workbench.engine.trace import Trace
from workbench.exchange.trace_io.schema import FIELDS, SCHEMA, _jsonable, build_trace, parse_header
from workbench.errors import TraceFileError

MAGIC = "snn-workbench-trace"
MANIFEST = "trace.txt"
_DTYPES = {"spikes": "<i2", "membrane": "<f4", "current": "<f4"}


def save_raw(trace: Trace, path) -> None:
    """Write the folder ``path`` atomically (built beside it, then renamed over it)."""
    path = Path(path)
    lines = [f"{MAGIC} 1", f"batch {trace.batch}", f"steps {trace.n_steps}"]
    for lt in trace.layers.values():
        if not lt.name or any(ch.isspace() for ch in lt.name):
            raise TraceFileError(f"{path}: field 'layer name': '{lt.name}' contains white space (raw format)")
        fields = ",".join(f for f in FIELDS if getattr(lt, f) is not None)
        lines.append(f"layer {lt.name} {len(lt.shape)} {' '.join(map(str, lt.shape))} {fields}")
    with atomic_dir(path) as tmp:
        (tmp / MANIFEST).write_text("\n".join(lines) + "\n")
        trace.steps.astype("<i8").tofile(tmp / "steps.bin")
        if trace.predictions is not None:
            trace.predictions.astype("<i2").tofile(tmp / "predictions.bin")
        if trace.labels is not None:
            trace.labels.astype("<i8").tofile(tmp / "labels.bin")
        for i, lt in enumerate(trace.layers.values()):
            for f in FIELDS:
                arr = getattr(lt, f)
                if arr is not None:
                    arr.astype(_DTYPES[f]).tofile(tmp / f"layer{i}.{f}.bin")
        meta = {"metadata": _jsonable(dict(trace.metadata)),
                "ann": {k: v.tolist() for k, v in trace.ann.items()}}
        (tmp / "metadata.json").write_text(json.dumps(meta))


def _parse_manifest(text: str, path) -> dict:
    lines = [ln.split("#", 1)[0].split() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or lines[0][0] != MAGIC:
        raise TraceFileError(f"{path}: field 'magic': first line must be '{MAGIC} 1'")
    if lines[0][1:] != ["1"]:
        raise TraceFileError(f"{path}: field 'version': only version 1 is known, got {' '.join(lines[0][1:])!r}")
    header = {"schema": SCHEMA, "layers": []}
    for n, words in enumerate(lines[1:], start=2):
        key = words[0]
        try:
            if key in ("batch", "steps") and len(words) == 2:
                header["batch" if key == "batch" else "n_steps"] = int(words[1])
            elif key == "layer":
                ndim = int(words[2])
                shape = [int(d) for d in words[3 : 3 + ndim]]
                fields = words[3 + ndim].split(",") if len(words) > 3 + ndim else ["spikes"]
                if len(shape) != ndim or len(words) > 4 + ndim:
                    raise ValueError("wrong number of values")
                header["layers"].append({"name": words[1], "shape": shape, "fields": fields})
            else:
                raise ValueError(f"unknown directive '{key}'")
        except (ValueError, IndexError) as exc:
            raise TraceFileError(f"{path}: field 'line {n}' ({' '.join(words)}): {exc}") from None
    for key in ("batch", "n_steps"):
        if key not in header or header[key] < 0:
            raise TraceFileError(f"{path}: field '{key.replace('n_', '')}': missing or negative")
    return header


def load_raw(path) -> Trace:
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    manifest = folder / MANIFEST if path.is_dir() else path
    try:
        text = manifest.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceFileError(f"{manifest}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFileError(f"{manifest}: not a raw trace manifest ({exc})") from None
    header = _parse_manifest(text, manifest)
    meta_file = folder / "metadata.json"
    ann = {}
    if meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            header["metadata"] = dict(meta.get("metadata", {}))
            ann = {k: np.asarray(v, dtype=np.float32) for k, v in dict(meta.get("ann", {})).items()}
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise TraceFileError(f"{meta_file}: field 'metadata': not valid JSON ({exc})") from None
    header["ann"] = [{"name": k, "shape": list(v.shape[1:])} for k, v in ann.items()]
    header = parse_header(json.dumps(header), manifest)
    T, B = header["n_steps"], header["batch"]

    def read(name, dtype, count):
        file = folder / name
        if not file.exists():
            return None
        expected = count * np.dtype(dtype).itemsize
        size = file.stat().st_size
        if size != expected:
            raise TraceFileError(f"{file}: field '{name}': {size} bytes, expected {expected} (truncated or wrong shape)")
        return np.fromfile(file, dtype=dtype)

    def get(what):
        if what == "steps":
            arr = read("steps.bin", "<i8", T)
            return np.arange(1, T + 1, dtype=np.int64) if arr is None else arr
        if what == "predictions":
            arr = read("predictions.bin", "<i2", T * B)
            return None if arr is None else arr.reshape(T, B)
        if what == "labels":
            return read("labels.bin", "<i8", B)
        if what[0] == "ann":
            return list(ann.values())[what[1]]
        rec = header["layers"][what[1]]
        n = int(np.prod(rec["shape"]))
        arr = read(f"layer{what[1]}.{what[2]}.bin", _DTYPES[what[2]], T * B * n)
        return None if arr is None else arr.reshape(T, B, *rec["shape"])

    return build_trace(header, get, manifest)
