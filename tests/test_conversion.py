"""Issue 16: every layer converted right (engine/conversion.py), said plainly when it cannot be.

Analytic checks on hand-built networks (a linear branch into Add, a tanh layer, the membrane
readout, signed IF), the fused path against the generic one for the new neuron kinds, and the
four issue cases built in Keras (tests/conversion_nets.py) with their measured goals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.analysis.diagnosis import diagnose
from workbench.analysis.evaluate import evaluate
from workbench.engine import conversion
from workbench.engine.config import SimConfig
from workbench.engine.neurons import IF, LIF, Current, LoihiCUBA, LoihiLIF, RegularSpiking, SignedIF
from workbench.errors import ConfigError
from workbench.engine.simulator import Simulator
from workbench.models import network as nw
from workbench.models.forward import forward
from workbench.models.normalize import normalize
from workbench.models.layer import Layer

from test_fused import assert_same, generic_event_path, pair  # noqa: F401 (a fixture)


def _dense(rng, name, src, n_in, n_out, act, scale=0.5):
    return Layer(name, nw.DENSE, (n_out,), (src,), rng.normal(0, scale, (n_in, n_out)) / np.sqrt(n_in),
                 rng.normal(0, 0.05, n_out), act)


def residual_dense(seed=0):
    """input 6 -> a (relu) -> branch (linear) -> add(a, branch) relu -> out (linear)."""
    rng = np.random.default_rng(seed)
    return nw.Network("res", [
        Layer("input", nw.INPUT, (6,)),
        _dense(rng, "a", "input", 6, 8, "relu", 1.0),
        _dense(rng, "branch", "a", 8, 8, "linear"),
        Layer("add", nw.ADD, (8,), ("a", "branch"), activation="relu"),
        _dense(rng, "out", "add", 8, 3, "linear"),
    ])


def tanh_mlp(seed=0):
    rng = np.random.default_rng(seed)
    return nw.Network("tanh", [
        Layer("input", nw.INPUT, (5,)),
        _dense(rng, "h", "input", 5, 12, "tanh", 2.0),
        _dense(rng, "out", "h", 12, 3, "linear"),
    ])


X = np.random.default_rng(3).uniform(0, 1, (6, 6)).astype(np.float32)


def test_plan_roles_and_models():
    p = conversion.plan(residual_dense(), SimConfig())
    roles = {n: lp.role for n, lp in p.layers.items()}
    assert roles == {"a": "spiking", "branch": "current", "add": "spiking", "out": "readout"}
    assert isinstance(p.model("branch"), Current) and isinstance(p.model("a"), IF)
    spikes = conversion.plan(residual_dense(), SimConfig(readout="spikes"))
    assert isinstance(spikes.model("out"), SignedIF)  # a linear output that must spike: signed
    uniform = conversion.plan(residual_dense(), SimConfig(auto_neurons=False, readout="spikes"))
    assert {type(lp.model) for lp in uniform.layers.values()} == {IF}
    assert any("branch: linear activation" in w for w in uniform.warnings)


def test_linear_branch_into_add_equals_the_ann_in_the_limit():
    net = residual_dense()
    steps = 4000
    sim = Simulator(net, SimConfig(steps=steps, batch=len(X), record=()), x=X)
    sim.run(steps)
    acts = forward(net, X)
    for name in ("a", "add"):
        ls = sim.layer(name)
        mean = ls.counts * ls.out_scale / steps
        np.testing.assert_allclose(mean, np.minimum(acts[name], 1.0), atol=3.0 / steps)
    # the branch carries current: its output every step is exactly W @ y_a + b (float32)
    ls = sim.layer("branch")
    want = sim.layer("a").y @ net["branch"].weights + net["branch"].bias
    np.testing.assert_allclose(ls.y, want, rtol=1e-6, atol=1e-6)
    assert not sim.recorder.layers or True


def test_membrane_readout_equals_the_logits_scaled():
    rng = np.random.default_rng(5)
    net = nw.Network("lin", [Layer("input", nw.INPUT, (5,)), _dense(rng, "out", "input", 5, 4, "softmax")])
    sim = Simulator(net, SimConfig(steps=7, batch=len(X[:, :5]), record=None), x=X[:, :5])
    sim.run(7)
    z = X[:, :5].astype(np.float64) @ net["out"].weights + net["out"].bias
    np.testing.assert_allclose(sim.output_counts(), 7 * z, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(sim.prediction(), z.argmax(1))
    tr = sim.trace()
    assert not tr["out"].spikes.any()  # no spikes recorded; the membrane is the readout
    np.testing.assert_allclose(tr["out"].membrane[-1], 7 * z, rtol=1e-5, atol=1e-5)


def test_tanh_layer_signed_spikes_reproduce_negative_values():
    net = tanh_mlp()
    steps = 2000
    sim = Simulator(net, SimConfig(steps=steps, batch=len(X[:, :5]), record=()), x=X[:, :5])
    model = sim.layer("h").model
    assert isinstance(model, RegularSpiking) and model.rate_fn == "tanh"
    sim.run(steps)
    ls = sim.layer("h")
    want = forward(net, X[:, :5])["h"]
    assert (want < -0.1).any()
    np.testing.assert_allclose(ls.counts * ls.out_scale / steps, want, atol=2.0 / steps)
    assert (ls.counts < 0).any()


def test_signed_if_negative_after_positive_never_goes_below_zero():
    m = SignedIF(negative="after_positive")
    J = np.array([0.7, -0.4, 0.3, -0.3, 0.0], np.float32)
    state = m.init_state(1)
    total = []
    for j in J:
        s = np.zeros(1, np.float32)
        m.step(np.array([j], np.float32), 1.0, state, s, None)
        total.append(s[0])
    # v: .7, .3 (no -1: nothing sent yet), .6, .3 -> 1.0 at step 4? no: .6 - .3 = .3; then .3
    assert np.cumsum(total).min() >= 0
    sym = SignedIF()
    st = sym.init_state(1)
    s = np.zeros(1, np.float32)
    sym.step(np.array([-1.0], np.float32), 1.0, st, s, None)
    assert s[0] == -1.0 and st["v"][0] == 0.0


@pytest.mark.parametrize("cfg", [SimConfig(steps=20), SimConfig(steps=20, readout="spikes"),
                                 SimConfig(steps=20, neuron=LIF(), readout="spikes")])
def test_fused_equals_generic_for_current_signed_and_fitted_layers(cfg, generic_event_path):
    for net in (residual_dense(), tanh_mlp()):
        x = X[:3, : net.input_shape[0]]
        fast, slow = pair(net, cfg.replace(batch=3), x)
        fast.run(20)
        slow.run(20)
        assert_same(fast, slow)


# ---- the cases, built in Keras ------------------------------------------------------------
@pytest.fixture(scope="session")
def cases(tmp_path_factory):
    from conversion_nets import CASES, case

    folder = tmp_path_factory.mktemp("conversion")
    out = {}
    for name in CASES:
        net, x, y = case(name, n=64, folder=folder)
        cal = np.random.default_rng(7).uniform(0, 1, (128, *net.input_shape)).astype(np.float32)
        out[name] = (net, normalize(net, cal, 99.9), x, y)
    return out


@pytest.mark.parametrize("name", ["mlp_tanh", "residual_bn", "relu6", "mobilenet"])
def test_every_layer_r_at_least_099_with_if_at_500_steps(cases, name):
    _, net, x, y = cases[name]
    res = evaluate(net, SimConfig(steps=500, batch=len(x), record=()), x, y)
    assert min(s.r for s in res.stats) >= 0.99, [(s.name, round(s.r, 4)) for s in res.stats]
    assert res.snn_accuracy[-1] >= res.ann_accuracy - 0.04


@pytest.mark.parametrize("name", ["mlp_tanh", "residual_bn", "relu6", "mobilenet"])
def test_lif_with_default_settings_within_two_points(cases, name):
    _, net, x, y = cases[name]
    res = evaluate(net, SimConfig(neuron=LIF(), steps=500, batch=len(x), record=()), x, y)
    assert res.snn_accuracy[-1] >= res.ann_accuracy - 0.02
    assert min(s.r for s in res.stats) >= 0.99


def test_relu6_lif_with_the_synapse_no_layer_below_0998(cases):
    """The fitted LIF's reset by subtraction keeps the constant-input layer exact; the synaptic
    filter on the spike-fed layers removes the leak's bias under spiking input (r 0.997 / 0.996 /
    0.995 without it)."""
    _, net, x, y = cases["relu6"]
    res = evaluate(net, SimConfig(neuron=LIF(), steps=500, batch=len(x), record=()), x, y)
    r = {s.name: s.r for s in res.stats}
    assert r["c1"] >= 0.9995 and min(r.values()) >= 0.998, r
    off = evaluate(net, SimConfig(neuron=LIF(), steps=500, batch=len(x), record=(), synapse=0.0), x, y)
    assert min(s.r for s in off.stats) < 0.996  # the filter is what lifts them


@pytest.mark.parametrize("model", [LIF(), LoihiLIF()])
def test_relu6_lif_within_two_points_by_the_rate_inversion(cases, model):
    """The 2-point goal on the suite's 64 samples: 98.4 % (63/64, as IF) with the constant-input
    layer c1 rate-inverted; without the inversion 93.8 %: three near ties (ANN margins
    0.01-0.03) flipped by c1's rate curve at its ends (silent below J = 0.024, every step above
    0.976, mode-locked next to both). The inversion is what lifts c1's error to IF's."""
    _, net, x, y = cases["relu6"]
    on = evaluate(net, SimConfig(neuron=model, steps=500, batch=len(x), record=()), x, y)
    off = evaluate(net, SimConfig(neuron=model, steps=500, batch=len(x), record=(), rate_inversion=False), x, y)
    ref = evaluate(net, SimConfig(steps=500, batch=len(x), record=()), x, y)  # IF
    assert on.snn_accuracy[-1] >= on.ann_accuracy - 0.02
    assert on.snn_accuracy[-1] == ref.snn_accuracy[-1] > off.snn_accuracy[-1] + 0.04
    c1 = lambda res: next(s for s in res.stats if s.name == "c1")  # noqa: E731
    assert c1(on).r > c1(off).r


def test_relu6_lif_within_two_points_on_512_samples(cases):
    """The 2-point goal of issue 16 on 512 samples of the relu6 net (the fixture's 64 and 448
    more, drawn as ``conversion_nets.case`` draws them): LIF 99.0 % (IF 98.8 %; without the rate
    inversion 98.2 %, without the synapse too 95.9 %)."""
    _, net, x64, _ = cases["relu6"]
    x = np.random.default_rng(1).uniform(0, 1, (512, *net.input_shape)).astype(np.float32)
    assert np.array_equal(x[:64], x64)
    y = forward(net, x)[net.output_layer.name].reshape(512, -1).argmax(1)
    res = evaluate(net, SimConfig(neuron=LIF(), steps=500, batch=512, record=()), x, y)
    assert res.ann_accuracy == 1.0 and res.snn_accuracy[-1] >= 0.98


def test_lowpass_impulse_response_and_dc_gain():
    """synapses.lowpass is Nengo's Lowpass by zero-order hold without delay: x[t] = a x[t-1] +
    (1 - a) u[t], a = exp(-dt/tau): impulse response (1 - a) a^t, step response 1 - a^(t+1), and
    the sum of the output is the sum of the input minus a/(1-a) times the last output."""
    from workbench.engine.synapses import lowpass

    a = np.float32(math.exp(-0.001 / 0.005))
    b = np.float32(1.0) - a
    state = np.zeros(2, np.float32)
    out = []
    for t in range(40):
        J = np.array([1.0 if t == 0 else 0.0, 1.0], np.float32)
        lowpass(J, state, a, b)
        out.append(J.copy())
    out = np.array(out, np.float64)
    t = np.arange(40)
    assert out[:, 0] == pytest.approx(float(b) * float(a) ** t, rel=1e-5)
    assert out[0, 0] == b and out[1, 0] == np.float32(a * b)  # float32 arithmetic, step by step
    assert out[:, 1] == pytest.approx(1.0 - float(a) ** (t + 1), rel=1e-5)
    assert out[:, 1].sum() == pytest.approx(40 - float(a) / float(b) * out[-1, 1], rel=1e-5)


def test_filtered_constant_current_gives_the_fitted_rate():
    """A fitted LIF behind the synapse, under a constant current a: the count after T steps is
    the unfiltered T*a less the charge the filter still holds (a * a_s/(1 - a_s), 4.5 a at 5 ms),
    within one spike; the plan's defaults are 5 ms and rate units as without a filter."""
    from workbench.engine.synapses import lowpass

    dt, T = 0.001, 2000
    model, gain, _ = conversion.fit(LIF(), "relu", dt, 1.0)
    a = np.array([0.1, 0.25, 0.5, 0.75, 0.9], np.float32)
    A = np.float32(math.exp(-dt / conversion.LIF_SYNAPSE))
    state, syn, sp, n = model.init_state(a.size), np.zeros(a.size, np.float32), np.zeros(a.size, np.float32), np.zeros(a.size)
    for _ in range(T):
        J = a.copy()
        lowpass(J, syn, A, np.float32(1) - A)
        model.step(J * np.float32(gain) + np.float32(conversion.LIF_OFFSET), dt, state, sp, None)
        n += sp
    held = a * float(A) / (1 - float(A))
    assert np.abs(n - (T * a - held)).max() <= 1, n - T * a
    assert syn == pytest.approx(a, rel=1e-6)  # the filter's DC gain is 1


