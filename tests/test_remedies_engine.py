"""Low-latency remedies in the engine (docs/conversion.md, "Remedies"): the half-threshold
start (IF ``v_init``), burst spikes (IF ``burst``) and max pooling by lateral inhibition
(``config['max_pool'] = 'lateral'``): each against the numpy reference, burst 1 against plain
IF, and the fused path against the generic path, spike for spike."""

import numpy as np
import pytest

from test_engine_if import dyadic
from test_fused import BUILDERS, assert_same, generic_event_path, inputs, pair  # noqa: F401 (fixture)
from workbench.engine.config import SimConfig
from workbench.engine.neurons import IF
from workbench.engine.reference import run_reference
from workbench.engine.simulator import Simulator
from workbench.errors import ConfigError
from workbench.models.network import Layer, Network


def lateral(net):
    for layer in net.layers:
        if layer.kind == "max_pool2d":
            layer.config["max_pool"] = "lateral"
    return net


def test_half_threshold_start_single_neuron():
    """v0 = theta/2: a constant input 0.25 fires at steps 2, 6, 10 (IF from 0: 4, 8, 12)."""
    net = BUILDERS[1](np.random.default_rng(0))  # any net: we read one layer's membrane at t=0
    cfg = SimConfig(neuron=IF(threshold=0.8, v_init=0.5), auto_neurons=False, readout="spikes")  # IF everywhere
    sim = Simulator(net, cfg, x=np.zeros((1, *net.input_shape), np.float32))
    for ls in sim.layers:
        if ls.is_neuron:
            assert np.all(ls.membrane() == np.float32(0.4))
    from workbench.engine.neurons.if_neuron import if_step

    v = np.full(1, np.float32(0.5), np.float32)
    s = np.zeros(1, np.float32)
    fired = []
    for t in range(12):
        if_step(np.full(1, 0.25, np.float32), 1.0, 1.0, 0, v, s)
        fired += [t + 1] * int(s[0])
    assert fired == [2, 6, 10]


def test_burst_equations():
    """s = clamp(floor(v/theta), 0, burst), v -= s*theta: input 2.75 with burst 2 fires 2, 2, 2,
    ... and the surplus 0.75 a step piles up; burst 3 keeps up (2, 3, 3, 3)."""
    from workbench.engine.neurons.if_neuron import if_burst_step
    for burst, want_s, want_v in [(2, [2, 2, 2, 2], [0.75, 1.5, 2.25, 3.0]),
                                  (3, [2, 3, 3, 3], [0.75, 0.5, 0.25, 0.0])]:
        v, s = np.zeros(1, np.float32), np.zeros(1, np.float32)
        got_s, got_v = [], []
        for _ in range(4):
            if_burst_step(np.full(1, 2.75, np.float32), 1.0, 1.0, 0, burst, v, s)
            got_s.append(float(s[0]))
            got_v.append(float(v[0]))
        assert (got_s, got_v) == (want_s, want_v), burst


def test_if_validates_the_remedy_fields():
    with pytest.raises(ConfigError, match="v_init"):
        IF(v_init=1.0)
    with pytest.raises(ConfigError, match="burst"):
        IF(burst=0)
    assert IF(burst=4).max_rate(1.0) == 4.0
    assert IF(burst=4).rate(np.array([5.0]), 1.0).tolist() == [4.0]


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("v_init,burst,lat", [(0.5, 1, False), (0.0, 3, False), (0.5, 2, True), (0.0, 1, True)])
def test_remedies_equal_numpy_reference(builder, v_init, burst, lat):
    rng = np.random.default_rng(1234)
    net = builder(rng)
    if lat:
        lateral(net)
    x = (np.round(rng.uniform(0, 1, (3, *net.input_shape)) * 16) / 16).astype(np.float32) * 2  # bursts happen
    for fused in (True, False):
        sim = Simulator(net, SimConfig(neuron=IF(v_init=v_init, burst=burst), steps=30), x=x)
        sim.fused = fused
        sim.run(30)
        ref = run_reference(net, x, 30, v_init=v_init, burst=burst)
        for name, spikes in ref.items():
            assert np.array_equal(sim.trace()[name].spikes, spikes), (name, fused)
    if burst > 1:
        assert max(int(s.max()) for s in ref.values()) > 1  # not vacuous: some neuron bursts


