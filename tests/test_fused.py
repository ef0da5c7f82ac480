"""The fused fast path (engine/fused.py) against the generic per-layer path forced onto its serial
event kernels, and against the numpy reference: spikes, membranes, currents, counts,
predictions and the recorder's rings must be identical, and the LayerState arrays after a fused
chunk must be what the generic path leaves (so step_layer, snapshots and stats go on)."""

import threading

import numpy as np
import pytest

from test_engine_if import dyadic, random_conv_net, random_dense_net
from workbench.engine import fused as F
from workbench.engine import stop_flag
from workbench.engine import synapses as S
from workbench.engine.config import SimConfig
from workbench.engine.neurons import IF, make_neuron
from workbench.engine.reference import run_reference
from workbench.engine.simulator import Simulator
from workbench.models.network import Layer, Network


@pytest.fixture(autouse=True)
def generic_event_path(monkeypatch):
    """The generic path on its serial event kernels (BLAS sums in its own order)."""
    monkeypatch.setattr(S, "CONV_BLAS_DENSITY", 2.0)
    monkeypatch.setattr(S, "DENSE_BLAS_DENSITY", 2.0)
    monkeypatch.setattr(S, "PARALLEL_MIN_WORK", 10**12)


def random_join_net(rng):
    """add, concatenate (channels), max pooling, a standalone activation, zero padding,
    depthwise, global average pooling: every kind the fused path covers in one graph."""
    conv = {"strides": [1, 1], "padding": "same"}
    return Network("rand_join", [
        Layer("in", "input", (8, 8, 3)),
        Layer("a", "conv2d", (8, 8, 4), ("in",), dyadic(rng, (3, 3, 3, 4), 0.4), dyadic(rng, (4,), 0.05), "relu",
              config=conv),
        Layer("b", "conv2d", (8, 8, 4), ("in",), dyadic(rng, (1, 1, 3, 4), 0.6), dyadic(rng, (4,), 0.05), "relu",
              config=conv),
        Layer("add", "add", (8, 8, 4), ("a", "b"), config={"input_scales": [1.0, 0.5]}),
        Layer("cat", "concatenate", (8, 8, 8), ("a", "add"), config={"axis": 2}),
        Layer("mp", "max_pool2d", (4, 4, 8), ("cat",), config={"pool_size": [2, 2], "strides": [2, 2],
                                                                "padding": "valid"}),
        Layer("act", "activation", (4, 4, 8), ("mp",), activation="relu", config={"input_scales": [0.75]}),
        Layer("pad", "zero_pad2d", (6, 6, 8), ("act",), config={"padding": [[1, 1], [1, 1]]}),
        Layer("dw", "depthwise_conv2d", (3, 3, 8), ("pad",), dyadic(rng, (3, 3, 8, 1), 0.6), dyadic(rng, (8,), 0.05),
              "relu", config={"strides": [2, 2], "padding": "same"}),
        Layer("gap", "global_avg_pool2d", (8,), ("dw",), config={"input_scales": [1.0]}),
        Layer("out", "dense", (4,), ("gap",), dyadic(rng, (8, 4), 0.8), dyadic(rng, (4,), 0.05), "softmax"),
    ])