@pytest.mark.parametrize("cls", [LIF, LoihiLIF])
@pytest.mark.parametrize("T", [100, 500])
def test_rate_inverted_constant_current_gives_round_TJ_spikes(cls, T):
    """A fitted LIF under a constant current J (the plan's gain and offset): with the current
    rate-inverted (``rate_invert``: J -> the J' of long-run rate J) the count after T steps is
    round(T J) within one spike for J from 0.01 to 0.99; without, the dead zones (silent below
    0.024, every step above 0.976) and the mode-locked plateaus (1/2, 1/3, ...) miss by more."""
    from workbench.engine.neurons.lif import rate_invert

    dt = 0.001
    model, gain, _ = conversion.fit(cls(), "relu", dt, 1.0)
    g, off = np.float32(gain), np.float32(conversion.LIF_OFFSET)
    table = model.rate_inverse(dt, g, off)
    assert np.all(np.diff(table) >= 0) and table.size == 1025

    def count(J):
        state, sp, n = model.init_state(J.size), np.zeros(J.size, np.float32), np.zeros(J.size)
        Jc = J * g + off  # the engine's float32 gain and offset
        for _ in range(T):
            model.step(Jc, dt, state, sp, None)
            n += sp
        return n

    a = np.linspace(0.01, 0.99, 99).astype(np.float32)
    inv = a.copy()
    rate_invert(inv, table)
    want = np.round(T * a.astype(np.float64))
    assert np.abs(count(inv) - want).max() <= 1, count(inv) - want
    plain = count(a)
    assert plain[0] == 0 and plain[-1] == T  # the dead zones: 0.01 silent, 0.99 every step
    assert np.abs(plain - want).max() == (2 if T == 100 else 10)
    kept = np.array([-1.0, 0.0, 1.0, 1.5], np.float32)  # silent, or one spike a step: as they are
    rate_invert(kept, table)
    assert kept.tolist() == [-1.0, 0.0, 1.0, 1.5]
    with pytest.raises(ConfigError, match="reset_mode"):
        cls().rate_inverse(dt, g, off)  # Nengo's LIF: no table


