"""Every synapse path gives the same currents: serial event, thread-pool blocks, im2col + BLAS.

Inputs and weights are dyadic (exact float32 sums in any order), so the paths must agree bit for
bit; and a whole simulation forced onto each path must spike exactly as the numpy reference."""

import numpy as np
import pytest

from test_engine_if import dyadic, random_conv_net, random_dense_net
from workbench.engine import synapses as S
from workbench.engine.config import SimConfig
from workbench.engine.flat_kernels import stride1_weights
from workbench.engine.reference import run_reference
from workbench.engine.simulator import Simulator


@pytest.fixture
def two_threads():
    S.set_threads(2)
    yield
    S.set_threads(None)


def spikes(rng, shape, p=0.3):
    return (rng.random(shape) < p).astype(np.float32)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("geom", [(1, 1, "same"), (2, 2, "same"), (2, 1, "valid"), (1, 1, "valid")])
def test_conv_paths_identical(batch, geom, two_threads):
    sh, sw, padding = geom
    rng = np.random.default_rng(5)
    x = spikes(rng, (batch, 9, 11, 5))
    x[0, 0, 0, 0] = 0.75  # a non-binary value too
    w, b = dyadic(rng, (3, 4, 5, 24), 0.4), dyadic(rng, (24,), 0.1)
    pt, pl = S.padding_for(padding, x.shape[1:3], (3, 4), (sh, sw))
    oh = -(-9 // sh) if padding == "same" else (9 - 3) // sh + 1
    ow = -(-11 // sw) if padding == "same" else (11 - 4) // sw + 1
    outs = [np.full((batch, oh, ow, 24), np.nan, np.float32) for _ in range(3)]
    S.conv2d_event(x, w, b, sh, sw, pt, pl, outs[0])
    S.run_blocks(S.conv2d_event_block, (x, w, b, sh, sw, pt, pl, outs[1]), batch, 24)
    S.conv2d_blas(x, w, b, sh, sw, pt, pl, outs[2])
    assert not np.isnan(outs[0]).any()
    assert np.array_equal(outs[0], outs[1])
    assert np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize("cin", [5, 20])  # one spike per pixel mostly, and several per pass
@pytest.mark.parametrize("padding,kernel", [("same", (3, 4)), ("valid", (2, 3)), ("same", (5, 5)), ("same", (1, 1))])
def test_reorganised_kernels_round_like_the_plain_scatter(cin, padding, kernel, two_threads):
    """General float32 values (not dyadic: every sum depends on its order): the contiguous-run
    and grouped stride-1 kernels and the strided flat kernel equal the plain per-spike scatter
    of the channel-block kernel bit for bit, so they add the same products in the same order."""
    rng = np.random.default_rng(11)
    kh, kw = kernel
    x = (spikes(rng, (2, 9, 11, cin), 0.4) * rng.uniform(0.3, 1.7, (2, 9, 11, cin))).astype(np.float32)
    w = rng.normal(0, 0.3, (kh, kw, cin, 24)).astype(np.float32)
    b = rng.normal(0, 0.1, 24).astype(np.float32)
    pt, pl = S.padding_for(padding, x.shape[1:3], kernel, (1, 1))
    oh, ow = (9, 11) if padding == "same" else (9 - kh + 1, 11 - kw + 1)
    plain, s1, flat = (np.full((2, oh, ow, 24), np.nan, np.float32) for _ in range(3))
    S.run_blocks(S.conv2d_event_block, (x, w, b, 1, 1, pt, pl, plain), 2, 24)
    S.conv2d_event_s1(x, stride1_weights(w), b, kh, kw, pt, pl, s1)
    S.conv2d_event(x, w, b, 1, 1, pt, pl, flat)
    assert not np.isnan(plain).any()
    assert np.array_equal(plain, s1) and np.array_equal(plain, flat)


def test_dense_four_rows_per_pass_rounds_like_one(two_threads):
    rng = np.random.default_rng(12)
    y = (spikes(rng, (3, 70), 0.5) * rng.uniform(0.3, 1.7, (3, 70))).astype(np.float32)
    w, b = rng.normal(0, 0.3, (70, 29)).astype(np.float32), rng.normal(0, 0.1, 29).astype(np.float32)
    a, c = np.zeros((3, 29), np.float32), np.zeros((3, 29), np.float32)
    S.dense_event(y, w, b, a)
    S.run_blocks(S.dense_event_block, (y, w, b, c), 3, 29)
    assert np.array_equal(a, c)
    assert not np.array_equal(a, (y.astype(np.float64) @ w + b).astype(np.float32))  # the order matters here


def test_conv_blas_chunks_over_samples(monkeypatch):
    rng = np.random.default_rng(6)
    x = spikes(rng, (5, 6, 6, 3), 0.6)
    w, b = dyadic(rng, (3, 3, 3, 4), 0.4), dyadic(rng, (4,), 0.1)
    a, c = np.zeros((5, 6, 6, 4), np.float32), np.zeros((5, 6, 6, 4), np.float32)
    S.conv2d_event(x, w, b, 1, 1, 1, 1, a)
    monkeypatch.setattr(S, "IM2COL_BUDGET", 2 * 36 * 27)  # two samples per chunk: 2 + 2 + 1
    S.conv2d_blas(x, w, b, 1, 1, 1, 1, c)
    assert np.array_equal(a, c)


@pytest.mark.parametrize("batch", [1, 4])
def test_dense_paths_identical(batch, two_threads):
    rng = np.random.default_rng(7)
    y = spikes(rng, (batch, 50))
    w, b = dyadic(rng, (50, 33), 0.4), dyadic(rng, (33,), 0.1)
    a, c = np.zeros((batch, 33), np.float32), np.zeros((batch, 33), np.float32)
    S.dense_event(y, w, b, a)
    S.run_blocks(S.dense_event_block, (y, w, b, c), batch, 33)
    assert np.array_equal(a, c)
    assert np.array_equal(a, y @ w + b)


def test_pool_blocks_identical(two_threads):
    rng = np.random.default_rng(8)
    x = spikes(rng, (4, 7, 7, 6))
    geo = (2, 2, 2, 2, 0, 0)
    a, c = np.zeros((4, 3, 3, 6), np.float32), np.zeros((4, 3, 3, 6), np.float32)
    S.avg_pool(x, *geo, np.float32(0.5), a)
    S.run_blocks(S.avg_pool_block, (x, *geo, np.float32(0.5), c), 4, 1)
    assert np.array_equal(a, c)
    ca, cc = np.zeros(x.shape), np.zeros(x.shape)
    S.max_pool_by_count(x, ca, *geo, a)
    S.run_blocks(S.max_pool_block, (x, cc, *geo, c), 4, 1)
    assert np.array_equal(a, c) and np.array_equal(ca, cc)


FORCE = {
    "event": {"CONV_BLAS_DENSITY": 2.0, "DENSE_BLAS_DENSITY": 2.0, "PARALLEL_MIN_WORK": 10**12},
    "event-par": {"CONV_BLAS_DENSITY": 2.0, "DENSE_BLAS_DENSITY": 2.0, "PARALLEL_MIN_WORK": 0},
    "blas": {"CONV_BLAS_DENSITY": -1.0, "DENSE_BLAS_DENSITY": -1.0, "BLAS_MIN_WORK": 0},
}


@pytest.mark.parametrize("path", sorted(FORCE))
@pytest.mark.parametrize("builder", [random_conv_net, random_dense_net])
def test_simulation_on_each_path_equals_reference(path, builder, monkeypatch, two_threads):
    for name, value in FORCE[path].items():
        monkeypatch.setattr(S, name, value)
    monkeypatch.setattr(S, "PARALLEL_MIN_WORK", FORCE[path].get("PARALLEL_MIN_WORK", 10**12))
    rng = np.random.default_rng(1234)
    net = builder(rng)
    x = (np.round(rng.uniform(0, 1, (4, *net.input_shape)) * 16) / 16).astype(np.float32)
    sim = Simulator(net, SimConfig(steps=30), x=x)
    sim.fused = False  # the generic per-layer paths are under test (tests/test_fused.py: fused)
    sim.run(30)
    ran = {ls.path for ls in sim.layers if ls.layer.kind in ("conv2d", "dense")} - {"cached"}
    assert ran == {path}
    ref = run_reference(net, x, 30)
    for name, s in ref.items():
        assert np.array_equal(sim.trace()[name].spikes, s), f"layer {name} differs on the {path} path"


def test_two_simulators_stepping_at_once_in_threads(monkeypatch, two_threads):
    """The shared thread pool serves concurrent callers (the window's worker and an evaluation)."""
    import threading

    monkeypatch.setattr(S, "PARALLEL_MIN_WORK", 0)
    rng = np.random.default_rng(1234)
    net = random_conv_net(rng)
    x = (np.round(rng.uniform(0, 1, (4, *net.input_shape)) * 16) / 16).astype(np.float32)
    ref = run_reference(net, x, 30)
    sims = [Simulator(net, SimConfig(steps=30), x=x) for _ in range(2)]
    workers = [threading.Thread(target=sim.run, args=(30,)) for sim in sims]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for sim in sims:
        assert sim.t == 30
        for name, s in ref.items():
            assert np.array_equal(sim.trace()[name].spikes, s)