def random_geometry_net(rng):
    """Stride-1 convolutions whose kernels are even, one-sided, or larger than the input, and
    max/avg pooling whose windows overlap, pad, leave rows uncovered, or tile the input with a
    non-square window: the borders of the contiguous-run convs and of the one-pass pooling."""
    same, valid = {"strides": [1, 1], "padding": "same"}, {"strides": [1, 1], "padding": "valid"}
    return Network("rand_geometry", [
        Layer("in", "input", (7, 7, 3)),
        Layer("c1", "conv2d", (7, 7, 5), ("in",), dyadic(rng, (4, 4, 3, 5), 0.4), dyadic(rng, (5,), 0.05), "relu",
              config=same),
        Layer("c2", "conv2d", (7, 5, 4), ("c1",), dyadic(rng, (1, 3, 5, 4), 0.5), dyadic(rng, (4,), 0.05), "relu",
              config=valid),
        Layer("mp1", "max_pool2d", (4, 3, 4), ("c2",), config={"pool_size": [3, 3], "strides": [2, 2],
                                                                "padding": "same"}),
        Layer("c3", "conv2d", (4, 3, 6), ("mp1",), dyadic(rng, (5, 5, 4, 6), 0.4), dyadic(rng, (6,), 0.05),
              "relu", config=same),
        Layer("mp2", "max_pool2d", (3, 2, 6), ("c3",), config={"pool_size": [2, 2], "strides": [1, 1],
                                                                "padding": "valid"}),
        Layer("mp3", "max_pool2d", (3, 3, 5), ("c1",), config={"pool_size": [2, 2], "strides": [2, 2],
                                                                "padding": "valid"}),
        Layer("ap", "avg_pool2d", (4, 4, 5), ("c1",), config={"pool_size": [3, 3], "strides": [2, 2],
                                                               "padding": "same", "input_scales": [1.0]}),
        Layer("ap2", "avg_pool2d", (2, 3, 4), ("mp1",), config={"pool_size": [2, 1], "strides": [2, 1],
                                                                 "padding": "valid", "input_scales": [0.75]}),
        Layer("f2", "flatten", (36,), ("mp2",)),
        Layer("f3", "flatten", (45,), ("mp3",)),
        Layer("fa", "flatten", (80,), ("ap",)),
        Layer("fa2", "flatten", (24,), ("ap2",)),
        Layer("cat", "concatenate", (185,), ("f2", "f3", "fa", "fa2"), config={"axis": 0}),
        Layer("out", "dense", (5,), ("cat",), dyadic(rng, (185, 5), 0.3), dyadic(rng, (5,), 0.05), "softmax"),
    ])


BUILDERS = [random_conv_net, random_dense_net, random_join_net, random_geometry_net]


def pair(net, cfg, x, capacity=None):
    fast = Simulator(net, cfg, x=x, record_capacity=capacity)
    slow = Simulator(net, cfg, x=x, record_capacity=capacity)
    slow.fused = False
    assert fast.fused_reason is None
    return fast, slow


def assert_same(fast, slow):
    assert (fast.t, fast.cursor) == (slow.t, slow.cursor)
    for a, b in zip(fast.layers, slow.layers):
        name = a.layer.name
        assert np.array_equal(a.y, b.y), name
        if a.is_neuron:
            for field in ("spikes", "J", "counts"):
                assert np.array_equal(getattr(a, field), getattr(b, field)), (name, field)
            assert np.array_equal(a.membrane(), b.membrane()), name
            assert (a.const_current is None) == (b.const_current is None), name
            if a.const_current is not None:
                assert np.array_equal(a.const_current, b.const_current), name
        if a.layer.kind == "max_pool2d":
            assert np.array_equal(a.pool_counts, b.pool_counts), name
    ra, rb = fast.recorder, slow.recorder
    assert ra.count == rb.count
    n = min(ra.count, ra.capacity)
    for key in ("steps", "predictions"):
        assert np.array_equal(ra.arrays()[key][:n], rb.arrays()[key][:n]), key
    for ls in ra.layers:
        for key, arr in ra.arrays(ls.layer.name).items():
            assert np.array_equal(arr[:n], rb.arrays(ls.layer.name)[key][:n]), (ls.layer.name, key)
    assert np.array_equal(fast.prediction(), slow.prediction())