def test_plan_rate_inverts_fitted_lif_layers_under_constant_current(cases):
    _, net, x, _ = cases["relu6"]
    inv = lambda cfg: {n: lp.rate_inverted for n, lp in conversion.plan(net, cfg).layers.items()}  # noqa: E731
    assert inv(SimConfig(neuron=LIF())) == {"c1": True, "c2": False, "fc": False, "out": False}
    assert inv(SimConfig(neuron=LoihiLIF()))["c1"]
    assert not any(inv(SimConfig(neuron=LIF(), rate_inversion=False)).values())
    assert not any(inv(SimConfig(neuron=LIF(), encoder="poisson")).values())  # no constant current
    assert not any(inv(SimConfig()).values())  # IF
    assert not any(inv(SimConfig(neuron=LIF(tau_ref=0.001))).values())  # not fitted: as given
    assert not any(inv(SimConfig(neuron=LIF(), rate_scale=20.0)).values())
    lines = conversion.plan(net, SimConfig(neuron=LIF())).describe()
    assert "rate-inverted" in lines[0] and not any("rate-inverted" in line for line in lines[1:])
    sim = Simulator(net, SimConfig(neuron=LIF(), batch=2), x=x[:2])
    assert sim.metadata()["models"]["c1"]["rate_inverted"] and sim.metadata()["rate_inversion"]
    with pytest.raises(ConfigError, match="rate_inversion"):
        SimConfig(rate_inversion="no")


