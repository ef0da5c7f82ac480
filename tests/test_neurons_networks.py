"""Each model's numba kernel inside the Simulator against a slow numpy reference of the published
equations (written out here independently), on random two-layer networks: spike trains equal."""

import math

import numpy as np
import pytest

from workbench.engine.config import SimConfig
from workbench.engine.neurons import make_neuron
from workbench.engine.simulator import Simulator
from workbench.models import network as nw

B, NIN, N1, N2, T = 3, 8, 12, 5, 300


def make_net(rng, w1, b1, w2, b2):
    layers = [
        nw.Layer("in", nw.INPUT, (NIN,)),
        nw.Layer("d1", nw.DENSE, (N1,), ("in",), weights=w1, bias=b1),
        nw.Layer("d2", nw.DENSE, (N2,), ("d1",), weights=w2, bias=b2),
    ]
    return nw.Network("rand", layers)


# ---- numpy references: one step, arrays of all neurons ------------------------------------
def ref_lif(J, dt, s, tau_rc, tau_ref, min_v, interpolate):
    J = J.astype(np.float64)
    s["ref"] -= dt
    delta = (dt - s["ref"]).clip(0, dt)
    s["v"] -= (J - s["v"]) * np.expm1(-delta / tau_rc)
    spiked = s["v"] > 1
    if interpolate:
        t_spike = dt + tau_rc * np.log1p(-(s["v"][spiked] - 1) / (J[spiked] - 1))
    else:
        t_spike = dt
    s["v"][s["v"] < min_v] = min_v
    s["v"][spiked] = 0
    s["ref"][spiked] = tau_ref + t_spike
    return spiked.astype(np.float32)


def ref_loihi_relu(J, dt, s):
    s["v"] += J.astype(np.float64) * dt
    spiked = s["v"] > 1
    s["v"][s["v"] < 0] = 0
    s["v"][spiked] = 0
    return spiked.astype(np.float32)


def ref_rate(fn, x, tau_ref, tau_rc):
    if fn == "tanh":
        return np.tanh(x) / tau_ref
    if fn == "sigmoid":
        return (1 / tau_ref) / (1 + np.exp(-x))
    if fn == "relu":
        return np.maximum(x, 0)
    if fn == "linear":
        return x
    j = x - 1
    out = np.zeros_like(j)
    out[j > 0] = 1 / (tau_ref + tau_rc * np.log1p(1 / j[j > 0]))
    return out


def run_reference(x, w1, b1, w2, b2, steps, scale, step1, step2):
    spikes1, spikes2 = [], []
    J1 = (np.matmul(x, w1) + b1).astype(np.float32)
    for _ in range(steps):
        s1 = step1(J1.ravel()).reshape(B, N1)
        y1 = (s1 * np.float32(scale)).astype(np.float32)
        J2 = (np.matmul(y1.astype(np.float64), w2.astype(np.float64)) + b2).astype(np.float32)
        s2 = step2(J2.ravel()).reshape(B, N2)
        spikes1.append(s1)
        spikes2.append(s2)
    return np.array(spikes1), np.array(spikes2)


def run_sim(model, net, x, dt, seed=0):
    sim = Simulator(net, SimConfig(auto_neurons=False, readout="spikes", neuron=model, dt=dt, steps=T, batch=B, seed=seed), x=x)
    sim.run(T)
    tr = sim.trace()
    return tr["d1"].spikes.astype(np.float32), tr["d2"].spikes.astype(np.float32), sim


def rand_net(seed, w1_scale, b1, w2_scale, b2):
    rng = np.random.default_rng(seed)
    x = rng.random((B, NIN)).astype(np.float32)
    w1 = (rng.normal(0.2, 1.0, (NIN, N1)) * w1_scale).astype(np.float32)
    w2 = (rng.normal(0.2, 1.0, (N1, N2)) * w2_scale).astype(np.float32)
    bias1 = (rng.normal(b1, abs(b1) / 2 + 0.1, N1)).astype(np.float32)
    bias2 = (rng.normal(b2, abs(b2) / 2 + 0.1, N2)).astype(np.float32)
    return x, w1, bias1, w2, bias2