def inputs(rng, net, batch):
    return rng.uniform(-0.1, 1.1, (batch, *net.input_shape)).astype(np.float32)  # not dyadic


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("reset,threshold,rate_scale,batch,encoder", [
    ("subtract", 1.0, 1.0, 1, "constant"),
    ("zero", 0.7, 1.0, 3, "constant"),
    ("modulo", 1.0, 2.5, 3, "poisson"),
    ("subtract", 0.5, 0.75, 1, "poisson"),
])
def test_fused_equals_generic(builder, reset, threshold, rate_scale, batch, encoder):
    rng = np.random.default_rng(99)
    net = builder(rng)
    x = inputs(rng, net, batch)
    cfg = SimConfig(neuron=IF(threshold=threshold, reset=reset), steps=40, batch=batch, encoder=encoder,
                    rate_scale=rate_scale, record_current=True, seed=3)
    fast, slow = pair(net, cfg, x, capacity=13)  # the ring wraps three times
    assert fast.run(40) == 40
    slow.run(40)
    assert_same(fast, slow)
    assert {ls.path for ls in fast.layers if ls.is_neuron} == {"fused"}
    assert sum(int(ls.counts.sum()) for ls in fast.layers if ls.is_neuron) > 100  # not vacuous
    tf, ts = fast.trace(), slow.trace()
    assert tf.steps.tolist() == list(range(28, 41))
    for name in tf.layers:
        assert np.array_equal(tf[name].spikes, ts[name].spikes)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("model,batch,encoder,params,mixed", [
    ("lif", 1, "constant", {}, False),
    ("lif", 3, "poisson", {"tau_rc": 0.05, "tau_ref": 0.004, "min_voltage": -0.5}, False),
    ("lif", 2, "constant", {}, True),  # IF everywhere but the first neuron layer
    ("lif", 2, "constant", {"rate_scale": 1.0}, False),  # the plan's fitted LIF: gain, offset, subtract
    ("lif", 3, "poisson", {"reset_mode": "subtract", "tau_ref": 0.003}, False),  # subtract with a refractory time
    ("loihi_lif", 1, "constant", {"tau_ref": 0.0032}, False),  # tau_ref rounds to 3 steps
    ("loihi_lif", 2, "constant", {"rate_scale": 1.0}, False),  # fitted LoihiLIF
    ("loihi_lif", 2, "poisson", {"tau_rc": 0.03}, True),
    ("loihi_relu", 2, "constant", {"rate_scale": 200.0}, False),
    ("regular_spiking", 1, "constant", {"rate_fn": "relu", "rate_scale": 500.0}, False),
    ("regular_spiking", 2, "poisson", {"rate_fn": "tanh", "gain": 3.0}, False),  # signed, several a step
    ("regular_spiking", 1, "constant", {"rate_fn": "lif_rate", "tau_ref": 0.003, "rate_scale": 200.0}, True),
    ("regular_spiking", 1, "constant", {"rate_fn": "sigmoid"}, False),
    ("stochastic_spiking", 2, "constant", {"rate_fn": "relu", "rate_scale": 300.0}, False),  # one draw a chunk
    ("stochastic_spiking", 1, "poisson", {"rate_fn": "tanh", "gain": 2.0}, False),  # interleaved with the input's
    ("stochastic_spiking", 3, "poisson", {"rate_fn": "sigmoid"}, True),
    ("loihi_cuba", 1, "constant", {"rate_scale": 1.0}, False),  # int32 state, quantized weights
    ("loihi_cuba", 2, "poisson", {"rate_scale": 1.0, "du": 2048, "dv": 512, "refractory_delay": 2,
                                  "bias_mant": 3, "weight_bits": 6}, True),
])
def test_fused_neuron_models_equal_generic(builder, model, batch, encoder, params, mixed):
    """Nengo's LIF, nengo-loihi's LoihiLIF and LoihiReLU, Nengo's Regular- and
    StochasticSpiking and Lava's integer LoihiCUBA in the fused program: the same numba step on
    the same state arrays, so spikes, every state variable, counts and the recorded (float32)
    membranes match."""
    rng = np.random.default_rng(7)
    net = builder(rng)
    x = inputs(rng, net, batch)
    params = dict(params)
    rate_scale = params.pop("rate_scale", 20.0)
    neuron = make_neuron(model, **params)
    first = next(layer.name for layer in net.layers if layer.kind in ("conv2d", "dense"))
    models = {"neuron": IF(), "overrides": {first: neuron}} if mixed else {"neuron": neuron}
    cfg = SimConfig(**models, dt=0.001, steps=60, batch=batch, encoder=encoder, rate_scale=rate_scale,
                    record_current=True, seed=11)
    fast, slow = pair(net, cfg, x, capacity=17)
    assert fast.run(60) == 60
    slow.run(60)
    assert_same(fast, slow)
    for a, b in zip(fast.layers, slow.layers):
        for key in (a.state if a.is_neuron else {}):
            assert np.array_equal(a.state[key], b.state[key]), (a.layer.name, key)
    assert {ls.path for ls in fast.layers if ls.is_neuron} == {"fused"}
    ours = [ls for ls in fast.layers if ls.is_neuron and ls.model.name == model]
    assert sum(int(np.abs(ls.counts).sum()) for ls in ours) > 20  # not vacuous


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("model,encoder,synapse", [("lif", "constant", None), ("lif", "poisson", 0.01),
                                                   ("loihi_lif", "poisson", None)])