@pytest.mark.parametrize("builder", BUILDERS)
def test_burst_one_is_plain_if(builder):
    rng = np.random.default_rng(5)
    net = builder(rng)
    x = inputs(rng, net, 2)
    a = Simulator(net, SimConfig(neuron=IF(burst=1), steps=25), x=x)
    b = Simulator(net, SimConfig(neuron=IF(), steps=25), x=x)
    a.run(25)
    b.run(25)
    assert_same(a, b)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("reset,v_init,burst,lat,batch,encoder", [
    ("subtract", 0.5, 1, True, 1, "constant"),
    ("subtract", 0.5, 4, True, 3, "poisson"),
    ("zero", 0.25, 2, False, 2, "constant"),
    ("modulo", 0.5, 3, True, 1, "poisson"),
])
def test_remedies_fused_equal_generic(builder, reset, v_init, burst, lat, batch, encoder):
    rng = np.random.default_rng(99)
    net = builder(rng)
    if lat:
        lateral(net)
    x = inputs(rng, net, batch) * 1.5
    cfg = SimConfig(neuron=IF(threshold=0.75, reset=reset, v_init=v_init, burst=burst), steps=30, batch=batch,
                    encoder=encoder, record_current=True, seed=3, auto_neurons=False, readout="spikes")  # IF everywhere
    fast, slow = pair(net, cfg, x, capacity=11)
    assert fast.run(30) == 30
    slow.run(30)
    assert_same(fast, slow)
    assert {ls.path for ls in fast.layers if ls.is_neuron} == {"fused"}
    fast.reset()  # the half-threshold start again after a reset
    assert all(np.all(ls.membrane() == np.float32(0.75 * v_init)) for ls in fast.layers if ls.is_neuron)


def test_lateral_max_pool_output_sums_to_the_window_max():
    """Over any number of steps, the lateral pool's summed output is the window's largest summed
    input (the spike-count max pool's is not, in general)."""
    rng = np.random.default_rng(3)
    net = lateral(BUILDERS[2](rng))  # random_join_net: one 2x2 max pool 'mp' after 'cat'
    x = inputs(rng, net, 2)
    sim = Simulator(net, SimConfig(steps=20), x=x)
    cat, mp = sim.layer("cat"), sim.layer("mp")
    sum_in, sum_out = np.zeros(cat.shape), np.zeros(mp.shape)
    for _ in range(20):
        sim.step()
        sum_in += cat.y
        sum_out += mp.y
    want = sum_in.reshape(2, 4, 2, 4, 2, 8).max(axis=(2, 4))
    assert np.allclose(sum_out, want) and want.sum() > 0


def linear_join_net(rng):
    """A linear conv (carries current) and a relu conv into a linear Add that feeds max pooling
    (so it must spike: signed IF, with negative values), a relu activation, a softmax output
    (membrane readout): IF, signed IF and current layers in one graph under the default plan."""
    conv = {"strides": [1, 1], "padding": "same"}
    return Network("lin_join", [
        Layer("in", "input", (6, 6, 2)),
        Layer("a", "conv2d", (6, 6, 3), ("in",), dyadic(rng, (3, 3, 2, 3), 0.5), dyadic(rng, (3,), 0.05), "relu",
              config=conv),
        Layer("b", "conv2d", (6, 6, 3), ("in",), dyadic(rng, (3, 3, 2, 3), 0.6), dyadic(rng, (3,), 0.05),
              "linear", config=conv),
        Layer("add", "add", (6, 6, 3), ("a", "b"), config={"input_scales": [1.0, 0.75]}),
        Layer("mp", "max_pool2d", (3, 3, 3), ("add",), config={"pool_size": [2, 2], "strides": [2, 2],
                                                                "padding": "valid"}),
        Layer("act", "activation", (3, 3, 3), ("mp",), activation="relu", config={"input_scales": [1.0]}),
        Layer("f", "flatten", (27,), ("act",)),
        Layer("out", "dense", (4,), ("f",), dyadic(rng, (27, 4), 0.5), dyadic(rng, (4,), 0.05), "softmax"),
    ])


