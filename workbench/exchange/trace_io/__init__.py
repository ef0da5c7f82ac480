"""Trace files out and in: NPZ (default), HDF5 (long runs, streamed), CSV (one layer), raw (C).

``save_trace(trace, path)`` picks the format from the suffix; ``load_trace(path)`` from the
suffix or, failing that, from the file's first bytes. Every bad input raises ``TraceFileError``
naming the file and the field. The schema is documented in docs/trace-format.md.
"""

from __future__ import annotations

from pathlib import Path

from workbench.engine.trace import Trace
from workbench.exchange.trace_io.csv_io import load_csv, save_csv
from workbench.exchange.trace_io.hdf5 import HDF5TraceWriter, load_hdf5, save_hdf5, stream_run
from workbench.exchange.trace_io.npz import load_npz, save_npz
from workbench.exchange.trace_io.raw import MANIFEST, load_raw, save_raw
from workbench.exchange.trace_io.schema import SCHEMA
from workbench.errors import TraceFileError

FORMATS = ("npz", "hdf5", "csv", "raw")
_SUFFIX = {".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5", ".csv": "csv", ".txt": "raw"}


def format_for(path, format: str | None = None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise TraceFileError(f"{path}: field 'format': '{format}' is not one of {', '.join(FORMATS)}")
        return format
    path = Path(path)
    if path.is_dir() or path.suffix == "":
        return "raw"
    try:
        return _SUFFIX[path.suffix.lower()]
    except KeyError:
        raise TraceFileError(f"{path}: field 'format': unknown suffix '{path.suffix}' "
                             "(use .npz, .h5/.hdf5, .csv, or a folder for raw)") from None


def save_trace(trace: Trace, path, format: str | None = None, layer: str | None = None) -> None:
    """Write ``trace`` atomically. ``layer`` chooses the one layer of a CSV file."""
    fmt = format_for(path, format)
    if fmt == "csv":
        save_csv(trace, path, layer)
    elif layer is not None:
        raise TraceFileError(f"{path}: field 'layer': only CSV holds a single layer")
    else:
        {"npz": save_npz, "hdf5": save_hdf5, "raw": save_raw}[fmt](trace, path)


def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise TraceFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise TraceFileError(f"{path}: cannot be read ({exc})") from None
    if head.startswith(b"PK"):
        return "npz"
    if head.startswith(b"\x89HDF"):
        return "hdf5"
    if head.startswith(b"# "):
        return "csv"
    if head.startswith(b"snn-workbench-tr"):
        return "raw"
    raise TraceFileError(f"{path}: field 'format': not a trace file (unrecognised content)")


def load_trace(path, format: str | None = None) -> Trace:
    """Read a trace of any format; raises TraceFileError naming the file and the field."""
    path = Path(path)
    if format is None:
        if path.is_dir():
            format = "raw"
        elif not path.exists():
            raise TraceFileError(f"{path}: no such file")
        else:
            format = _sniff(path)
    fmt = format_for(path, format)
    return {"npz": load_npz, "hdf5": load_hdf5, "csv": load_csv, "raw": load_raw}[fmt](path)


__all__ = ["FORMATS", "SCHEMA", "MANIFEST", "HDF5TraceWriter", "format_for", "load_trace", "save_trace",
           "stream_run", "TraceFileError"]