def test_fused_synaptic_filter_equals_generic(builder, model, encoder, synapse):
    """The plan's synaptic low-pass on fitted LIF layers fed by spikes (engine.conversion): both
    paths call synapses.lowpass on the same state, so spikes, currents, counts and the filter's
    state are bit-identical, also across a reset in the middle."""
    rng = np.random.default_rng(3)
    net = builder(rng)
    x = inputs(rng, net, 2)
    cfg = SimConfig(neuron=make_neuron(model), steps=40, batch=2, encoder=encoder, synapse=synapse,
                    record_current=True, seed=5)
    fast, slow = pair(net, cfg, x, capacity=13)
    filtered = [ls.layer.name for ls in fast.layers if ls.is_neuron and ls.syn is not None]
    assert filtered and len(filtered) >= (2 if encoder == "constant" else 1)
    for sim in (fast, slow):
        sim.run(25)
        sim.reset()
        sim.run(40)
    assert_same(fast, slow)
    for a, b in zip(fast.layers, slow.layers):
        if a.is_neuron and a.syn is not None:
            assert np.array_equal(a.syn, b.syn) and np.abs(a.syn).sum() > 0, a.layer.name
    assert {ls.path for ls in fast.layers if ls.is_neuron} == {"fused"}


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("model", ["lif", "loihi_lif"])
def test_fused_rate_inversion_equals_generic(builder, model):
    """The plan's rate inversion of fitted LIF layers under a constant current: both paths apply
    neurons.lif.rate_invert once to the constant current (then cached), so spikes, currents and
    counts are bit-identical, also across a reset and a new input."""
    rng = np.random.default_rng(4)
    net = builder(rng)
    x = inputs(rng, net, 2)
    cfg = SimConfig(neuron=make_neuron(model), steps=40, batch=2, record_current=True)
    fast, slow = pair(net, cfg, x, capacity=13)
    inverted = [ls for ls in fast.layers if ls.is_neuron and ls.rate_inv is not None]
    assert inverted and all(ls.index in fast._constant for ls in inverted)
    for sim in (fast, slow):
        sim.run(25)
        sim.reset()
        sim.run(30)
    assert_same(fast, slow)
    x2 = inputs(rng, net, 2)
    for sim in (fast, slow):
        sim.set_input(x2)
        sim.run(20)
    assert_same(fast, slow)
    assert {ls.path for ls in fast.layers if ls.is_neuron} == {"fused"}
    # the inversion changed the current: the cached J is the table's, not g J + 0.5 of the input
    plain = Simulator(net, cfg.replace(rate_inversion=False), x=x2)
    plain.run(1)
    for ls in inverted:
        assert not np.array_equal(ls.const_current, plain.layers[ls.index].const_current)
        assert int(np.abs(ls.counts).sum()) > 20


@pytest.mark.parametrize("builder", BUILDERS)
def test_fused_equals_numpy_reference(builder):
    rng = np.random.default_rng(1234)
    net = builder(rng)
    x = (np.round(rng.uniform(0, 1, (3, *net.input_shape)) * 16) / 16).astype(np.float32)
    sim = Simulator(net, SimConfig(steps=30), x=x)
    sim.run(30)
    for name, spikes in run_reference(net, x, 30).items():
        assert np.array_equal(sim.trace()[name].spikes, spikes), name


def test_run_then_step_layer_then_run_continues_like_generic():
    rng = np.random.default_rng(5)
    net = random_join_net(rng)
    x = inputs(rng, net, 2)
    fast, slow = pair(net, SimConfig(steps=50, batch=2, record_current=True), x, capacity=20)
    ops = [("run", 7), ("step_layer", 3), ("step", 1), ("run", 5), ("step_layer", 1), ("run", 4),
           ("reset", 0), ("step_layer", 2), ("run", 9), ("set_input", 0), ("run", 3), ("step", 1)]
    for op, n in ops:
        for sim in (fast, slow):
            if op == "run":
                sim.run(n)
            elif op == "step":
                sim.step()
            elif op == "step_layer":
                for _ in range(n):
                    sim.step_layer()
            elif op == "reset":
                sim.reset()
            else:
                sim.set_input(x[::-1].copy())
        assert_same(fast, slow)


