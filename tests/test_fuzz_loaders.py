"""Property-based fuzzing of every loader and parser a user's file reaches.

Real files (the demo data and saved network, trace files in every format, small .keras/.h5
models, an .onnx model) are mutated — bytes overwritten, truncated, spliced, zeroed; JSON headers given random
values — and arrays of random shapes and dtypes are generated. Whatever the file, a loader either
succeeds or raises one of our documented ``WorkbenchError`` types: nothing else escapes.

Example counts (the ``N_*`` constants) total about 4,400 files; docs/robustness.md lists them.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from workbench.exchange.trace_io import load_trace, save_trace
from workbench.errors import WorkbenchError
from workbench.models.data import load_samples
from workbench.models.loading import DEMO_NETWORK, DEMO_TEST
from workbench.models.network import Network

from trace_nets import dense_net, run_trace

N_DATA_BYTES = 500
N_DATA_ARRAYS = 400
N_IMAGES = 400
N_NETWORK_BYTES = 400
N_NETWORK_HEADER = 250
N_TRACE_BYTES = 300  # per format: npz, h5, csv
N_TRACE_HEADER = 300
N_TRACE_RAW = 300
N_KERAS = 40  # per format: .keras (config.json mutated inside a valid zip), .h5 (bytes)
N_ONNX_BYTES = 300
N_ONNX_GRAPH = 300

SHAPE = (8, 8, 1)
FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                   HealthCheck.data_too_large])


def settings_for(n):
    return settings(max_examples=n, **FUZZ)


class Mutated(bytes):
    """Mutated bytes whose repr (in a failure report) is the recipe, not 300 kB of data."""

    recipe: list

    def __repr__(self):
        return f"<{len(self)} bytes: {self.recipe}>"


@st.composite
def mutated(draw, base: bytes) -> bytes:
    """``base`` with one to a few random corruptions."""
    data = bytearray(base)
    recipe = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["overwrite", "truncate", "splice", "zero", "insert"]))
        n = len(data)
        if n == 0:
            break
        at = draw(st.integers(0, n - 1))
        if kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at:at + len(chunk)] = chunk
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            other = draw(st.integers(0, n - 1))
            length = draw(st.integers(1, 256))
            data[at:at + length] = data[other:other + length]
        elif kind == "zero":
            length = draw(st.integers(1, 4096))
            data[at:at + length] = bytes(min(length, n - at))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        recipe.append((kind, at))
    out = Mutated(bytes(data))
    out.recipe = recipe
    return out


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_json(draw, base: dict):
    """``base`` with one to three values (anywhere in the tree) replaced, or keys deleted."""
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return doc


def expect_clean(fn, *args):
    """Succeeds, or fails with one of our error types (anything else fails the test)."""
    try:
        return fn(*args)
    except WorkbenchError as exc:
        assert str(exc), "an error must say something"
        return None


@pytest.fixture(autouse=True)
def no_hdf5_probe(monkeypatch):
    """The parsers are fuzzed here, in this process; the child-process probe that guards
    against libhdf5 hangs costs ~0.5 s a file and is tested in test_hdf5_check.py."""
    from workbench import hdf5_check

    monkeypatch.setattr(hdf5_check, "PROBE_TIMEOUT", None)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# ---- sample data ------------------------------------------------------------------------------
@settings_for(N_DATA_BYTES)
@given(data=mutated(DEMO_TEST.read_bytes()), suffix=st.sampled_from([".npz", ".npy"]))
def test_data_file_bytes(work, data, suffix):
    if suffix == ".npy":  # the same corruptions applied to a plain .npy
        buf = io.BytesIO()
        np.save(buf, np.zeros((3, *SHAPE), np.float32))
        data = data[: len(buf.getvalue())] if len(data) > 200 else data
    path = work / f"d{suffix}"
    path.write_bytes(data)
    expect_clean(load_samples, path, SHAPE, 10)


DTYPES = st.sampled_from(["f4", "f8", "f2", "i1", "i8", "u1", "u8", "b1", "c8", "U3", "S2", "M8[s]", "m8[s]"])


@settings_for(N_DATA_ARRAYS)
@given(
    x=hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=9)),
    y=st.none() | hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=12)),
    in_shape=st.sampled_from([SHAPE, (8, 8, 3), (64,), (4, 4)]),
    classes=st.none() | st.integers(1, 12),
)
def test_data_arrays_of_any_shape_and_dtype(work, x, y, in_shape, classes):
    path = work / "a.npz"
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    np.savez(path, **arrays)
    samples = expect_clean(load_samples, path, in_shape, classes)
    if samples is not None:
        assert samples.x.dtype == np.float32 and samples.x.shape[1:] == in_shape
        assert np.isfinite(samples.x).all()
        if samples.y is not None:
            assert samples.y.shape == (len(samples.x),) and samples.y.min() >= 0
            assert classes is None or samples.y.max() < classes


def _png(pixels: np.ndarray) -> bytes:
    import struct
    import zlib

    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))

    def chunk(t, body):
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


_PIXELS = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
_PGM = b"P5\n# c\n8 8\n255\n" + _PIXELS.tobytes()
_PGM_ASCII = b"P2\n8 8\n255\n" + " ".join(map(str, _PIXELS.ravel())).encode()


@settings_for(N_IMAGES)
@given(which=st.sampled_from(["png", "pgm", "pgm-ascii"]), st_data=st.data())
def test_image_bytes(work, which, st_data):
    base = {"png": _png(_PIXELS), "pgm": _PGM, "pgm-ascii": _PGM_ASCII}[which]
    path = work / ("i.png" if which == "png" else "i.pgm")
    path.write_bytes(st_data.draw(mutated(base)))
    samples = expect_clean(load_samples, path, SHAPE, None)
    if samples is not None:
        assert samples.x.shape == (1, *SHAPE) and np.isfinite(samples.x).all()


# ---- saved networks ---------------------------------------------------------------------------
@settings_for(N_NETWORK_BYTES)
@given(data=mutated(DEMO_NETWORK.read_bytes()))
def test_network_file_bytes(work, data):
    path = work / "n.npz"
    path.write_bytes(data)
    expect_clean(Network.load, path)


def _network_parts():
    with np.load(DEMO_NETWORK, allow_pickle=False) as f:
        header = json.loads(bytes(f["header"]).decode())
        arrays = {k: f[k] for k in f.files if k != "header"}
    return header, arrays


_NET_HEADER, _NET_ARRAYS = _network_parts()


@settings_for(N_NETWORK_HEADER)
@given(header=mutated_json(_NET_HEADER), drop=st.sets(st.sampled_from(sorted(_NET_ARRAYS)), max_size=2),
       nan=st.booleans())
def test_network_header_values(work, header, drop, nan):
    arrays = {k: v for k, v in _NET_ARRAYS.items() if k not in drop}
    if nan and "w1" in arrays:
        arrays["w1"] = arrays["w1"].copy()
        arrays["w1"].flat[0] = np.nan
    path = work / "h.npz"
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    net = expect_clean(Network.load, path)
    if net is not None:
        assert not net.nonfinite()


# ---- trace files ------------------------------------------------------------------------------
def _trace_seed_bytes():
    # hypothesis needs the seeds when the test is collected: build them once, here.
    import tempfile
    from pathlib import Path

    trace = run_trace(dense_net(), steps=6, batch=2)
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for fmt in ("npz", "h5", "csv"):
            path = Path(d) / f"t.{fmt}"
            save_trace(trace, path, layer=next(iter(trace.layers)) if fmt == "csv" else None)
            out[fmt] = path.read_bytes()
        save_trace(trace, Path(d) / "raw")
        out["raw"] = {p.name: p.read_bytes() for p in (Path(d) / "raw").iterdir()}
    with np.load(io.BytesIO(out["npz"]), allow_pickle=False) as f:
        out["npz_header"] = json.loads(bytes(f["header"]).decode())
        out["npz_arrays"] = {k: f[k] for k in f.files if k != "header"}
    return out


_TRACES = _trace_seed_bytes()


@pytest.mark.parametrize("fmt", ["npz", "csv"])
def test_trace_file_bytes(work, fmt):
    @settings_for(N_TRACE_BYTES)
    @given(data=mutated(_TRACES[fmt]), sniff=st.booleans())
    def check(data, sniff):
        path = work / f"tb.{fmt}"
        path.write_bytes(data)
        expect_clean(load_trace, path, None if sniff else {"h5": "hdf5"}.get(fmt, fmt))

    check()


def test_trace_hdf5_overwrites(work):
    """HDF5: seeded overwrites of 1-16 bytes anywhere. (Hypothesis' truncations and splices are
    left out: libhdf5 can loop forever reading a corrupt attribute, see docs/robustness.md.)"""
    import random

    rng = random.Random(0)
    base = _TRACES["h5"]
    for _ in range(N_TRACE_BYTES):
        data = bytearray(base)
        at, n = rng.randrange(len(data)), rng.randint(1, 16)
        data[at:at + n] = bytes(rng.randrange(256) for _ in range(n))
        (work / "tb.h5").write_bytes(data)
        expect_clean(load_trace, work / "tb.h5")


@settings_for(N_TRACE_HEADER)
@given(header=mutated_json(_TRACES["npz_header"]),
       swap=st.none() | st.tuples(st.sampled_from(sorted(_TRACES["npz_arrays"])),
                                  hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, max_side=7))))
def test_trace_header_and_arrays(work, header, swap):
    arrays = dict(_TRACES["npz_arrays"])
    if swap is not None:
        arrays[swap[0]] = swap[1]
    path = work / "th.npz"
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    expect_clean(load_trace, path)


@settings_for(N_TRACE_RAW)
@given(st_data=st.data())
def test_raw_trace_folder(work, st_data):
    folder = work / "raw"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    files = _TRACES["raw"]
    victim = st_data.draw(st.sampled_from(sorted(files)))
    for name, content in files.items():
        if name == victim:
            if st_data.draw(st.booleans()) and name != "trace.txt":
                continue  # a missing file
            content = st_data.draw(mutated(content))
        (folder / name).write_bytes(content)
    expect_clean(load_trace, folder)


# ---- Keras model files (slow: fewer examples) --------------------------------------------------
@pytest.fixture(scope="module")
def keras_seeds(work):
    keras = pytest.importorskip("keras")
    L = keras.layers
    model = keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(2, 3, name="c"), L.BatchNormalization(name="bn"),
                              L.ReLU(name="r"), L.Flatten(name="f"), L.Dense(3, activation="softmax", name="d")])
    out = {}
    for fmt in ("keras", "h5"):
        path = work / f"seed.{fmt}"
        model.save(path)
        out[fmt] = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(out["keras"])) as z:
        out["members"] = {n: z.read(n) for n in z.namelist()}
    return out


def test_keras_config_values(work, keras_seeds):
    from workbench.models.keras.importer import load_keras

    config = json.loads(keras_seeds["members"]["config.json"])

    @settings_for(N_KERAS)
    @given(doc=mutated_json(config))
    def check(doc):
        path = work / "k.keras"
        with zipfile.ZipFile(path, "w") as z:
            for name, content in keras_seeds["members"].items():
                z.writestr(name, json.dumps(doc) if name == "config.json" else content)
        expect_clean(load_keras, path)

    check()


def test_keras_h5_bytes(work, keras_seeds):
    """Seeded 1-16 byte overwrites (truncations/splices can hang libhdf5: docs/robustness.md)."""
    import random

    from workbench.models.keras.importer import load_keras

    rng = random.Random(1)
    base = keras_seeds["h5"]
    for _ in range(N_KERAS):
        data = bytearray(base)
        at, n = rng.randrange(len(data)), rng.randint(1, 16)
        data[at:at + n] = bytes(rng.randrange(256) for _ in range(n))
        (work / "k.h5").write_bytes(data)
        expect_clean(load_keras, work / "k.h5")


# ---- ONNX model files ---------------------------------------------------------------------------
ONNX_SEED = __import__("pathlib").Path(__file__).resolve().parent.parent / "resources" / "onnx" / "resnet_block.onnx"


@settings_for(N_ONNX_BYTES)
@given(data=mutated(ONNX_SEED.read_bytes()))
def test_onnx_file_bytes(work, data):
    pytest.importorskip("onnx")
    from workbench.models.onnx.importer import load_onnx

    (work / "m.onnx").write_bytes(data)
    expect_clean(load_onnx, work / "m.onnx")


_OPS = ["Conv", "Relu", "Add", "Gemm", "MatMul", "BatchNormalization", "MaxPool", "AveragePool", "Flatten",
        "Reshape", "Concat", "Pad", "Transpose", "Clip", "Identity", "Shape", "Gather", "Squeeze", "Erf"]


@settings_for(N_ONNX_GRAPH)
@given(st_data=st.data())
def test_onnx_graph_values(work, st_data):
    """The graph itself mutated: op types swapped, inputs rewired, attributes and dims set to
    odd values (0, negative, huge), initializers reshaped."""
    onnx = pytest.importorskip("onnx")
    from workbench.models.onnx.importer import load_onnx

    model = onnx.load_model_from_string(ONNX_SEED.read_bytes())
    g = model.graph
    names = [i.name for i in g.input] + [i.name for i in g.initializer] + [o for n in g.node for o in n.output]
    for _ in range(st_data.draw(st.integers(1, 4))):
        node = g.node[st_data.draw(st.integers(0, len(g.node) - 1))]
        what = st_data.draw(st.sampled_from(["op", "input", "attr", "dims", "drop"]))
        if what == "op":
            node.op_type = st_data.draw(st.sampled_from(_OPS))
        elif what == "input" and len(node.input):
            node.input[st_data.draw(st.integers(0, len(node.input) - 1))] = st_data.draw(st.sampled_from(names + [""]))
        elif what == "attr" and len(node.attribute):
            attr = node.attribute[st_data.draw(st.integers(0, len(node.attribute) - 1))]
            value = st_data.draw(st.sampled_from([0, -1, 1, 3, 2**40]))
            if len(attr.ints):
                attr.ints[st_data.draw(st.integers(0, len(attr.ints) - 1))] = value
            else:
                attr.i, attr.f = value, float(value)
        elif what == "dims" and len(g.initializer):
            t = g.initializer[st_data.draw(st.integers(0, len(g.initializer) - 1))]
            if len(t.dims):
                t.dims[st_data.draw(st.integers(0, len(t.dims) - 1))] = st_data.draw(st.sampled_from([0, 1, 7, 2**31]))
        elif what == "drop" and len(g.node) > 1:
            del g.node[st_data.draw(st.integers(0, len(g.node) - 1))]
    (work / "g.onnx").write_bytes(model.SerializeToString())
    expect_clean(load_onnx, work / "g.onnx")