def assert_active(s1, s2):
    for s in (s1, s2):
        assert np.count_nonzero(s) > 20, "test network too quiet to tell anything"


@pytest.mark.parametrize("name,interpolate", [("lif", True), ("loihi_lif", False)])
@pytest.mark.parametrize("seed", [1, 2])
def test_lif_family_against_numpy(name, interpolate, seed):
    from workbench.engine.neurons.loihi import discretize_tau_rc, discretize_tau_ref

    dt = 0.001
    model = make_neuron(name, tau_rc=0.03, tau_ref=0.0023, min_voltage=-0.5)
    x, w1, b1, w2, b2 = rand_net(seed, 4.0, 1.5, 0.004, 1.0)
    tau_rc, tau_ref = (0.03, 0.0023) if interpolate else (discretize_tau_rc(0.03, dt), discretize_tau_ref(0.0023, dt))
    states = [{"v": np.zeros(B * n), "ref": np.zeros(B * n)} for n in (N1, N2)]
    r1, r2 = run_reference(
        x, w1, b1, w2, b2, T, model.output_scale(dt),
        lambda J: ref_lif(J, dt, states[0], tau_rc, tau_ref, -0.5, interpolate),
        lambda J: ref_lif(J, dt, states[1], tau_rc, tau_ref, -0.5, interpolate),
    )
    s1, s2, _ = run_sim(model, make_net(None, w1, b1, w2, b2), x, dt)
    assert_active(s1, s2)
    np.testing.assert_array_equal(s1, r1)
    np.testing.assert_array_equal(s2, r2)


def test_loihi_relu_against_numpy():
    dt = 0.001
    model = make_neuron("loihi_relu", amplitude=0.5)
    x, w1, b1, w2, b2 = rand_net(3, 60.0, 20.0, 0.2, 10.0)
    states = [{"v": np.zeros(B * n)} for n in (N1, N2)]
    r1, r2 = run_reference(x, w1, b1, w2, b2, T, model.output_scale(dt),
                           lambda J: ref_loihi_relu(J, dt, states[0]), lambda J: ref_loihi_relu(J, dt, states[1]))
    s1, s2, _ = run_sim(model, make_net(None, w1, b1, w2, b2), x, dt)
    assert_active(s1, s2)
    np.testing.assert_array_equal(s1, r1)
    np.testing.assert_array_equal(s2, r2)


@pytest.mark.parametrize("kind", ["regular_spiking", "stochastic_spiking", "poisson_spiking"])
@pytest.mark.parametrize("fn", ["relu", "linear", "tanh", "sigmoid", "lif_rate"])
def test_spiking_wrappers_against_numpy(kind, fn):
    dt = 0.001
    model = make_neuron(kind, rate_fn=fn, gain=1.5, amplitude=0.8)
    tau_ref = model.effective_tau_ref
    scale_in = {"relu": 150.0, "linear": 150.0, "lif_rate": 2.0}.get(fn, 1.0)
    x, w1, b1, w2, b2 = rand_net(4, scale_in, 0.5 * scale_in, 0.001 * scale_in, 0.3 * scale_in)
    rng = np.random.default_rng(7)  # the simulator's rng: seed 7, drawn layer by layer

    def step(state):
        def f(J):
            r = ref_rate(fn, model.gain * J.astype(np.float64), tau_ref, 0.02)
            if kind == "regular_spiking":
                state["v"] += dt * r
                n = np.floor(state["v"])
                state["v"] -= n
                return n.astype(np.float32)
            if kind == "stochastic_spiking":
                frac, n = np.modf(dt * np.abs(r))
                n += rng.random(r.size) < frac
                return (n * np.sign(r)).astype(np.float32)
            return (rng.poisson(np.abs(r) * dt) * np.sign(r)).astype(np.float32)
        return f

    states = [{"v": np.zeros(B * n)} for n in (N1, N2)]
    r1, r2 = run_reference(x, w1, b1, w2, b2, T, model.output_scale(dt), step(states[0]), step(states[1]))
    s1, s2, sim = run_sim(model, make_net(None, w1, b1, w2, b2), x, dt, seed=7)
    assert_active(s1, s2)
    np.testing.assert_array_equal(s1, r1)
    np.testing.assert_array_equal(s2, r2)
    if fn in ("tanh", "linear"):
        assert sim.metadata()["models"]["d1"]["signed"] is True