def test_poisson_chunks_draw_the_generic_stream():
    rng = np.random.default_rng(6)
    net = random_dense_net(rng)
    x = inputs(rng, net, 2)
    fast, slow = pair(net, SimConfig(steps=30, batch=2, encoder="poisson", seed=11), x)
    fast.run(10)
    fast.step()
    fast.run(19)
    for _ in range(30):
        slow.step()
    assert_same(fast, slow)
    assert np.array_equal(fast.rng.random(4), slow.rng.random(4))  # the generators agree after


def test_run_reports_progress_and_stops_between_chunks(monkeypatch):
    monkeypatch.setattr(F, "CHUNK", 8)
    rng = np.random.default_rng(7)
    net = random_dense_net(rng)
    sim = Simulator(net, SimConfig(steps=100), x=inputs(rng, net, 1))
    seen = []
    assert sim.run(25, on_progress=lambda i, n: seen.append(i), progress_every=10) == 25
    assert seen == [10, 20, 25]
    calls = []
    ran = sim.run(100, should_stop=lambda: len(calls) > 2 or calls.append(1))
    assert ran == 24 and sim.t == 49  # checked between chunks of CHUNK steps


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("model,encoder", [("if", "constant"), ("if", "poisson"), ("lif", "constant"),
                                           ("regular_spiking", "constant")])
def test_batch1_step_split_over_two_threads_equals_generic(builder, model, encoder, monkeypatch):
    """A batch-1 step divided between two threads that meet at a barrier after every layer
    (rows of stride-1 convs and tiled pooling, columns of dense layers, element-wise ranges;
    other layers whole on part 0) gives exactly what the generic path gives."""
    from workbench.engine import block_pool

    monkeypatch.setattr(F, "SPLIT_MIN_WORK", 0)
    monkeypatch.setattr(block_pool, "threads", lambda: 2)
    rng = np.random.default_rng(21)
    net = builder(rng)
    x = inputs(rng, net, 1)
    neuron = IF(threshold=0.8) if model == "if" else make_neuron(model)
    cfg = SimConfig(neuron=neuron, steps=40, batch=1, encoder=encoder,
                    rate_scale={"if": 1.0, "lif": 20.0}.get(model, 300.0),
                    dt=1.0 if model == "if" else 0.001, record_current=True, seed=5)
    fast, slow = pair(net, cfg, x, capacity=13)
    assert fast.run(40, max_chunk=40) == 40
    assert fast._fused_prog.parts == 2
    assert {ls.path for ls in fast.layers if ls.is_neuron} == {"fused-split"}
    slow.run(40)
    assert_same(fast, slow)
    assert sum(int(ls.counts.sum()) for ls in fast.layers if ls.is_neuron) > 20  # not vacuous
    fast.split_steps = False  # and back to one thread mid-run
    fast.run(7)
    slow.run(7)
    assert fast._fused_prog.parts == 1
    assert_same(fast, slow)


def test_max_chunk_sets_the_steps_per_nogil_call():
    rng = np.random.default_rng(12)
    net = random_conv_net(rng)
    sim = Simulator(net, SimConfig(), x=inputs(rng, net, 1))
    prog = sim._fused_program()
    calls, run = [], prog.run
    prog.run = lambda s, k, stop: (calls.append(k), run(s, k, stop))[1]
    sim.run(600)
    assert calls == [F.CHUNK, F.CHUNK, 600 - 2 * F.CHUNK]
    calls.clear()
    sim.run(600, max_chunk=600)
    assert calls == [600] and sim.t == 1200