def test_cli_shows_the_rate_inversion_and_turns_it_off(capsys):
    from workbench.cli.main import main

    common = ["run", "--demo", "--neuron", "lif", "--steps", "5", "--samples", "4", "--no-progress"]
    assert main(common) == 0
    out = capsys.readouterr().out
    assert "[spiking, current x20.5042, rate-inverted]" in out and out.count("rate-inverted") == 1
    assert main([*common, "--no-rate-inversion"]) == 0
    assert "rate-inverted" not in capsys.readouterr().out


def test_plan_puts_the_synapse_on_fitted_lif_layers_fed_by_spikes(cases):
    _, net, x, _ = cases["relu6"]
    syn = lambda cfg: {n: lp.synapse for n, lp in conversion.plan(net, cfg).layers.items()}  # noqa: E731
    assert syn(SimConfig(neuron=LIF())) == {"c1": 0.0, "c2": 0.005, "fc": 0.005, "out": 0.0}  # c1: constant input
    assert syn(SimConfig(neuron=LIF(), encoder="poisson")) == {"c1": 0.005, "c2": 0.005, "fc": 0.005, "out": 0.0}
    assert syn(SimConfig(neuron=LoihiLIF(), synapse=0.01))["c2"] == 0.01
    assert set(syn(SimConfig(neuron=LIF(), synapse=0)).values()) == {0.0}
    assert set(syn(SimConfig()).values()) == {0.0}  # IF: no filter
    assert set(syn(SimConfig(neuron=LIF(tau_ref=0.001))).values()) == {0.0}  # not fitted: as given
    assert "synapse 5 ms" in "\n".join(conversion.plan(net, SimConfig(neuron=LIF())).describe())
    with pytest.raises(ConfigError, match="synapse"):
        SimConfig(synapse=-1.0)


