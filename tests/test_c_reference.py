"""The reference C implementation (workbench/bundled/c_reference/snn_ref.c), compiled with the system C
compiler, reads our exported parameters and writes a trace whose spikes equal ours."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from trace_nets import conv_net, dense_net, inputs

from workbench.engine import synapses
from workbench.analysis.compare import compare_traces, format_comparison
from workbench.engine.config import SimConfig
from workbench.exchange.export_params import export_params
from workbench.engine.neurons import IF
from workbench.engine.simulator import Simulator
from workbench.exchange.trace_io import load_trace
from workbench.bundled import C_REFERENCE_DIR
from workbench.models.loading import DEMO_NETWORK
from workbench.models.network import Network

SOURCE = C_REFERENCE_DIR / "snn_ref.c"
DEMO = DEMO_NETWORK
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc or clang) on PATH")


@pytest.fixture(scope="module")
def snn_ref(tmp_path_factory):
    exe = tmp_path_factory.mktemp("cref") / "snn_ref"
    subprocess.run([CC, "-O2", "-std=c99", "-o", str(exe), str(SOURCE), "-lm"], check=True)
    return exe


def run_both(snn_ref, tmp_path, net, cfg, steps, batch=2):
    x = inputs(net, batch)
    sim = Simulator(net, cfg.replace(steps=steps, batch=batch), x)
    sim.run(steps)
    export_params(net, cfg, tmp_path / "params", "raw")
    x.astype("<f4").tofile(tmp_path / "x.bin")
    proc = subprocess.run([str(snn_ref), str(tmp_path / "params"), str(tmp_path / "x.bin"), str(steps),
                           str(tmp_path / "c_trace")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return sim.trace(), load_trace(tmp_path / "c_trace")


@pytest.mark.parametrize("reset", ["subtract", "zero", "modulo"])
def test_c_reference_bit_exact_on_event_path(snn_ref, tmp_path, monkeypatch, reset):
    # Our dense BLAS path sums in another order; on the event path the sums are the same
    # float32 operations in the same order, so membranes match bit for bit as well.
    monkeypatch.setattr(synapses, "DENSE_BLAS_DENSITY", 2.0)
    monkeypatch.setattr(synapses, "CONV_BLAS_DENSITY", 2.0, raising=False)
    ours, theirs = run_both(snn_ref, tmp_path, conv_net(), SimConfig(auto_neurons=False, readout="spikes", neuron=IF(threshold=0.8, reset=reset)), 40)
    c = compare_traces(ours, theirs, membrane_atol=0.0, names=("ours", "C"))
    assert c.equal, format_comparison(c)
    assert [lc.layer for lc in c.layers] == ["conv1", "pool2", "conv2", "fc1", "out"]
    assert all(lc.spikes_a > 0 for lc in c.layers)


def test_c_reference_default_settings(snn_ref, tmp_path):
    extra = {"rate_scale": 2.0} if "rate_scale" in SimConfig.__dataclass_fields__ else {}
    for i, (net, cfg) in enumerate([(conv_net(seed=3), SimConfig(auto_neurons=False, readout="spikes")), (dense_net(), SimConfig(auto_neurons=False, readout="spikes", **extra))]):
        (tmp_path / str(i)).mkdir()
        ours, theirs = run_both(snn_ref, tmp_path / str(i), net, cfg, 50)
        c = compare_traces(ours, theirs, membrane_atol=1e-4, names=("ours", "C"))
        assert c.equal, format_comparison(c)


@pytest.mark.skipif(not DEMO.exists(), reason="demo network workbench/bundled/demo/digits_cnn.network.npz not built yet")
def test_c_reference_on_demo_network(snn_ref, tmp_path):
    net = Network.load(DEMO)
    ours, theirs = run_both(snn_ref, tmp_path, net, SimConfig(auto_neurons=False, readout="spikes"), 30)
    c = compare_traces(ours, theirs, membrane_atol=1e-4, names=("ours", "C"))
    assert sum(lc.spike_mismatches for lc in c.layers) == 0, format_comparison(c)


def test_c_reference_refuses_what_it_cannot_run(snn_ref, tmp_path):
    export_params(dense_net(), SimConfig(auto_neurons=False, readout="spikes", encoder="poisson"), tmp_path / "p", "raw")
    np.zeros(6, "<f4").tofile(tmp_path / "x.bin")
    proc = subprocess.run([str(snn_ref), str(tmp_path / "p"), str(tmp_path / "x.bin"), "5", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "constant encoder" in proc.stderr


def test_c_reference_runs_the_neuron_remedies(snn_ref, tmp_path, monkeypatch):
    """The half-threshold start and burst spikes travel in the manifest (v_init=, burst=) and the
    C reference runs them: the same spikes and membranes."""
    monkeypatch.setattr(synapses, "DENSE_BLAS_DENSITY", 2.0)
    monkeypatch.setattr(synapses, "CONV_BLAS_DENSITY", 2.0, raising=False)
    cfg = SimConfig(auto_neurons=False, readout="spikes", neuron=IF(threshold=0.5, v_init=0.5, burst=3))  # IF only
    ours, theirs = run_both(snn_ref, tmp_path, conv_net(), cfg, 30)
    c = compare_traces(ours, theirs, membrane_atol=0.0, names=("ours", "C"))
    assert c.equal, format_comparison(c)
    assert max(int(ours[name].spikes.max()) for name in ours.layers) > 1  # some neuron bursts


def test_c_reference_refuses_lateral_max_pooling(snn_ref, tmp_path):
    net = conv_net()
    for layer in net.layers:
        if layer.kind == "max_pool2d":
            layer.config["max_pool"] = "lateral"
    export_params(net, SimConfig(), tmp_path / "p", "raw")
    x = inputs(net, 1)
    x.astype("<f4").tofile(tmp_path / "x.bin")
    proc = subprocess.run([str(snn_ref), str(tmp_path / "p"), str(tmp_path / "x.bin"), "3", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "max pooling by spike count" in proc.stderr