def run_until_stopped(sim, after: int, most: int) -> int:
    """``sim.run(most)`` as ONE nogil call, stopped through a ``StopWhenChanged`` by another
    thread once the kernel's step ring shows step ``after`` (the kernel writes it each step)."""
    flag = stop_flag.new_flag()
    ring = sim.recorder.arrays()["steps"]
    t0 = sim.t

    def watch():
        while ring.max() < t0 + after:
            pass
        stop_flag.request(flag)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return sim.run(most, should_stop=stop_flag.StopWhenChanged(flag, 0), max_chunk=most)
    finally:
        watcher.join()


@pytest.mark.parametrize("encoder,neuron", [("constant", "if"), ("poisson", "if"),
                                            ("poisson", "stochastic_spiking")])
def test_a_stop_from_another_thread_ends_a_chunk_between_steps(encoder, neuron):
    """A pause lands inside a long fused call: the kernel stops before its next step, and the
    state, the recorder and the Poisson generator are those of a run of exactly the steps that
    ran (the continuation is bit-identical to a run never stopped)."""
    rng = np.random.default_rng(13)
    net = random_dense_net(rng)
    x = inputs(rng, net, 1)
    model = {} if neuron == "if" else {"neuron": make_neuron(neuron), "dt": 0.001, "rate_scale": 300.0}
    fast, slow = pair(net, SimConfig(encoder=encoder, seed=5, **model), x, capacity=64)
    most = 10**7  # ~20 s if the stop were not seen: the test would fail, slowly
    ran = run_until_stopped(fast, 100, most)
    assert 100 <= ran < most and fast.t == ran and fast.recorder.count == ran
    for _ in range(ran):
        slow.step()
    assert_same(fast, slow)
    fast.run(40)
    for _ in range(40):
        slow.step()
    assert_same(fast, slow)
    assert np.array_equal(fast.rng.random(4), slow.rng.random(4))


def test_a_stop_asked_before_the_call_runs_nothing_and_draws_nothing():
    rng = np.random.default_rng(14)
    net = random_dense_net(rng)
    sim = Simulator(net, SimConfig(encoder="poisson", seed=3), x=inputs(rng, net, 1))
    sim.run(5)
    before = sim.rng.bit_generator.state
    flag = stop_flag.new_flag()
    token = stop_flag.request(flag) - 1  # the run's token is already out of date
    assert sim._fused_program().run(sim, 50, stop_flag.StopWhenChanged(flag, token)) == 0
    assert sim.t == 5 and sim.recorder.count == 5 and sim.rng.bit_generator.state == before


def test_poisson_calls_are_split_to_bound_the_random_buffer(monkeypatch):
    monkeypatch.setattr(F, "RAND_ELEMENTS", 100)
    rng = np.random.default_rng(15)
    net = random_dense_net(rng)
    x = inputs(rng, net, 2)
    fast, slow = pair(net, SimConfig(encoder="poisson", batch=2, seed=8), x)
    prog = fast._fused_program()
    assert prog.max_steps == 100 // x.size
    calls, run = [], prog.run
    prog.run = lambda s, k, stop: (calls.append(k), run(s, k, stop))[1]
    fast.run(30, max_chunk=30)
    assert max(calls) == prog.max_steps and sum(calls) == 30
    for _ in range(30):
        slow.step()
    assert_same(fast, slow)


def test_other_models_fall_back_to_the_generic_path(monkeypatch):
    rng = np.random.default_rng(8)
    net = random_conv_net(rng)
    x = inputs(rng, net, 1)
    pois = Simulator(net, SimConfig(neuron=make_neuron("poisson_spiking"), dt=0.001), x=x)
    assert "poisson_spiking" in pois.fused_reason
    mixed = Simulator(net, SimConfig(overrides={"c2": make_neuron("poisson_spiking")}, dt=0.001), x=x)
    assert "c2" in mixed.fused_reason
    for sim in (pois, mixed):
        sim.run(5)
        assert sim.t == 5 and "fused" not in {ls.path for ls in sim.layers}
    monkeypatch.setenv("SNN_WORKBENCH_FUSED", "0")
    off = Simulator(net, SimConfig(), x=x)
    off.run(3)
    assert off.fused is False and "fused" not in {ls.path for ls in off.layers}


def test_step_uses_the_fused_path_and_leaves_the_cached_current():
    rng = np.random.default_rng(9)
    net = random_conv_net(rng)
    fast, slow = pair(net, SimConfig(steps=10), inputs(rng, net, 1))
    fast.step()
    slow.step()
    assert fast.layer("c1").path == "fused" and fast.layer("c1").const_current is not None
    assert_same(fast, slow)


