"""Trace playback (snapshots from a file equal the live ones) and divergence overlays, Qt-free."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.trace_nets import conv_net, inputs
from tests.view_data import make_run, small_network
from workbench.analysis.layer_stats import simulator_stats
from workbench.analysis.compare import compare_traces
from workbench.engine.config import SimConfig
from workbench.engine.simulator import Simulator
from workbench.analysis.snapshot import make_snapshot
from workbench.engine.trace import LayerTrace, Trace
from workbench.exchange.trace_io import load_trace, save_trace
from workbench.analysis.trace_playback import NEVER, TracePlayback, divergence_overlay


@pytest.fixture(scope="module")
def run():
    sim, ann = make_run(25, batch=2, labels=True)
    return sim, ann, sim.trace(ann=ann)


def test_snapshot_from_a_saved_trace_equals_the_live_one(run, tmp_path):
    sim, ann, trace = run
    save_trace(trace, tmp_path / "run.npz")
    play = TracePlayback(load_trace(tmp_path / "run.npz"), network=sim.network)
    snap = play.snapshot(play.position_of(25))
    live = make_snapshot(sim, ann)
    assert snap.t == live.t == 25 and snap.batch == 2
    recorded = [ls for ls in live.layers if ls.name in live.history.layers]
    assert [ls.name for ls in snap.layers] == [ls.name for ls in recorded]
    for got, want in zip(snap.layers, recorded):
        assert got.kind == want.kind and got.shape == want.shape
        np.testing.assert_array_equal(got.spikes, want.spikes)
        np.testing.assert_array_equal(got.membrane, want.membrane)
        np.testing.assert_array_equal(got.counts, want.counts)
        np.testing.assert_allclose(got.ann, want.ann)
        # a layer carrying current (the membrane readout) records no spikes: its per-step output
        # is rebuilt from the float32 membrane (the accumulated charge), exact to float32 rounding
        np.testing.assert_allclose(got.output, want.output, rtol=1e-5, atol=1e-6)
        assert got.threshold == want.threshold and got.max_rate == want.max_rate
    for name in snap.history.layers:
        np.testing.assert_array_equal(snap.history[name].spikes, live.history[name].spikes)
    np.testing.assert_array_equal(snap.predictions, live.predictions)
    np.testing.assert_array_equal(snap.accuracy, live.accuracy)
    want = {s.name: s for s in simulator_stats(sim, ann)}
    for s in snap.stats:
        assert s.mean_rate == pytest.approx(want[s.name].mean_rate) and s.silent == want[s.name].silent
        assert s.r == pytest.approx(want[s.name].r, nan_ok=True)
    assert snap.r_history["fc1"][-1][0] == 25


def test_positions_move_both_ways_and_counts_follow(run):
    sim, ann, trace = run
    play = TracePlayback(trace, window=5)
    for pos in (10, 3, 25, 0, 24, 12):
        snap = play.snapshot(pos)
        assert snap.t == pos and snap.history.n_steps == min(pos, 5)
        want = trace["conv1"].spikes[:pos].sum(axis=0)
        np.testing.assert_array_equal(snap.layer("conv1").counts, want)
    assert play.snapshot(0).layer("fc1").kind == "dense"  # no network given: the file's metadata
    assert trace.metadata["kinds"] == {ls.layer.name: ls.layer.kind for ls in sim.layers}
    bare = dataclasses.replace(trace, metadata={k: v for k, v in trace.metadata.items() if k != "kinds"})
    assert TracePlayback(bare).snapshot(3).layer("fc1").kind == "unknown"  # another tool's file
    assert play.snapshot(99).t == 25 and play.position_of(7) == 7


def test_ring_trace_starts_late():
    sim, ann = make_run(30, capacity=10)
    play = TracePlayback(sim.trace())
    assert play.t_at(0) == 20 and play.snapshot(play.n_positions - 1).t == 30
    assert play.position_of(25) == 5


def planted(trace, layer, step, sample, neuron, field="spikes"):
    """A copy of ``trace`` differing in one cell."""
    layers = {}
    for name, lt in trace.layers.items():
        spikes, membrane = lt.spikes.copy(), None if lt.membrane is None else lt.membrane.copy()
        if name == layer:
            row = int(np.flatnonzero(trace.steps == step)[0])
            if field == "spikes":
                flat = spikes.reshape(spikes.shape[0], spikes.shape[1], -1)
                flat[row, sample, neuron] = 1 - flat[row, sample, neuron]
            else:
                membrane.reshape(membrane.shape[0], membrane.shape[1], -1)[row, sample, neuron] += 0.5
        layers[name] = LayerTrace(name, lt.shape, spikes, membrane, lt.current)
    return Trace(layers, trace.steps, trace.predictions, trace.labels, dict(trace.ann), dict(trace.metadata))


@pytest.mark.parametrize("field", ["spikes", "membrane"])
def test_overlay_marks_exactly_the_planted_neuron(field):
    net = conv_net()
    sim = Simulator(net, SimConfig(steps=20, batch=2), inputs(net, 2))
    sim.run(20)
    a = sim.trace()
    b = planted(a, "conv2", 13, 1, 17, field)
    overlay = divergence_overlay(compare_traces(a, b), a, b)
    d = overlay.first
    assert (d.step, d.layer, d.sample, d.neuron) == (13, "conv2", 1, 17)
    assert overlay.divergent_count("conv2") == 1
    assert all(overlay.divergent_count(n) == 0 for n in a.layers if n != "conv2")
    mask = overlay.mask("conv2", 1)
    assert mask.shape == (24,) and np.flatnonzero(mask).tolist() == [17]
    assert not overlay.mask("conv2", 0).any()
    assert not overlay.mask("conv2", 1, upto=12).any() and overlay.mask("conv2", 1, upto=13)[17]
    assert overlay.first_step["conv2"][1, 17] == 13 and overlay.first_step["conv2"][0, 17] == NEVER
    assert overlay.mask("nope") is None
    steps, v = overlay.reference("conv2", 1, 17, 10, 14)
    np.testing.assert_array_equal(steps, [10, 11, 12, 13, 14])
    np.testing.assert_array_equal(v, b["conv2"].flat("membrane")[9:14, 1, 17])


def test_overlay_of_equal_traces_is_empty():
    sim, ann = make_run(10)
    a = sim.trace()
    overlay = divergence_overlay(compare_traces(a, a), a, a)
    assert overlay.first is None and all(not overlay.mask(n).any() for n in a.layers)


def test_unknown_model_in_metadata_is_shown_as_written():
    net = small_network()
    sim = Simulator(net, SimConfig(steps=3), np.zeros((1, 4, 4, 1), np.float32))
    sim.run(3)
    t = sim.trace()
    meta = dict(t.metadata, models={"fc1": {"name": "my_fpga_if", "params": {"threshold": 2.0}}})
    t = Trace(dict(t.layers), t.steps, t.predictions, t.labels, {}, meta)
    ls = TracePlayback(t).snapshot(3).layer("fc1")
    assert ls.model.startswith("my_fpga_if") and ls.threshold == 2.0