def test_fitted_lif_count_is_the_leaky_integral_of_its_current():
    """reset_mode=subtract: count = (1 - exp(-dt/tau_rc)) * sum_t (J_t - v_t) - (v_T - v_0), exactly
    (docs/neurons.md); with the plan's gain and offset a constant J gives T*J spikes within 1."""
    from workbench.engine.neurons.lif import lif_step

    dt, tau = 0.001, 0.02
    rng = np.random.default_rng(3)
    J = rng.uniform(-5, 30, (400, 6)).astype(np.float32)
    v, ref, s = np.zeros(6), np.zeros(6), np.zeros(6, np.float32)
    count, integral = np.zeros(6), np.zeros(6)
    for t in range(400):
        integral += J[t] - v
        lif_step(J[t], dt, tau, 0.0, -1e6, True, v, ref, s, True)
        count += s
    assert count == pytest.approx(-math.expm1(-dt / tau) * integral - v, abs=1e-9)
    model, gain, _ = conversion.fit(LIF(), "relu", dt, 1.0)
    assert model.reset_mode == "subtract" and gain == pytest.approx(-1.0 / math.expm1(-dt / tau))
    # between the rheobase (g a + 0.5 > 1: a > 0.024) and the top (a ~0.97 already fires every
    # step) exact within a spike from 0.1 on; near the rheobase the mean membrane is above 0.5
    a = np.array([0.0, 0.013, 0.05, 0.1, 0.37, 0.5, 0.81, 0.9], np.float32)
    Jc = (a * gain + conversion.LIF_OFFSET).astype(np.float32)
    state, sp, n = model.init_state(a.size), np.zeros(a.size, np.float32), np.zeros(a.size)
    for _ in range(2000):
        model.step(Jc, dt, state, sp, None)
        n += sp
    assert n[:3].tolist() == [0, 0, 91] and np.abs(n[3:] - 2000 * a[3:]).max() <= 1, n - 2000 * a
    assert model.output_scale(dt) / gain == pytest.approx(1.0)  # each spike worth 1


def test_residual_branch_carries_current_and_lif_is_not_silent(cases):
    _, net, x, y = cases["residual_bn"]
    sim = Simulator(net, SimConfig(neuron=LIF(), batch=len(x)), x=x)
    assert sim.plan.layers["branch"].role == "current"
    lif = sim.layer("stem").model
    step_gain = 1.0 / (1.0 - math.exp(-0.001 / 0.02))  # 20.504...: one spike a step at J = 1
    assert lif.reset_mode == "subtract" and lif.tau_ref == 0.0 and lif.amplitude == pytest.approx(step_gain * 0.001)
    assert sim.layer("stem").gain == np.float32(step_gain) and sim.layer("stem").offset == np.float32(0.5)


def test_loihi_cuba_deep_net_is_not_silent(cases):
    _, net, x, y = cases["mobilenet"]
    res = evaluate(net, SimConfig(neuron=LoihiCUBA(), steps=200, batch=len(x), record=()), x, y)
    assert max(l.silent for l in res.layers if l.role == "spiking") < 0.9
    assert res.snn_accuracy[-1] >= res.ann_accuracy - 0.1