def test_read_only_inputs_and_weights():
    """The window hands the simulator read-only sample arrays (and may share weights)."""
    rng = np.random.default_rng(10)
    net = random_conv_net(rng)
    for layer in net.layers:
        if layer.weights is not None:
            layer.weights.flags.writeable = False
    x = inputs(rng, net, 2)
    x.flags.writeable = False
    fast, slow = pair(net, SimConfig(steps=10, batch=2), x)
    fast.run(6)
    slow.run(6)
    assert_same(fast, slow)


# ---- the fused path split over the batch on the thread pool ----------------------------------
@pytest.fixture
def threads():
    """set_threads(n) for the next calls (forced: no back-off on a busy machine); default after."""
    yield S.set_threads
    S.set_threads(None)


def par_pair(net, cfg, x, capacity=None):
    par = Simulator(net, cfg, x=x, record_capacity=capacity)
    ser = Simulator(net, cfg, x=x, record_capacity=capacity)
    assert par.fused_reason is None
    return par, ser


def advance(threads, par, ser, fn):
    """fn(sim) on the parallel simulator with 2 threads, then on the serial one with 1."""
    threads(2)
    fn(par)
    threads(1)
    fn(ser)
    threads(2)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("batch,encoder,capacity", [
    (2, "constant", None), (3, "poisson", 13), (64, "constant", 7), (64, "poisson", None),
])
def test_parallel_fused_equals_serial_fused(monkeypatch, threads, builder, batch, encoder, capacity):
    monkeypatch.setattr(F, "PARALLEL_MIN_WORK", 0)
    rng = np.random.default_rng(21)
    net = builder(rng)
    x = inputs(rng, net, batch)
    cfg = SimConfig(neuron=IF(threshold=0.7, reset="subtract"), steps=30, batch=batch, encoder=encoder,
                    rate_scale=1.5, record_current=True, seed=4)
    par, ser = par_pair(net, cfg, x, capacity)
    advance(threads, par, ser, lambda s: s.run(30))  # ring of 13 / 7 steps wraps
    assert par._fused_prog.blocks > 1 and ser._fused_prog.blocks == 1
    assert_same(par, ser)
    assert sum(int(ls.counts.sum()) for ls in par.layers if ls.is_neuron) > 100  # not vacuous
    if encoder == "poisson":
        assert np.array_equal(par.rng.random(4), ser.rng.random(4))  # the same draws


def test_parallel_fused_then_step_layer_continues(monkeypatch, threads):
    monkeypatch.setattr(F, "PARALLEL_MIN_WORK", 0)
    rng = np.random.default_rng(22)
    net = random_join_net(rng)
    x = inputs(rng, net, 3)
    par, ser = par_pair(net, SimConfig(steps=50, batch=3, record_current=True, encoder="poisson"), x, 20)
    ops = [lambda s: s.run(7), lambda s: [s.step_layer() for _ in range(3)], lambda s: s.step(),
           lambda s: s.run(5), lambda s: s.reset(), lambda s: s.run(9), lambda s: s.set_input(x[::-1].copy()),
           lambda s: s.run(3)]
    for op in ops:
        advance(threads, par, ser, op)
        assert_same(par, ser)
    assert par._fused_prog.blocks == 3


def test_parallel_fused_only_when_it_pays(threads):
    rng = np.random.default_rng(23)
    net = random_dense_net(rng)
    threads(2)
    one = Simulator(net, SimConfig(steps=300, batch=1), x=inputs(rng, net, 1))
    one.run(300)
    assert one._fused_prog.blocks == 1  # batch 1: serial
    two = Simulator(net, SimConfig(steps=300, batch=2), x=inputs(rng, net, 2))
    two.step()
    assert two._fused_prog.blocks == 1  # one step of a small net: not worth the hand-off
    threads(1)
    two.run(300)
    assert two._fused_prog.blocks == 1  # SNN_WORKBENCH_THREADS=1


