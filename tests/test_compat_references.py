"""The options that make a run match SNN Toolbox 0.6, Nengo 4.1 and Lava 0.10 step for step.

Expected values are worked out here from the references' published equations (the files named
in docs/compatibility.md), not taken from the engine's own output.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from workbench.cli.main import main
from workbench.engine.config import SimConfig
from workbench.engine.encoders import input_train
from workbench.engine.neurons import make_neuron
from workbench.engine.neurons.loihi_cuba import quantize_weights, quantize_weights_lava
from workbench.engine.neurons.spiking import rate_value
from workbench.engine.simulator import Simulator
from workbench.engine.trace import LayerTrace, Trace
from workbench.errors import ConfigError, DataFileError
from workbench.models import network as nw
from workbench.models.data import load_samples
from workbench.models.forward import forward
from workbench.models.normalize import load_factors, normalize


# ---- SNN Toolbox: data files ------------------------------------------------------------------
def test_single_array_npz_is_read_as_samples(tmp_path):
    x = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 1) / 20
    np.savez(tmp_path / "x_test.npz", x)  # numpy's key: arr_0, as SNN Toolbox writes it
    samples = load_samples(tmp_path / "x_test.npz", (3, 3, 1))
    assert np.array_equal(samples.x, x) and samples.y is None


def test_snntoolbox_folder_gives_test_samples_labels_and_norm_data(tmp_path):
    rng = np.random.default_rng(1)
    x_test, x_norm = rng.random((4, 5)).astype(np.float32), rng.random((3, 5)).astype(np.float32)
    labels = np.array([2, 0, 1, 2])
    np.savez(tmp_path / "x_test.npz", x_test)
    np.savez(tmp_path / "y_test.npz", np.eye(3, dtype=np.float32)[labels])  # one-hot, as SNN Toolbox's
    np.savez(tmp_path / "x_norm.npz", x_norm)
    test = load_samples(tmp_path, (5,), n_classes=3)
    assert np.array_equal(test.x, x_test) and test.y.tolist() == [2, 0, 1, 2]
    calib = load_samples(tmp_path, (5,), calibration=True)
    assert np.array_equal(calib.x, x_norm) and calib.y is None


def test_folder_without_snntoolbox_files_names_what_it_needs(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros((1, 5)))
    with pytest.raises(DataFileError, match="needs 'x_test.npz'.*holds other.npz"):
        load_samples(tmp_path, (5,))


# ---- SNN Toolbox: normalization rule and file ---------------------------------------------------
def _pool_net():
    rng = np.random.default_rng(4)
    L = nw.Layer
    return nw.Network("pooled", [
        L("input", nw.INPUT, (4, 4, 1)),
        L("c1", nw.CONV2D, (4, 4, 2), ("input",), rng.normal(0, 0.6, (3, 3, 1, 2)).astype(np.float32),
          rng.normal(0, 0.1, 2).astype(np.float32), "relu", config={"strides": [1, 1], "padding": "same"}),
        L("ap", nw.AVG_POOL2D, (2, 2, 2), ("c1",),
          config={"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}),
        L("flat", nw.FLATTEN, (8,), ("ap",)),
        L("out", nw.DENSE, (3,), ("flat",), rng.normal(0, 0.5, (8, 3)).astype(np.float32),
          rng.normal(0, 0.1, 3).astype(np.float32), "softmax"),
    ])


def test_snntoolbox_rule_pools_pass_their_input_factor_and_softmax_gets_one():
    net = _pool_net()
    x = np.random.default_rng(5).random((20, 4, 4, 1)).astype(np.float32)
    a = forward(net, x)["c1"]
    lam = float(np.percentile(a[a != 0], 99.0))  # SNN Toolbox: percentile of the non-zero activations
    out = normalize(net, x, 99.0, rule="snntoolbox")
    assert out.scales == {"input": 1.0, "c1": lam, "ap": lam, "flat": lam, "out": 1.0}
    c1, c1n = net["c1"], out["c1"]
    np.testing.assert_allclose(c1n.weights, c1.weights / lam, rtol=1e-6)
    np.testing.assert_allclose(c1n.bias, c1.bias / lam, rtol=1e-6)
    assert out["ap"].config["input_scales"] == [1.0]
    np.testing.assert_allclose(out["out"].weights, net["out"].weights * lam, rtol=1e-6)
    np.testing.assert_array_equal(out["out"].bias, net["out"].bias)
    assert out.normalization["method"] == "snntoolbox-0.6"
    ours = normalize(net, x, 99.0)
    assert ours.scales["ap"] != lam  # the workbench's rule gives the pool a factor of its own


def test_snntoolbox_normalization_file_replaces_the_percentiles(tmp_path):
    path = tmp_path / "99.9.json"
    path.write_text(json.dumps({"input": 1, "c1": 2.5, "out": 7.0}))  # the file keeps softmax's factor
    net = _pool_net()
    out = normalize(net, None, factors=load_factors(path))
    assert out.scales["c1"] == 2.5 and out.scales["ap"] == 2.5 and out.scales["out"] == 1.0
    np.testing.assert_allclose(out["c1"].weights, net["c1"].weights / 2.5, rtol=1e-6)
    np.testing.assert_allclose(out["out"].weights, net["out"].weights * 2.5, rtol=1e-6)
    path.write_text(json.dumps({"input": 1, "out": 7.0}))
    with pytest.raises(DataFileError, match="no factor for layer 'c1'"):
        normalize(net, None, factors=load_factors(path))
    path.write_text(json.dumps({"c1": -1}))
    with pytest.raises(DataFileError, match="99.9.json: factor of layer 'c1'"):
        load_factors(path)


# ---- SNN Toolbox INIsim: sampled softmax output ------------------------------------------------
def test_sampled_softmax_output_spikes_where_uniform_is_below_softmax_and_resets_to_zero():
    w = np.array([[0.75, -0.25, 0.5], [0.125, 0.5, -0.375]], np.float32)  # dyadic: exact sums
    b = np.array([0.0625, 0.0, -0.125], np.float32)
    net = nw.Network("soft", [nw.Layer("in", nw.INPUT, (2,)),
                              nw.Layer("out", nw.DENSE, (3,), ("in",), w, b, "softmax")])
    x = np.array([[1.0, 0.5], [0.25, 1.0]], np.float32)
    sim = Simulator(net, SimConfig(softmax_output="sampled", seed=7, batch=2), x)
    assert sim.layer("out").model.name == "inisim_softmax" and sim.fused_reason is not None
    J = (x @ w + b).astype(np.float32)
    rng = np.random.default_rng(7)  # the simulator's generator: the constant encoder draws nothing
    v = np.zeros((2, 3), np.float32)
    for _ in range(4):
        v = v + J  # dt = 1
        z = v.astype(np.float64)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        fired = rng.random(6).reshape(2, 3) <= p
        v = np.where(fired, np.float32(0), v)
        sim.step()
        assert np.array_equal(sim.layer("out").spikes, fired.astype(np.float32))
        assert np.array_equal(sim.layer("out").membrane(), v)


# ---- Nengo ---------------------------------------------------------------------------------------
def test_tanh_rate_follows_nengos_order_of_operations():
    tau_ref = 0.0025
    got = rate_value(2, -2.0, tau_ref, 0.02)
    assert got == (1.0 / tau_ref) * math.tanh(-2.0)  # nengo/neurons.py Tanh.step
    assert got != math.tanh(-2.0) / tau_ref  # the old order: one ulp away


def _nengo_spiking_relu(J, dt, steps):
    """Nengo 4.1 SpikingRectifiedLinear.step in float64: voltage += max(J, 0)*dt; floor; subtract."""
    voltage, out = 0.0, []
    for _ in range(steps):
        voltage += max(J, 0.0) * dt
        n = math.floor(voltage)
        out.append(n)
        voltage -= n
    return out, voltage


def test_spiking_rectified_linear_and_float64_match_nengo_in_float64():
    w = np.array([[0.1], [0.2], [0.3], [0.7]], np.float32)
    net = nw.Network("sum", [nw.Layer("in", nw.INPUT, (4,)),
                             nw.Layer("n", nw.DENSE, (1,), ("in",), w, np.zeros(1, np.float32), "relu")])
    x = np.ones((1, 4), np.float32)
    J64 = float(sum(float(v) for v in w[:, 0]))  # Nengo sums float64 values
    model = make_neuron("spiking_rectified_linear")
    steps, dt = 2000, 0.001
    expected, v_end = _nengo_spiking_relu(J64, dt, steps)
    sim = Simulator(net, SimConfig(neuron=model, float64=True, steps=steps, auto_neurons=False, readout="spikes"), x)
    sim.run(steps)
    assert sim.layer("n").J[0, 0] == J64
    assert sim.trace()["n"].spikes[:, 0, 0].tolist() == expected
    assert sim.layer("n").membrane()[0, 0] == v_end
    f32 = Simulator(net, SimConfig(neuron=model, steps=steps, auto_neurons=False, readout="spikes"), x)
    f32.run(steps)
    assert float(f32.layer("n").J[0, 0]) != J64  # float32 currents: what the option is for
    assert float(f32.layer("n").membrane()[0, 0]) != v_end


# ---- Lava ---------------------------------------------------------------------------------------
def test_lava_dense_drops_the_lowest_bit_of_mixed_sign_weights():
    ints, exp, mode = quantize_weights_lava(np.array([-153.0, 109.0, -25.0]), 1.0)
    # Lava: clip to [-256, 255], then (w >> 1) << 1 (truncate_weights, mixed sign, 8 bits)
    assert (ints.tolist(), exp, mode) == ([-154, 108, -26], 0, "mixed")
    ints, exp, mode = quantize_weights_lava(np.array([3.0, 200.0, 255.0]), 1.0)
    assert (ints.tolist(), exp, mode) == ([3, 200, 255], 0, "excitatory")  # one sign: no bit dropped
    ints, exp, mode = quantize_weights_lava(np.array([-511.0, 300.0]), 1.0)
    assert (ints.tolist(), exp, mode) == ([-256, 150], 1, "mixed")  # -255.5 -> -256, 150 stays
    mant, exp = quantize_weights(np.array([-153.0, 109.0, -25.0]), 1.0)
    assert (mant * 2**exp).tolist() == [-152, 108, -24]  # ours: nearest on an 8-bit mantissa


def _lava_lif(a_seq, du, dv, vth, bias=0):
    """Lava 0.10 PyLifModelBitAcc, one neuron: decays with sign-magnitude truncation, a << 6."""
    def decay(x, d):
        return int(math.copysign((abs(x) * (4096 - d)) >> 12, x)) if x else 0

    u = v = 0
    out = []
    for a in a_seq:
        u = decay(u, du + 1) + (a << 6)
        v = decay(v, dv) + u + bias
        s = v > (vth << 6)
        if s:
            v = 0
        out.append(int(s))
    return out


@pytest.mark.parametrize("delay", [0, 1])
def test_lava_rule_delay_and_recorded_input_replay_a_lava_run(delay):
    vth = 10  # Lava's LIF defaults: du=0, dv=0, vth=10
    w = (np.array([[-153.0], [109.0]]) / vth).astype(np.float32)
    net = nw.Network("lava", [nw.Layer("in", nw.INPUT, (2,)),
                              nw.Layer("n", nw.DENSE, (1,), ("in",), w, np.zeros(1, np.float32), "relu")])
    s = np.array([[0, 1], [1, 1], [0, 1], [0, 1], [1, 0], [0, 1], [0, 1], [0, 1]], np.float32)
    model = make_neuron("loihi_cuba", du=0, dv=0, vth=vth, weight_rounding="lava")
    sim = Simulator(net, SimConfig(neuron=model, encoder="recorded", synaptic_delay=delay, steps=len(s)))
    sim.set_input_spikes(s[:, None, :])
    sim.run(len(s))
    W = np.array([-154, 108])  # Dense's truncated weights, weight_exp 0
    a = [int(row @ W) for row in s]
    if delay:
        a = [0] + a[:-1]  # Dense sends the previous step's accumulation
    assert sim.trace()["n"].spikes[:, 0, 0].tolist() == _lava_lif(a, 0, 0, vth)
    assert sum(_lava_lif(a, 0, 0, vth)) > 0
    with pytest.raises(ConfigError, match="has 8 steps; step 9"):
        sim.step()


def test_input_train_reads_the_trace_input_layer_and_refuses_gaps():
    spikes = np.zeros((3, 1, 2), np.int16)
    spikes[1, 0, 1] = 1
    tr = Trace({"in": LayerTrace("in", (2,), spikes)}, steps=np.array([1, 2, 3]))
    assert input_train(tr, "in", (2,))[:, 0].tolist() == [[0, 0], [0, 1], [0, 0]]
    gap = Trace({"x": LayerTrace("x", (2,), spikes)}, steps=np.array([2, 3, 4]))
    with pytest.raises(DataFileError, match="steps must be 1..T"):
        input_train(gap, "in", (2,))


def test_writing_into_the_simulator_input_in_place_is_refused():
    net = nw.Network("one", [nw.Layer("in", nw.INPUT, (1,)),
                             nw.Layer("n", nw.DENSE, (1,), ("in",), np.ones((1, 1), np.float32),
                                      np.zeros(1, np.float32), "relu")])
    sim = Simulator(net, SimConfig(), np.full((1, 1), 0.3, np.float32))
    with pytest.raises(ValueError, match="read-only"):
        sim.x[0, 0] = 0.9


def test_options_are_refused_with_the_field_named():
    for field, value in (("synaptic_delay", 2), ("softmax_output", "max"), ("float64", "yes")):
        with pytest.raises(ConfigError, match=field):
            SimConfig(**{field: value})
    with pytest.raises(ConfigError, match="weight_rounding"):
        make_neuron("loihi_cuba", weight_rounding="floor")
    with pytest.raises(ConfigError, match="rate_fn"):
        make_neuron("spiking_rectified_linear", rate_fn="tanh")


# ---- the command line -------------------------------------------------------------------------
def test_cli_replays_a_recorded_input_with_lava_options(tmp_path, capsys):
    from workbench.exchange.trace_io import save_trace

    vth = 10
    net = nw.Network("lava", [nw.Layer("in", nw.INPUT, (2,)),
                              nw.Layer("n", nw.DENSE, (1,), ("in",),
                                       (np.array([[-153.0], [109.0]]) / vth).astype(np.float32),
                                       np.zeros(1, np.float32), "relu")])
    net.save(tmp_path / "net.npz")
    s = np.array([[0, 1]] * 6, np.int16)[:, None, :]
    save_trace(Trace({"in": LayerTrace("in", (2,), s)}, steps=np.arange(1, 7)), tmp_path / "in.npz")
    code = main(["run", str(tmp_path / "net.npz"), "--normalize", "0", "--input", "recorded",
                 "--input-spikes", str(tmp_path / "in.npz"), "--neuron", "loihi_cuba", "--param", "du=0",
                 "--param", f"vth={vth}", "--param", "weight_rounding=lava", "--synaptic-delay", "1",
                 "--steps", "6", "--record-trace", str(tmp_path / "out.npz"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    from workbench.exchange.trace_io import load_trace

    got = load_trace(tmp_path / "out.npz")["n"].spikes[:, 0, 0].tolist()
    assert got == _lava_lif([0] + [108] * 5, 0, 0, vth)


def test_cli_snntoolbox_rule_and_file(tmp_path, capsys):
    factors = tmp_path / "99.json"
    factors.write_text(json.dumps({"input": 1.0, "conv1": 3.0, "conv2": 4.0, "conv3": 5.0, "fc1": 6.0,
                                   "output": 9.0}))
    code = main(["run", "--demo", "--samples", "4", "--batch", "4", "--steps", "5", "--no-progress",
                 "--normalization-file", str(factors), "--softmax-output", "sampled"])
    out = capsys.readouterr().out
    assert code == 0 and "SNN Toolbox's rule (factors from its file)" in out


# ---- the window's settings ----------------------------------------------------------------------
def test_settings_panel_offers_the_reference_options(qtbot):
    from PyQt6.QtWidgets import QComboBox

    from workbench.views.qt_settings import QtSettingsPanel

    panel = QtSettingsPanel()
    qtbot.addWidget(panel)
    panel.float64.setChecked(True)
    panel.synaptic_delay.setValue(1)
    panel.softmax_output.setCurrentText("sampled")
    panel.neuron_type.setCurrentText("loihi_cuba")
    rounding = panel.param_widget("weight_rounding")
    assert isinstance(rounding, QComboBox) and rounding.findText("lava") >= 0
    rounding.setCurrentText("lava")
    config = panel.build()
    assert (config.float64, config.synaptic_delay, config.softmax_output) == (True, 1, "sampled")
    assert config.neuron.weight_rounding == "lava"
    assert panel.neuron_type.findText("spiking_rectified_linear") >= 0
    assert panel.encoder.findText("recorded") >= 0  # File > Replay input from trace… chooses its file


def test_lava_rounding_exports_dense_integers_and_floors_negative_exponents(tmp_path):
    from workbench.exchange.export_params import export_params

    vth = 1
    w = np.array([[0.75], [-0.5], [0.25]], np.float32)  # mixed; fits -256..255 at E = -6
    net = nw.Network("small", [nw.Layer("in", nw.INPUT, (3,)),
                               nw.Layer("n", nw.DENSE, (1,), ("in",), w, np.zeros(1, np.float32), "relu")])
    model = make_neuron("loihi_cuba", vth=vth, weight_rounding="lava")
    ints, exp, _ = quantize_weights_lava(w, vth)
    assert exp == -6 and ints[:, 0].tolist() == [48, -32, 16]  # 0.75*64 = 48: even, nothing dropped
    s = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1]], np.float32)
    sim = Simulator(net, SimConfig(neuron=model, encoder="recorded", steps=3))
    sim.set_input_spikes(s[:, None, :])
    us = []
    for _ in range(3):
        sim.step()
        us.append(int(sim.layer("n").state["u"][0]))
    # Dense: a = (sum W*s) >> 6 (a floor); LIF (du=4095): u = a << 6 each step
    assert us == [(64 >> 6) << 6, (-32 >> 6) << 6, (32 >> 6) << 6] == [64, -64, 0]  # -0.5 floors to -1
    path = tmp_path / "p.npz"
    export_params(net, SimConfig(neuron=model), path, "npz")
    with np.load(path) as f:
        key = next(k for k in f.files if k.endswith("weight_mant"))
        assert f[key].ravel().tolist() == [48, -32, 16]


def test_snntoolbox_rule_refuses_a_concatenate_of_different_factors():
    from tests.test_normalize import graph_network

    net = graph_network()
    x = np.random.default_rng(2).random((16, 6, 6, 2)).astype(np.float32)
    with pytest.raises(ConfigError, match="layer 'cat' .*different factors"):
        normalize(net, x, 99.0, rule="snntoolbox")
    with pytest.raises(ConfigError, match="normalize rule"):
        normalize(net, x, 99.0, rule="snn_toolbox")
