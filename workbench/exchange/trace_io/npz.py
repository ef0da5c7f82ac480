"""NPZ traces: one uncompressed ``.npz`` (a zip of ``.npy`` files), never pickled objects.

Members: ``header`` (uint8, UTF-8 JSON), ``steps``, ``predictions``, ``labels``,
``layer<i>.spikes`` / ``layer<i>.membrane`` / ``layer<i>.current`` for the i-th entry of
``header.layers``, ``ann<i>`` for the i-th entry of ``header.ann``.
"""

from __future__ import annotations

import json
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from workbench.atomic import atomic_path
from workbench.engine.trace import Trace
from workbench.exchange.trace_io.schema import FIELDS, build_trace, header_for, parse_header
from workbench.errors import TraceFileError


def key_for(what) -> str:
    if isinstance(what, str):
        return what
    if what[0] == "layer":
        return f"layer{what[1]}.{what[2]}"
    return f"ann{what[1]}"


def save_npz(trace: Trace, path) -> None:
    header = header_for(trace)
    arrays = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), "steps": trace.steps}
    if trace.predictions is not None:
        arrays["predictions"] = trace.predictions
    if trace.labels is not None:
        arrays["labels"] = trace.labels
    for i, lt in enumerate(trace.layers.values()):
        for f in FIELDS:
            arr = getattr(lt, f)
            if arr is not None:
                arrays[key_for(("layer", i, f))] = arr
    for i, arr in enumerate(trace.ann.values()):
        arrays[key_for(("ann", i))] = arr
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_npz(path) -> Trace:
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise TraceFileError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        raise TraceFileError(f"{path}: not an NPZ trace ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise TraceFileError(f"{path}: field 'header': a single .npy array, not an NPZ trace")
    with data:
        def get(what):
            key = key_for(what)
            if key not in data.files:
                return None
            try:
                return data[key]
            except ValueError as exc:  # object arrays (pickles) land here
                raise TraceFileError(f"{path}: field '{key}': cannot be read without pickle ({exc})") from None
            except (OSError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError, RuntimeError,
                    zlib.error, SyntaxError, tokenize.TokenError) as exc:
                # zipfile and numpy report corrupt members (unknown compression, "encrypted"
                # flag, bad deflate data, mangled .npy header) with any of these
                raise TraceFileError(f"{path}: field '{key}': truncated or corrupt ({exc})") from None

        raw = get("header")
        if raw is None:
            raise TraceFileError(f"{path}: field 'header': missing (not a snn-workbench trace)")
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise TraceFileError(f"{path}: field 'header': must be 1-D uint8 (UTF-8 JSON), got {raw.dtype} {raw.shape}")
        header = parse_header(raw.tobytes(), path)
        return build_trace(header, get, path)