def test_parallel_fused_is_chosen_by_measurement(monkeypatch, threads):
    """By default the fused path runs in parallel or serially by which measured faster (not by
    the load average); the other is measured again every RETRY calls; results are identical."""
    from workbench.engine import block_pool

    monkeypatch.setattr(F, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(block_pool, "_THREADS", 4)
    threads(None)
    monkeypatch.setattr(block_pool, "_THREADS", 4)
    rng = np.random.default_rng(24)
    net = random_conv_net(rng)
    x = inputs(rng, net, 4)
    sim = Simulator(net, SimConfig(steps=20, batch=4), x=x)
    ref = Simulator(net, SimConfig(steps=20, batch=4), x=x)
    ref.fused = False
    sim.run(1)
    assert sim._fused_prog.blocks == 4  # first measured: parallel (the first call of each is not counted)
    sim.run(1)
    assert sim._fused_prog.blocks == 4
    sim.run(1)
    assert sim._fused_prog.blocks == 1  # then serial
    sim.run(1)
    assert sim._fused_prog.blocks == 1
    chooser = sim._fused_prog.chooser
    assert chooser.seconds[True] is not None and chooser.seconds[False] is not None
    chooser.seconds.update({True: 1.0, False: 0.001})  # serial measured faster (a loaded machine)
    chooser.calls = 0
    for _ in range(block_pool.Chooser.RETRY - 1):
        sim.run(1)
        assert sim._fused_prog.blocks == 1
    chooser.seconds.update({True: 1.0, False: 0.001})
    sim.run(1)  # every RETRY calls the other is measured again
    assert sim._fused_prog.blocks == 4
    chooser.seconds.update({True: 0.001, False: 1.0})
    sim.run(1)
    assert sim._fused_prog.blocks == 4
    ref.run(sim.t)
    assert_same(sim, ref)
    block_pool.set_threads(1)  # a fixed choice is kept
    sim.run(1)
    assert sim._fused_prog.blocks == 1


def test_chooser_averages_the_recent_calls():
    from workbench.engine.block_pool import Chooser

    c = Chooser()
    c.record(True, 50.0, 1)  # the first call of a mode (starting threads) is not counted
    assert c.seconds[True] is None
    c.record(True, 2.0, 4)
    c.record(True, 1.0, 1)
    assert c.seconds[True] == pytest.approx(0.7 * 0.5 + 0.3 * 1.0)


@pytest.mark.parametrize("split", [False, True])
def test_int8_spike_ring_equals_the_int16_one_and_the_generic_path(generic_event_path, monkeypatch, split):
    """The window records an ImageNet-size layer's spikes as int8 (Recorder ``spike_dtype``):
    the fused kernel writes them through an int8 view of its int16 ring list. Rows equal the
    int16 recording and the generic path's, at every position of the ring (it wraps), batch-1
    steps split over two threads or not; ``trace()`` still hands out int16."""
    if split:
        monkeypatch.setattr(F, "SPLIT_MIN_WORK", 0)  # a small net's step on two threads too
    rng = np.random.default_rng(11)
    net = random_join_net(rng)
    x = inputs(rng, net, 1)
    names = [ls.name for ls in net.neuron_layers]
    sims = []
    for dtype, fused in ((np.int8, True), (np.int16, True), (np.int8, False)):
        sim = Simulator(net, SimConfig(), x=x)
        sim.fused = fused
        sim.split_steps = split
        sim.set_recording(names, 7, membrane=False, spike_dtype=dtype)
        sim.run(17)
        if fused and split:
            assert sim._fused_prog.parts == 2
        sims.append(sim)
    (a, b, c) = (s.recorder for s in sims)
    assert a.arrays(names[0])["spikes"].dtype == np.int8 and b.arrays(names[0])["spikes"].dtype == np.int16
    for name in names:
        assert np.array_equal(a.arrays(name)["spikes"], b.arrays(name)["spikes"]), name
        assert np.array_equal(a.arrays(name)["spikes"], c.arrays(name)["spikes"]), name
        assert a.arrays(name)["spikes"].any() or not b.arrays(name)["spikes"].any()
    ta, tb = sims[0].trace(), sims[1].trace()
    for name in names:
        assert ta[name].spikes.dtype == np.int16 and np.array_equal(ta[name].spikes, tb[name].spikes)
