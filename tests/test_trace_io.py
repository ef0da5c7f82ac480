"""Trace files: every format round-trips exactly; bad files name the file and the field."""

import json
import zipfile

import numpy as np
import pytest
from trace_nets import conv_net, inputs, run_trace

from workbench.analysis.compare import compare_traces
from workbench.engine.config import SimConfig
from workbench.engine.simulator import Simulator
from workbench.exchange.trace_io import HDF5TraceWriter, load_trace, save_trace, stream_run
from workbench.errors import TraceFileError


@pytest.fixture(scope="module")
def trace():
    return run_trace(steps=12, batch=2)


def assert_same(a, b, layers=None):
    for name in layers or a.layers:
        la, lb = a.layers[name], b.layers[name]
        assert la.shape == lb.shape
        for f in ("spikes", "membrane", "current"):
            x, y = getattr(la, f), getattr(lb, f)
            assert (x is None) == (y is None), f
            if x is not None:
                assert x.dtype == y.dtype and np.array_equal(x, y), (name, f)
    assert np.array_equal(a.steps, b.steps)


@pytest.mark.parametrize("name", ["t.npz", "t.h5", "t.hdf5", "raw_trace"])
def test_round_trip_every_format(trace, tmp_path, name):
    path = tmp_path / name
    save_trace(trace, path)
    back = load_trace(path)
    assert_same(trace, back)
    assert np.array_equal(back.predictions, trace.predictions)
    assert np.array_equal(back.labels, trace.labels)
    assert np.array_equal(back.ann["out"], trace.ann["out"])
    assert back.metadata["network_sha256"] == trace.metadata["network_sha256"]
    assert back.metadata["models"]["conv1"]["params"] == {"threshold": 1.0, "reset": "subtract"}
    assert compare_traces(trace, back, membrane_atol=0).equal


def test_csv_round_trip_one_layer(trace, tmp_path):
    path = tmp_path / "conv2.csv"
    save_trace(trace, path, layer="conv2")
    lines = path.read_text().splitlines()
    assert lines[1] == "step,sample,neuron,h,w,c,spike,membrane,current"
    back = load_trace(path)
    assert list(back.layers) == ["conv2"]
    assert_same(trace, back, ["conv2"])
    with pytest.raises(TraceFileError, match="layer"):
        save_trace(trace, tmp_path / "all.csv")


def test_streamed_hdf5_equals_recorded_trace(tmp_path):
    net = conv_net()
    cfg = SimConfig(steps=25, batch=2)
    sim = Simulator(net, cfg, inputs(net, 2), labels=np.array([0, 1]))
    seen = []
    assert stream_run(sim, 25, tmp_path / "s.h5", on_progress=lambda d, n: seen.append(d), chunk=4) == 25
    assert seen[-1] == 25
    streamed = load_trace(tmp_path / "s.h5")
    assert_same(sim.trace(), streamed)
    assert np.array_equal(streamed.predictions, sim.trace().predictions)


def test_interrupted_writer_leaves_no_file(tmp_path):
    target = tmp_path / "w.h5"
    with pytest.raises(RuntimeError):
        with HDF5TraceWriter(target, [("a", (3,), ("spikes",))], {}, batch=1) as w:
            w.append(1, {"a": {"spikes": np.ones((1, 3))}})
            raise RuntimeError("killed")
    assert not target.exists() and not list(tmp_path.iterdir())


def _npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _header(**changes):
    h = {"schema": "snn-workbench.trace/1", "batch": 1,
         "layers": [{"name": "fc", "shape": [3], "fields": ["spikes", "membrane"]}]}
    h.update(changes)
    return np.frombuffer(json.dumps(h).encode(), np.uint8)


GOOD = dict(steps=np.arange(1, 3), **{"layer0.spikes": np.zeros((2, 1, 3), np.int16),
                                       "layer0.membrane": np.zeros((2, 1, 3), np.float32)})


@pytest.mark.parametrize("arrays, field", [
    (dict(GOOD, **{"layer0.spikes": np.zeros((2, 1, 4), np.int16)}), "fc.spikes"),  # wrong shape
    ({k: v for k, v in GOOD.items() if k != "layer0.membrane"}, "fc.membrane"),  # missing field
    (dict(GOOD, **{"layer0.membrane": np.array([["a"] * 3] * 2)[:, None]}), "fc.membrane"),  # wrong dtype
    (dict(GOOD, **{"layer0.spikes": np.full((2, 1, 3), 0.5)}), "fc.spikes"),  # non-integer spikes
    (dict(GOOD, **{"layer0.spikes": np.zeros((2, 1, 3), object)}), "layer0.spikes"),  # pickled objects
    (dict(GOOD, steps=np.array([2, 1])), "steps"),
    ({k: v for k, v in GOOD.items() if k != "steps"}, "steps"),
])
def test_bad_npz_names_file_and_field(tmp_path, arrays, field):
    path = tmp_path / "bad.npz"
    _npz(path, header=_header(), **arrays)
    with pytest.raises(TraceFileError) as err:
        load_trace(path)
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value)


def test_good_hand_written_npz_loads(tmp_path):
    path = tmp_path / "ok.npz"
    _npz(path, header=_header(), **GOOD)
    assert load_trace(path).layers["fc"].spikes.shape == (2, 1, 3)


@pytest.mark.parametrize("content, field", [
    (b"hello, I am not a trace", "format"),
    (b"PK\x03\x04 truncated zip", ""),
    (b"\x89HDF\r\n\x1a\n broken", ""),
    (b"# {not json\nstep\n", "header"),
])
def test_not_a_trace(tmp_path, content, field):
    path = tmp_path / "x.dat"
    path.write_bytes(content)
    with pytest.raises(TraceFileError) as err:
        load_trace(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_truncated_files(trace, tmp_path):
    npz = tmp_path / "t.npz"
    save_trace(trace, npz)
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceFileError, match="t.npz"):
        load_trace(npz)
    raw = tmp_path / "raw"
    save_trace(trace, raw)
    spikes = raw / "layer1.spikes.bin"
    spikes.write_bytes(spikes.read_bytes()[:-2])
    with pytest.raises(TraceFileError, match=r"layer1\.spikes\.bin.*truncated"):
        load_trace(raw)
    csv = tmp_path / "t.csv"
    save_trace(trace, csv, layer="fc1")
    csv.write_text("\n".join(csv.read_text().splitlines()[:-5]) + "\n")
    with pytest.raises(TraceFileError, match="rows"):
        load_trace(csv)


def test_missing_npz_header(tmp_path):
    path = tmp_path / "plain.npz"
    _npz(path, x=np.zeros(3))
    with pytest.raises(TraceFileError, match="'header'"):
        load_trace(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["x.npy"]