# ---- Lava bit-accurate CUBA ---------------------------------------------------------------
def lava_decay(x, d):
    p = x.astype(np.int64) * (4096 - d)
    return np.sign(p) * np.right_shift(np.abs(p), 12)


def ref_cuba(a_shifted, s, du, dv, vth, bias, refractory, t):
    """Lava's AbstractPyLifModelFixed.subthr_dynamics + PyLifRefractoryModelFloat's hold, in
    int64 numpy. ``a_shifted`` is the synaptic input already << 6."""
    u = lava_decay(s["u"], du + 1) + a_shifted
    u = np.where(u > 2**23, u - 2**24, u)
    u = np.where(u <= -(2**23), u + 2**24, u)
    s["u"] = u
    free = s["end"] < t
    v = np.clip(lava_decay(s["v"], dv) + u + bias, -(2**23) + 1, 2**23 - 1)
    s["v"] = np.where(free, v, s["v"])
    spiked = s["v"] > (vth << 6)
    s["v"][spiked] = 0
    s["end"][spiked] = t + refractory
    return spiked.astype(np.float32)


@pytest.mark.parametrize("params", [
    dict(du=4095, dv=0, vth=80),
    dict(du=3000, dv=300, vth=50, bias_mant=-20, bias_exp=3, refractory_delay=2),
    dict(du=0, dv=4095, vth=200, weight_bits=6),
])
def test_loihi_cuba_against_numpy(params):
    model = make_neuron("loihi_cuba", **params)
    vth = model.vth
    x, w1, b1, w2, b2 = rand_net(5, 0.6, 0.2, 0.5, 0.1)
    s1, s2, sim = run_sim(model, make_net(None, w1, b1, w2, b2), x, 1.0)
    assert_active(s1, s2)
    bits = model.weight_bits
    layers = {}
    for name, w, b in (("d1", w1, b1), ("d2", w2, b2)):
        q = sim.layer(name).quantization
        e = q["weight_exp"]
        mant = np.round(w.astype(np.float64) * vth / 2.0**e)
        lim = 2 ** (bits - 1)
        assert np.abs(mant).max() <= lim - 1 and np.abs(mant).max() > (lim - 1) / 2  # exponent is the smallest that fits
        be = q["bias_exp"]
        bias_int = (np.round(b.astype(np.float64) * vth * 64 / 2.0**be).astype(np.int64) << be)
        layers[name] = (mant * 2.0**e, np.tile(bias_int, B) + (model.bias_mant << model.bias_exp))
        assert 0 <= q["weight_max_rel_error"] <= 2.0**e / 2 / vth / np.abs(w).max() + 1e-9
    st = [{"u": np.zeros(B * n, np.int64), "v": np.zeros(B * n, np.int64), "end": np.full(B * n, -1)} for n in (N1, N2)]
    a1 = np.rint(np.matmul(x, layers["d1"][0].astype(np.float32)).astype(np.float64) * 64).astype(np.int64).ravel()
    r1, r2 = [], []
    for t in range(T):
        k1 = ref_cuba(a1, st[0], model.du, model.dv, vth, layers["d1"][1], model.refractory_delay, t)
        a2 = np.rint(k1.reshape(B, N1) @ layers["d2"][0] * 64).astype(np.int64).ravel()
        k2 = ref_cuba(a2, st[1], model.du, model.dv, vth, layers["d2"][1], model.refractory_delay, t)
        r1.append(k1.reshape(B, N1))
        r2.append(k2.reshape(B, N2))
    np.testing.assert_array_equal(s1, np.array(r1))
    np.testing.assert_array_equal(s2, np.array(r2))
    # membrane recorded is the integer v
    assert np.array_equal(sim.layer("d2").state["v"], st[1]["v"].astype(np.int32))
