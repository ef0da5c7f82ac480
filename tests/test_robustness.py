"""Bad input and faults: every user mistake is one clear line (exit 2) naming the file, layer or
field; writes survive ``kill -9``; recordings are bounded. docs/robustness.md is the table of
these cases with the command that reproduces each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.atomic import atomic_path, stale_parts
from workbench.cli.main import main
from workbench.engine.config import SimConfig
from workbench.engine.simulator import Simulator
from workbench.errors import ConfigError, ModelImportError, NetworkFileError, OutputFileError
from workbench.models.loading import DEMO_KERAS, DEMO_NETWORK
from workbench.models.network import Network

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    good_x = rng.random((10, 8, 8, 1)).astype(np.float32)
    np.savez(d / "ten.npz", x=good_x, y=np.arange(10) % 10)
    np.savez(d / "shape.npz", x=np.zeros((5, 28, 28, 1), np.float32))
    np.savez(d / "dtype.npz", x=np.array([["a", "b"]] * 3))
    np.savez(d / "nan.npz", x=np.where(good_x > 0.5, np.nan, good_x))
    np.savez(d / "inf.npz", x=np.where(good_x > 0.5, np.inf, good_x))
    np.savez(d / "empty.npz", x=np.zeros((0, 8, 8, 1), np.float32))
    np.savez(d / "labels_range.npz", x=good_x, y=np.arange(10) + 5)
    np.savez(d / "labels_count.npz", x=good_x, y=np.arange(7))
    np.savez(d / "labels_onehot.npz", x=good_x, y=np.eye(4)[np.arange(10) % 4])
    np.savez(d / "pickled.npz", x=np.array([{"a": 1}], dtype=object))
    with open(d / "huge.npy", "wb") as fh:  # sparse: 3 GiB on paper, nothing on disk
        fh.truncate(3 * 1024**3)
    (d / "text.keras").write_text("this is not a model\n")
    (d / "text.npz").write_text("this is not a network\n")
    (d / "bytes.h5").write_bytes(rng.bytes(4096))
    (d / "image.keras").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(200))
    keras_bytes = DEMO_KERAS.read_bytes()
    (d / "truncated.keras").write_bytes(keras_bytes[: len(keras_bytes) // 2])
    net_bytes = DEMO_NETWORK.read_bytes()
    (d / "truncated.npz").write_bytes(net_bytes[: len(net_bytes) // 2])
    net = Network.load(DEMO_NETWORK)
    net["fc1"].weights[3, 4] = np.nan
    net.save(d / "nan_weights.npz")
    (d / "model.txt").write_text("hello")
    return d


# (case id, argv with {d} for the folder, words the one error line must contain)
CLI_CASES = [
    ("model-text", "run {d}/text.keras --data {d}/ten.npz", "text.keras: not a Keras 3 model archive"),
    ("model-random-bytes", "run {d}/bytes.h5 --data {d}/ten.npz", "bytes.h5: not an HDF5 file"),
    ("model-image", "run {d}/image.keras --data {d}/ten.npz", "image.keras: not a Keras 3 model archive"),
    ("model-truncated-keras", "run {d}/truncated.keras --data {d}/ten.npz", "truncated.keras"),
    ("network-text", "run {d}/text.npz --data {d}/ten.npz", "text.npz: not a saved network"),
    ("network-truncated", "run {d}/truncated.npz --data {d}/ten.npz", "truncated.npz"),
    ("network-nan-weights", "run {d}/nan_weights.npz --data {d}/ten.npz", "layer 'fc1' weights"),
    ("model-suffix", "run {d}/model.txt --data {d}/ten.npz", "model.txt: unsupported model file type"),
    ("model-missing", "run {d}/nope.keras", "nope.keras: no such file"),
    ("data-shape", "run --demo --data {d}/shape.npz", "shape.npz: 'x' has shape (5, 28, 28, 1)"),
    ("data-dtype", "run --demo --data {d}/dtype.npz", "dtype.npz: 'x' has non-numeric dtype"),
    ("data-nan", "run --demo --data {d}/nan.npz", "nan.npz: 'x' has"),
    ("data-inf", "run --demo --data {d}/inf.npz", "NaN or Inf"),
    ("data-empty", "run --demo --data {d}/empty.npz", "empty.npz: 'x' is empty"),
    ("labels-range", "run --demo --data {d}/labels_range.npz", "'y' has label 14, outside 0..9"),
    ("labels-count", "run --demo --data {d}/labels_count.npz", "'y' has 7 labels for 10 samples"),
    ("labels-onehot", "run --demo --data {d}/labels_onehot.npz", "one-hot with 4 classes, the model has 10"),
    ("data-pickle", "run --demo --data {d}/pickled.npz", "pickled Python objects, which are refused"),
    ("data-huge", "run --demo --data {d}/huge.npy", "huge.npy: file is 3221225472 bytes"),
    ("calibration-nan", "run --demo --calibration {d}/nan.npz", "nan.npz"),
    ("steps-zero", "run --demo --steps 0", "steps: must be a whole number"),
    ("steps-negative", "run --demo --steps -5", "steps:"),
    ("dt-negative", "run --demo --dt -1", "dt: must be a positive number"),
    ("dt-nan", "run --demo --dt nan", "dt:"),
    ("dt-above-tau", "run --demo --neuron lif --dt 0.05", "dt: must be > 0 and smaller than tau_rc"),
    ("threshold-zero", "run --demo --param threshold=0", "threshold: must be > 0"),
    ("tau-negative", "run --demo --neuron lif --param tau_rc=-0.02", "tau_rc: must be > 0"),
    ("tau-ref-negative", "run --demo --neuron lif --param tau_ref=-1", "tau_ref:"),
    ("param-not-number", "run --demo --param threshold=abc", "threshold:"),
    ("batch-zero", "run --demo --batch 0", "batch: must be >= 1"),
    ("batch-over-data", "run --demo --data {d}/ten.npz --batch 11", "batch: 11 is more than the 10 sample(s)"),
    ("samples-zero", "run --demo --samples 0", "samples: must be >= 1"),
    ("seed-negative", "run --demo --seed -1", "seed:"),
    ("percentile-over-100", "run --demo --normalize 150", "percentile:"),
    ("rate-scale-zero", "run --demo --rate-scale 0", "rate_scale:"),
    ("record-limit-npz", "run --demo --samples 4 --steps 50 --record-trace {d}/t.npz --max-record-mb 0.1",
     "max-record-mb: recording 6 layers x 50 steps x 4 samples needs"),
    ("record-limit-negative", "run --demo --record-trace {d}/t.npz --max-record-mb -1", "max-record-mb:"),
    ("record-format", "run --demo --samples 2 --steps 2 --record-trace {d}/t.xyz", "t.xyz: field 'format'"),
    ("output-no-folder", "convert " + str(DEMO_NETWORK) + " {d}/no/such/net.npz", "the folder"),
    ("output-is-folder", "convert " + str(DEMO_NETWORK) + " {d}", "it is a folder"),
    ("verify-samples", "verify " + str(DEMO_KERAS) + " --samples 0", "samples: must be >= 1"),
    ("verify-tolerance", "verify " + str(DEMO_KERAS) + " --tolerance -1", "tolerance:"),
    ("compare-not-trace", "compare {d}/ten.npz {d}/ten.npz", "ten.npz: field 'header'"),
    ("compare-garbage", "compare {d}/text.keras {d}/ten.npz", "text.keras: field 'format'"),
    ("neuron-unknown", "run --demo --neuron bogus", "unknown neuron type 'bogus'"),
]


@pytest.mark.parametrize("case, argv, words", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_line_exit_2(files, capsys, case, argv, words):
    code = main(argv.format(d=files).split())
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snn-workbench: error: "), err
    assert words in lines[0], lines[0]


@pytest.mark.parametrize("argv", ["run --demo --data {d}/nan.npz", "convert " + str(DEMO_NETWORK) + " {d}"])
def test_debug_shows_the_traceback(files, capsys, argv):
    code = main(["--debug", *argv.format(d=files).split()])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("snn-workbench: error:")


def test_default_batch_adapts_to_small_data(files, capsys):
    code = main(["run", "--demo", "--data", str(files / "ten.npz"), "--steps", "5", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "batch 10" in out


# ---- recording memory ------------------------------------------------------------------------
def test_simulator_refuses_a_recording_above_the_limit():
    net = Network.load(DEMO_NETWORK)
    with pytest.raises(ConfigError) as info:
        Simulator(net, SimConfig(batch=64, steps=100_000))
    assert info.value.field == "max_record_bytes"
    assert str(info.value) == ("max_record_bytes: recording the spikes, membranes of 6 layer(s) for 100000 steps "
                               "(64 sample(s) at a time) would take 135.4 GB, more than the 2.0 GB allowed for a "
                               "recording; record fewer layers or fewer steps")
    sim = Simulator(net, SimConfig(batch=64, steps=100_000), record_capacity=500)  # a ring buffer fits
    assert sim.recorder.capacity == 500
    with pytest.raises(ConfigError, match="max_record_bytes"):
        SimConfig(max_record_bytes=0)
    Simulator(net, SimConfig(batch=2, steps=100_000, max_record_bytes=None), record_capacity=10)


def test_cli_streams_to_hdf5_above_the_limit_and_matches_memory(files, capsys):
    from workbench.analysis.compare import compare_traces
    from workbench.exchange.trace_io import load_trace

    common = ["run", "--demo", "--samples", "4", "--steps", "40", "--no-progress"]
    assert main([*common, "--record-trace", str(files / "mem.npz")]) == 0
    assert "in memory" in capsys.readouterr().out
    assert main([*common, "--record-trace", str(files / "disk.h5"), "--max-record-mb", "0.1"]) == 0
    assert "streamed to disk" in capsys.readouterr().out
    a, b = load_trace(files / "mem.npz"), load_trace(files / "disk.h5")
    assert a.n_steps == b.n_steps == 40 and compare_traces(a, b).equal


# ---- models that must be refused (Keras) -------------------------------------------------------
@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    keras = pytest.importorskip("keras")
    L = keras.layers
    d = tmp_path_factory.mktemp("models")
    m = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d1"), L.Dense(2, name="d2")])
    w = m.get_layer("d2").get_weights()
    w[0][0, 0], w[1][1] = np.nan, np.inf
    m.get_layer("d2").set_weights(w)
    m.save(d / "nan.keras")
    m.save(d / "nan.h5")
    m = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d1"), L.BatchNormalization(name="bn")])
    w = m.get_layer("bn").get_weights()
    w[3][:] = -1.0
    m.get_layer("bn").set_weights(w)
    m.save(d / "negvar.keras")
    keras.Sequential([keras.Input((4, 4, 4, 2)), L.Flatten(), L.Dense(2)]).save(d / "rank4.keras")
    keras.Sequential([keras.Input((4,), dtype="int32"), L.Dense(2)]).save(d / "int_input.keras")
    i = keras.Input((8, 8, 1))
    x = L.Conv2D(2, 3, name="c")(i)
    x = L.LeakyReLU(name="leaky")(x)
    x = L.Conv2DTranspose(2, 3, name="deconv")(x)
    x = L.Flatten()(x)
    x = L.Dense(2, activation="elu", name="elu_dense")(x)
    keras.Model(i, x).save(d / "unsupported.keras")
    return d


@pytest.mark.parametrize("name, words", [
    ("nan.keras", "NaN or Inf weights in layer(s) 'd2' (Dense: 2 value(s))"),
    ("nan.h5", "NaN or Inf weights in layer(s) 'd2'"),
    ("negvar.keras", "'d1' (15 value(s), with folded 'bn')"),
    ("rank4.keras", "has shape (4, 4, 4, 2); only images (H, W, C) or (H, W) and vectors (N,) can be fed"),
    ("int_input.keras", "has dtype int32"),
    ("unsupported.keras", "'leaky' (LeakyReLU), 'deconv' (Conv2DTranspose), 'elu_dense' (Dense with activation 'elu')"),
])
def test_refused_models_name_the_layer(bad_models, capsys, name, words):
    from workbench.models.keras.importer import load_keras

    with pytest.raises(ModelImportError) as info:
        load_keras(bad_models / name)
    assert name in str(info.value) and words in str(info.value)
    code = main(["convert", str(bad_models / name), str(bad_models / "out.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and words in err
    assert not (bad_models / "out.npz").exists()


def test_saved_network_with_nan_is_refused(files):
    with pytest.raises(NetworkFileError, match="nan_weights.npz: NaN or Inf values in layer 'fc1' weights"):
        Network.load(files / "nan_weights.npz")


# ---- atomic writes under kill -9 ---------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys, numpy as np
    from workbench.models.network import Network
    from workbench.exchange.trace_io import save_trace
    from workbench.engine.trace import LayerTrace, Trace
    kind, target = sys.argv[1], sys.argv[2]
    if kind == "network":
        net = Network.load(sys.argv[3])
        big = net.copy()
        big.layers[-2].weights = np.random.default_rng(0).random((64, 100_000)).astype(np.float32)
        while True:
            big.save(target)
    else:
        spikes = np.ones((200, 8, 10_000), np.int16)
        trace = Trace({"a": LayerTrace("a", (10_000,), spikes)}, np.arange(1, 201))
        while True:
            save_trace(trace, target)
""")


