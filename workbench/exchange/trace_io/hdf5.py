"""HDF5 traces, written incrementally so a run larger than memory can be recorded to disk.

Layout: root attribute ``header`` (the JSON header), datasets ``steps`` [T] int64,
``predictions`` [T, B] int16, ``labels`` [B] int64, ``layer<i>/spikes`` [T, B, *shape] int16,
``layer<i>/membrane`` and ``layer<i>/current`` float32 (group attribute ``name`` = layer name),
``ann<i>`` [B, *shape] float32. Time-indexed datasets are chunked and grow along axis 0; the
header's ``n_steps`` is written on ``close``. The file is built under a temporary name and renamed
into place on ``close``, so an interrupted run never leaves a half file where a good one was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workbench.atomic import atomic_path
from workbench.engine.trace import Trace
from workbench.exchange.trace_io.schema import FIELDS, SCHEMA, _jsonable, build_trace, parse_header
from workbench.errors import TraceFileError
from workbench.hdf5_check import hdf5_problem

_DTYPE = {"spikes": np.int16, "membrane": np.float32, "current": np.float32}
CHUNK_BYTES = 1 << 20
MAX_READ_BYTES = 2 * 1024**3  # one dataset loaded into memory; larger means corrupt or streamed


class HDF5TraceWriter:
    """Append timesteps to an HDF5 trace; rows are buffered and written ``chunk`` at a time.

    ``layers_meta``: ``[(name, shape, fields), ...]`` with ``fields`` a subset of
    ('spikes', 'membrane', 'current') that includes 'spikes'. ``metadata``: JSON-able dict.
    Use as a context manager, or call ``close()`` (``abort()`` discards the file).
    """

    def __init__(self, path, layers_meta, metadata: dict | None = None, batch: int = 1,
                 labels: np.ndarray | None = None, ann: dict | None = None, chunk: int = 64,
                 compression: str | None = "gzip"):
        import h5py

        self.path = Path(path)
        self.batch = int(batch)
        self.layers = [(str(n), tuple(int(d) for d in s), tuple(f)) for n, s, f in layers_meta]
        self.chunk = max(1, int(chunk))
        self.n_steps = 0
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._file = h5py.File(self._tmp, "w")
        self._header = {
            "schema": SCHEMA, "layout": "channels_last", "membrane": "post-reset",
            "flatten_order": "row-major over shape (channels last)", "batch": self.batch, "n_steps": 0,
            "layers": [{"name": n, "shape": list(s), "fields": list(f)} for n, s, f in self.layers],
            "ann": [{"name": k, "shape": list(np.shape(v)[1:])} for k, v in (ann or {}).items()],
            "has_predictions": True, "has_labels": labels is not None,
            "metadata": _jsonable(dict(metadata or {})),
        }
        f = self._file
        f.attrs["header"] = json.dumps(self._header)
        opts = {"compression": compression} if compression else {}
        self._dsets = {"steps": f.create_dataset("steps", (0,), np.int64, maxshape=(None,), chunks=(1024,))}
        self._dsets["predictions"] = f.create_dataset("predictions", (0, self.batch), np.int16,
                                                      maxshape=(None, self.batch), chunks=(1024, self.batch))
        for i, (name, shape, fields) in enumerate(self.layers):
            grp = f.create_group(f"layer{i}")
            grp.attrs["name"] = name
            row = self.batch * int(np.prod(shape))
            rows = int(max(1, min(1024, CHUNK_BYTES // max(row * 4, 1))))
            for field in fields:
                self._dsets[(i, field)] = grp.create_dataset(
                    field, (0, self.batch, *shape), _DTYPE[field], maxshape=(None, self.batch, *shape),
                    chunks=(rows, self.batch, *shape), **opts)
        if labels is not None:
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
        for i, arr in enumerate((ann or {}).values()):
            f.create_dataset(f"ann{i}", data=np.asarray(arr, dtype=np.float32))
        self._buffer: list[tuple] = []

    @classmethod
    def for_simulator(cls, sim, path, ann: dict | None = None, **kw) -> "HDF5TraceWriter":
        """A writer for the layers ``sim`` records, with the simulator's metadata and labels."""
        fields = ("spikes",) + ("membrane",) * sim.config.record_membrane + ("current",) * sim.config.record_current
        meta = [(ls.layer.name, ls.layer.output_shape, fields) for ls in sim.recorder.layers]
        return cls(path, meta, sim.metadata(), sim.batch, sim.labels, ann, **kw)

    def append(self, step: int, layers: dict, predictions=None) -> None:
        """One timestep: ``layers[name] = {'spikes': [B,*shape], 'membrane': ..., ...}`` (copied)."""
        row = {}
        for i, (name, shape, fields) in enumerate(self.layers):
            for field in fields:
                row[(i, field)] = np.array(layers[name][field], dtype=_DTYPE[field], copy=True)
        pred = np.full(self.batch, -1, np.int16) if predictions is None else np.asarray(predictions, np.int16)
        self._buffer.append((int(step), pred, row))
        if len(self._buffer) >= self.chunk:
            self.flush()

    def append_simulator(self, sim) -> None:
        """Append the current state of the recorded layers (call after each ``sim.step()``)."""
        layers = {}
        for ls in sim.recorder.layers:
            layers[ls.layer.name] = {"spikes": ls.spikes, "membrane": ls.membrane(), "current": ls.J}
        self.append(sim.t, layers, sim.prediction())

    def flush(self) -> None:
        if not self._buffer:
            return
        n0, n = self.n_steps, len(self._buffer)
        for key, dset in self._dsets.items():
            dset.resize(n0 + n, axis=0)
            if key == "steps":
                dset[n0:] = [b[0] for b in self._buffer]
            elif key == "predictions":
                dset[n0:] = np.stack([b[1] for b in self._buffer])
            else:
                dset[n0:] = np.stack([b[2][key] for b in self._buffer])
        self.n_steps += n
        self._buffer.clear()

    def close(self) -> None:
        """Flush, write the final header, and move the file into place."""
        if self._file is None:
            return
        try:
            self.flush()
            self._header["n_steps"] = self.n_steps
            self._file.attrs["header"] = json.dumps(self._header)
            self._file.close()
        except BaseException as exc:
            self.abort(exc)
            raise
        self._file = None
        self._atomic.__exit__(None, None, None)

    def abort(self, exc: BaseException | None = None) -> None:
        """Discard the partial file (the target, if it existed, is left untouched)."""
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - closing a broken file; it is deleted next
                pass
            self._file = None
            err = exc or RuntimeError("aborted")
            self._atomic.__exit__(type(err), err, None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort(exc)
        return False


def stream_run(sim, n_steps: int, path, on_progress: Callable[[int, int], None] | None = None,
               should_stop: Callable[[], bool] | None = None, ann: dict | None = None,
               chunk: int = 64) -> int:
    """Run ``sim`` for ``n_steps`` steps from its current state, streaming every step of the
    recorded layers to an HDF5 trace at ``path``. Returns the number of steps run (fewer when
    ``should_stop`` said so; the file then holds those steps). Memory stays at ``chunk`` steps."""
    with HDF5TraceWriter.for_simulator(sim, path, ann=ann, chunk=chunk) as writer:
        done = 0
        for i in range(int(n_steps)):
            if should_stop is not None and should_stop():
                break
            sim.step()
            writer.append_simulator(sim)
            done = i + 1
            if on_progress is not None and (done % 10 == 0 or done == n_steps):
                on_progress(done, n_steps)
    return done


def save_hdf5(trace: Trace, path, compression: str | None = "gzip") -> None:
    meta = [(lt.name, lt.shape, [f for f in FIELDS if getattr(lt, f) is not None]) for lt in trace.layers.values()]
    with HDF5TraceWriter(path, meta, dict(trace.metadata), trace.batch, trace.labels, dict(trace.ann),
                         chunk=max(trace.n_steps, 1), compression=compression) as w:
        w._header["has_predictions"] = trace.predictions is not None
        for t in range(trace.n_steps):
            layers = {lt.name: {f: getattr(lt, f)[t] for f in FIELDS if getattr(lt, f) is not None}
                      for lt in trace.layers.values()}
            w.append(int(trace.steps[t]), layers, None if trace.predictions is None else trace.predictions[t])


def load_hdf5(path) -> Trace:
    import h5py

    path = Path(path)
    if not path.exists():
        raise TraceFileError(f"{path}: no such file")
    problem = hdf5_problem(path)  # libhdf5 can hang on a truncated or corrupt file: refuse it first
    if problem:
        raise TraceFileError(f"{path}: {problem}")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise TraceFileError(f"{path}: not an HDF5 trace ({exc})") from None
    with fh:
        try:
            raw = fh.attrs.get("header")
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise TraceFileError(f"{path}: field 'header': unreadable (corrupt?) ({exc})") from None
        if raw is None:
            raise TraceFileError(f"{path}: field 'header': missing root attribute (not a snn-workbench trace)")
        header = parse_header(raw, path)
        has_pred = header.get("has_predictions", True)

        def get(what):
            if what == "steps":
                key = "steps"
            elif what == "predictions":
                key = "predictions" if has_pred else None
            elif what == "labels":
                key = "labels"
            elif what[0] == "layer":
                key = f"layer{what[1]}/{what[2]}"
            else:
                key = f"ann{what[1]}"
            # a corrupt file makes h5py raise KeyError/RuntimeError/OSError from any lookup
            try:
                if key is None or key not in fh:
                    return None
                obj = fh[key]
                if not isinstance(obj, h5py.Dataset):
                    raise TraceFileError(f"{path}: field '{key}': a group, expected a dataset")
                need = int(obj.size) * obj.dtype.itemsize
                if need > MAX_READ_BYTES:
                    raise TraceFileError(f"{path}: field '{key}': declares {need} bytes, more than the "
                                         f"limit of {MAX_READ_BYTES} (corrupt, or too large to load)")
                return obj[()]
            except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
                raise TraceFileError(f"{path}: field '{key}': unreadable (corrupt or truncated?) ({exc})") from None

        return build_trace(header, get, path)