@pytest.mark.parametrize("reset,v_init,burst,lat,batch,encoder", [
    ("subtract", 0.5, 1, False, 1, "constant"),
    ("subtract", 0.5, 3, True, 2, "poisson"),
    ("zero", 0.25, 2, False, 2, "constant"),
])
def test_remedies_under_the_default_plan(reset, v_init, burst, lat, batch, encoder):
    """Under the default conversion plan the remedies reach every spiking layer, IF and signed
    IF alike (half-threshold start, bursts of either sign), while a layer carrying current and
    the membrane readout stay exact (start at 0); fused == generic == the numpy reference."""
    rng = np.random.default_rng(21)
    net = linear_join_net(rng)
    if lat:
        lateral(net)
    x = (np.round(rng.uniform(-0.5, 1, (batch, *net.input_shape)) * 16) / 16).astype(np.float32) * 2
    cfg = SimConfig(neuron=IF(threshold=0.75, reset=reset, v_init=v_init, burst=burst), steps=30, batch=batch,
                    encoder=encoder, record_current=True, seed=3)
    fast, slow = pair(net, cfg, x, capacity=11)
    roles = {name: (lp.role, lp.model.name) for name, lp in fast.plan.layers.items()}
    assert roles == {"a": ("spiking", "if"), "b": ("current", "current"), "add": ("spiking", "signed_if"),
                     "act": ("spiking", "if"), "out": ("readout", "current")}
    for name in ("a", "add", "act"):
        m = fast.plan.model(name)
        assert (m.v_init, m.burst) == (v_init, burst), name
    start = {ls.layer.name: ls.membrane().copy() for ls in fast.layers if ls.is_neuron}
    for name, v in start.items():
        want = 0.0 if name in ("b", "out") else np.float32(v_init * 0.75)
        assert np.all(v == np.float32(want)), name
    assert fast.run(30) == 30
    slow.run(30)
    assert_same(fast, slow)
    assert {ls.path for ls in fast.layers if ls.is_neuron} == {"fused"}
    add = fast.trace()["add"].spikes
    assert add.min() < 0 and add.max() > 0  # not vacuous: the signed IF fires both ways
    if burst > 1:
        assert add.max() > 1 or add.min() < -1
    if encoder == "constant":
        ref = run_reference(net, x, 30, threshold=0.75, reset=reset, v_init=v_init, burst=burst)
        for name, spikes in ref.items():
            assert np.array_equal(fast.trace()[name].spikes, spikes[-11:]), name  # the ring keeps 11
    fast.reset()
    for ls in fast.layers:
        if ls.is_neuron:
            assert np.array_equal(ls.membrane(), start[ls.layer.name]), ls.layer.name


def test_signed_if_burst_and_half_start():
    """SignedIF's bursts mirror IF's below zero: input -2.75, burst 2 from v0 = 0.5: -2 (v -0.25),
    -2 (v -1.0), -2 (-1.75) ...; burst 1 is the plain signed IF."""
    from workbench.engine.neurons import SignedIF

    for burst, want in [(2, [-2.0, -2.0, -2.0]), (1, [-1.0, -1.0, -1.0])]:
        m = SignedIF(v_init=0.5, burst=burst)
        state = m.init_state(1)
        assert state["v"][0] == np.float32(0.5)
        s = np.zeros(1, np.float32)
        got = []
        for _ in range(3):
            m.step(np.full(1, -2.75, np.float32), 1.0, state, s, None)
            got.append(float(s[0]))
        assert got == want, burst
    assert SignedIF(burst=3).rate(np.array([5.0, -5.0]), 1.0).tolist() == [3.0, -3.0]
    with pytest.raises(ConfigError, match="burst"):
        SignedIF(burst=0)