def stale_parts_any(target: Path) -> list:
    return list(target.parent.glob(f".{target.name}.*.part"))


def _kill_mid_write(tmp_path, kind, target) -> None:
    """Start a writer that saves ``target`` over and over; SIGKILL it while a temporary file is
    being written (retried until the kill lands mid-write, i.e. a .part is left)."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for _ in range(10):
        proc = subprocess.Popen([sys.executable, str(script), kind, str(target), str(DEMO_NETWORK)], env=env)
        try:
            deadline = time.monotonic() + 120
            while not stale_parts_any(target):
                assert proc.poll() is None and time.monotonic() < deadline
                try:  # wait on the writer itself (it loops forever), a few ms at a time
                    proc.wait(timeout=0.002)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if stale_parts_any(target):
            return
    pytest.fail("never killed the writer mid-write")


@pytest.mark.parametrize("kind", ["network", "trace"])
def test_kill_9_mid_write_keeps_the_previous_file(tmp_path, kind):
    from trace_nets import dense_net, run_trace

    from workbench.exchange.trace_io import load_trace, save_trace

    target = tmp_path / f"{kind}.npz"
    good = Network.load(DEMO_NETWORK)
    if kind == "network":
        good.save(target)
        load = Network.load
    else:
        save_trace(run_trace(dense_net(), steps=5), target)
        load = load_trace
    _kill_mid_write(tmp_path, kind, target)
    load(target)  # the previous good file, or a complete newer one: never a half file
    assert stale_parts(target), "kill -9 leaves the dead writer's .part behind"
    if kind == "network":  # the next write to the same target removes it
        good.save(target)
    else:
        save_trace(load_trace(target), target)
    assert not stale_parts_any(target)
    load(target)


def test_atomic_path_leaves_a_live_writers_part_alone(tmp_path):
    target = tmp_path / "f.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"one")
        with atomic_path(target) as tmp2:  # the same (live) process: its part is not stale
            assert tmp.exists()
            tmp2.write_bytes(b"two")
    assert target.read_bytes() == b"one" and not stale_parts_any(target)


def test_atomic_path_errors_name_the_target(tmp_path):
    with pytest.raises(OutputFileError, match="does not exist"):
        with atomic_path(tmp_path / "missing" / "x.npz"):
            pass
    with pytest.raises(OutputFileError, match="it is a folder"):
        with atomic_path(tmp_path):
            pass
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(OutputFileError, match="cannot write here"):
            with atomic_path(ro / "x.npz"):
                pass
    finally:
        ro.chmod(0o700)


def test_atomic_dir_cleans_up_after_a_killed_writer(tmp_path):
    """A raw-folder export killed outright leaves its temporary folder (and, if the kill fell
    between the two renames, the previous export as .<name>.old with no target): the next
    export to the same target removes the dead writer's folder and never loses the old one."""
    from workbench.atomic import atomic_dir

    target = tmp_path / "trace_raw"
    with atomic_dir(target) as tmp:
        (tmp / "a.bin").write_bytes(b"first")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".trace_raw.{dead.pid}-x1y2.part"
    leftover.mkdir()
    (leftover / "a.bin").write_bytes(b"half")
    assert stale_parts(target, folders=True) == [leftover]
    # killed between "target -> .old" and "tmp -> target": only .old holds the first export
    os.replace(target, tmp_path / ".trace_raw.old")
    with atomic_dir(target) as tmp:
        assert (target / "a.bin").read_bytes() == b"first"  # put back before anything else
        assert not leftover.exists()
        (tmp / "a.bin").write_bytes(b"second")
    assert (target / "a.bin").read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace_raw"]