def test_uniform_tanh_is_diagnosed_as_negative_values_lost(cases):
    _, net, x, y = cases["mlp_tanh"]
    d = diagnose(net, SimConfig(auto_neurons=False, steps=100, batch=len(x), record=()), x, y)
    assert "negative_lost" in d.causes("hidden")
    assert any("hidden: tanh activation" in w for w in d.result.warnings)
    assert not any(f.cause == "saturated" for f in d.findings)


def test_relu6_diagnosis_never_recommends_what_its_numbers_contradict(cases):
    _, net, x, y = cases["relu6"]
    d = diagnose(net, SimConfig(steps=100, batch=len(x), record=()), x, y)
    for f in d.findings:
        if f.cause == "saturated":
            assert f.evidence["ann_over"] >= 0.02
        assert "raise" not in f.suggestion or f.cause != "cap"


def test_run_and_diagnose_report_the_same_r(cases):
    _, net, x, y = cases["residual_bn"]
    for readout in ("membrane", "spikes"):
        res = evaluate(net, SimConfig(steps=60, batch=len(x), record=(), readout=readout), x, y)
        by_stats = {s.name: s.r for s in res.stats}
        by_layers = {l.name: l.r for l in res.layers if l.name in by_stats}
        assert by_stats == pytest.approx(by_layers, rel=1e-9)


def test_wrapper_whose_rate_function_differs_is_warned(cases):
    _, net, x, y = cases["relu6"]
    p = conversion.plan(net, SimConfig(neuron=RegularSpiking(rate_fn="tanh")))
    assert any("c1: relu activation but regular_spiking uses rate_fn=tanh" in w for w in p.warnings)
    fitted = conversion.plan(net, SimConfig(neuron=RegularSpiking()))
    assert fitted.warnings == () and fitted.model("c1").rate_fn == "relu"
    res = evaluate(net, SimConfig(neuron=RegularSpiking(), steps=300, batch=len(x), record=()), x, y)
    # fitted: no layer silent (Nengo's defaults fire 0.001 spikes a step); the wrapper applies
    # relu to each step's current, not to its mean, so it stays well below IF (docs/conversion.md)
    assert max(l.silent for l in res.layers if l.role == "spiking") < 0.6
    assert res.snn_accuracy[-1] >= 0.6


def test_warnings_and_layer_models_reach_every_command(cases, tmp_path, capsys):
    from conversion_nets import case
    from workbench.cli.main import main

    net, x, y = case("mlp_tanh", n=16, folder=tmp_path)
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=y)
    model = str(tmp_path / "mlp_tanh.keras")
    common = ["--data", str(data), "--uniform", "--steps", "10", "--no-progress"]
    want = "warning   hidden: tanh activation (negative values) on if, which rectifies"
    for argv in (["run", model, *common], ["evaluate", model, *common, "--no-plot", "--out", str(tmp_path / "e")],
                 ["sweep", model, *common, "--serial", "--no-plot", "--grid", "steps=5", "--out", str(tmp_path / "s")]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert want in out, argv[0]
    assert main(["diagnose", model, *common]) == 0
    out = capsys.readouterr().out
    assert "warning: hidden: tanh activation" in out and "negative_lost" in out
    assert "layer     hidden: if(threshold=1.0, reset=subtract) [spiking]" in out
    assert main(["run", model, "--data", str(data), "--steps", "10", "--no-progress",
                 "--layer", "hidden=signed_if"]) == 0
    out = capsys.readouterr().out
    assert "layer     hidden: signed_if(threshold=1.0, reset=subtract, negative=always) [spiking] (override)" in out
    assert "layer     logits: current() [readout]" in out


def test_trace_playback_r_equals_the_live_r_for_a_membrane_readout():
    from workbench.analysis.layer_stats import simulator_stats
    from workbench.analysis.trace_playback import TracePlayback

    rng = np.random.default_rng(9)
    net = nw.Network("sm", [Layer("input", nw.INPUT, (6,)), _dense(rng, "h", "input", 6, 8, "relu", 1.0),
                            _dense(rng, "out", "h", 8, 4, "softmax")])
    sim = Simulator(net, SimConfig(steps=30, batch=len(X), record=None), x=X)
    sim.run(30)
    acts = forward(net, X)
    live = {s.name: s.r for s in simulator_stats(sim, acts)}
    play = TracePlayback(sim.trace(ann=acts), network=net)
    snap = play.snapshot(play.position_of(30))
    got = {s.name: s.r for s in snap.stats}
    assert got == pytest.approx(live, rel=1e-5)
    assert sim.plan.layers["out"].role == "readout" and live["out"] > 0.99
