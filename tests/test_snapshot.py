"""Snapshots: what they copy from the engine, and the history cache that lets a stream of them
share recorded rows (only new rows copied) without any handed-out history ever changing."""

from __future__ import annotations

import numpy as np
import pytest

from tests.view_data import make_run
from workbench.analysis.snapshot import HistoryCache, make_snapshot


def assert_same_history(a, b):
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    assert set(a.layers) == set(b.layers)
    for name in a.layers:
        np.testing.assert_array_equal(a[name].spikes, b[name].spikes)
        np.testing.assert_array_equal(a[name].membrane, b[name].membrane)


@pytest.mark.parametrize("chunks", [[1] * 40, [3, 7, 11, 2, 30, 1, 1, 45, 9], [60, 60, 5]])
def test_history_cache_equals_the_recorder_and_never_changes_what_it_gave(chunks):
    sim, _ = make_run(0, batch=2, labels=True, capacity=25)  # the ring wraps, and often
    cache = HistoryCache(window=25, slack=2)
    given = []
    for n in chunks:
        sim.run(n)
        layers = ("fc1", "output") if len(given) % 3 else None
        got = cache.trace(sim, layers)
        expected = sim.recorder.trace(25, sim.labels, layers=None if layers is None else set(layers))
        assert_same_history(got, expected)
        assert got["output"].spikes.base is not None or got["output"].spikes.size == 0  # a view
        given.append((got, expected))
    for got, expected in given:  # later calls wrote new rows and started new buffers
        assert_same_history(got, expected)
        assert not got["output"].spikes.flags.writeable


def test_history_cache_starts_afresh_after_a_reset_and_with_few_steps():
    sim, _ = make_run(30, capacity=25)
    cache = HistoryCache(window=25)
    before = cache.trace(sim, None)
    sim.reset()
    assert cache.trace(sim, None).n_steps == 0
    sim.run(3)
    after = cache.trace(sim, None)
    assert list(after.steps) == [1, 2, 3]
    assert_same_history(after, sim.recorder.trace(25, sim.labels))
    assert list(before.steps) == list(range(6, 31))


def test_make_snapshot_with_cache_equals_without():
    sim, ann = make_run(40, capacity=25)
    cache = HistoryCache(window=25)
    a = make_snapshot(sim, ann, ("fc1",), window=25, cache=cache)
    b = make_snapshot(sim, ann, ("fc1",), window=25)
    assert_same_history(a.history, b.history)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)


def test_snapshot_carries_the_value_a_spike_carries():
    sim, ann = make_run(5)
    snap = make_snapshot(sim, ann)
    for ls in sim.layers:
        if ls.is_neuron:
            assert snap.layer(ls.layer.name).output_scale == pytest.approx(float(ls.out_scale))
    np.testing.assert_allclose(snap.layer("fc1").output, snap.layer("fc1").spikes * snap.layer("fc1").output_scale)


def test_read_only_ann_arrays_are_shared_not_copied():
    sim, ann = make_run(2)
    frozen = {k: v.copy() for k, v in ann.items()}
    for arr in frozen.values():
        arr.flags.writeable = False
    snap = make_snapshot(sim, frozen)
    assert snap.layer("fc1").ann is frozen["fc1"]
    writable = make_snapshot(sim, ann)
    assert writable.layer("fc1").ann is not ann["fc1"] and not writable.layer("fc1").ann.flags.writeable


@pytest.mark.parametrize("cached", [True, False])
def test_membranes_only_for_the_layers_asked(cached):
    sim, ann = make_run(40, capacity=25)
    snap = make_snapshot(sim, ann, ("fc1", "output"), window=25, membrane_layers=("fc1",),
                         cache=HistoryCache(window=25) if cached else None)
    full = sim.recorder.trace(25, sim.labels)
    assert snap.history["output"].membrane is None
    np.testing.assert_array_equal(snap.history["output"].spikes, full["output"].spikes)
    np.testing.assert_array_equal(snap.history["fc1"].membrane, full["fc1"].membrane)


def count_buffers(monkeypatch, rows: int) -> list:
    """The shapes of the history buffers (``rows`` = slack x window) allocated from now on."""
    allocated = []
    empty = np.empty

    def counting(shape, *args, **kwargs):
        if isinstance(shape, tuple) and shape and shape[0] == rows:
            allocated.append(shape)
        return empty(shape, *args, **kwargs)

    monkeypatch.setattr(np, "empty", counting)
    return allocated


def test_history_cache_reuses_buffers_nobody_holds(monkeypatch):
    """New buffers are allocated only while handed-out histories still hold the old ones (fresh
    memory faults every page in on first write); what was handed out never changes."""
    sim, _ = make_run(0, capacity=25)
    cache = HistoryCache(window=25, slack=2, spare=2)
    allocated = count_buffers(monkeypatch, rows=50)
    held = []
    for _ in range(12):  # every history held: each restart needs new buffers
        sim.run(20)
        held.append((cache.trace(sim, None), sim.recorder.trace(25, sim.labels)))
    grew = len(allocated)
    assert grew > 0
    for got, expected in held:
        assert_same_history(got, expected)
    held.clear()
    for _ in range(3):  # the old buffers are free again: taken once, then they rotate
        sim.run(20)
        cache.trace(sim, None)
    settled = len(allocated)
    for _ in range(20):
        sim.run(20)
        got = cache.trace(sim, None)
        assert_same_history(got, sim.recorder.trace(25, sim.labels))
        del got
    assert len(allocated) == settled


def test_history_cache_warms_its_buffers_when_starting_so_a_play_allocates_none(monkeypatch):
    """Starting afresh (setup, reset: before a play) allocates ``warm`` spare buffers per shape
    with their pages touched; a play that then replaces full buffers, while the GUI holds the
    newest history, takes those instead of allocating (fresh memory faults in on first write)."""
    sim, _ = make_run(0, capacity=25)
    cache = HistoryCache(window=25, slack=2, spare=3, warm=2)
    allocated = count_buffers(monkeypatch, rows=50)
    held = cache.trace(sim, None)  # starts afresh: active buffers + warm spares
    buffers = len(cache._bufs)
    assert len(allocated) == buffers * 3
    for pool in cache._retired.values():
        assert all(not buf.any() for buf in pool)  # touched (zero-filled), not just reserved
    started = len(allocated)
    for _ in range(30):  # ~15 buffer replacements per key, the GUI holding the newest history
        sim.run(20)
        held = cache.trace(sim, None)
        assert_same_history(held, sim.recorder.trace(25, sim.labels))
    assert len(allocated) == started


@pytest.mark.parametrize("chunks", [[1] * 30, [3, 7, 11, 2, 30, 1, 45, 9], [60, 5]])
def test_history_cache_copies_single_neurons_membranes(chunks):
    """``neurons``: the membranes of single neurons, [T, B], equal to the recorder's column,
    read-only, never changed by later calls; unknown neurons are left out."""
    sim, _ = make_run(0, batch=2, capacity=25)
    cache = HistoryCache(window=25, slack=2)
    neurons = (("fc1", 3), ("fc1", 0), ("output", 2), ("fc1", 10_000), ("nope", 1))
    given = []
    for k, n in enumerate(chunks):
        sim.run(n)
        watched = neurons if k % 4 != 3 else neurons[:1]  # the watched set changes now and then
        got = cache.trace(sim, ("fc1", "output"), (), watched)
        expected = sim.recorder.trace(25, sim.labels)
        assert all(got[name].membrane is None for name in got.layers)
        want = {key for key in watched if key[0] != "nope" and key[1] < 100}
        assert set(cache.neurons) == want
        for (layer, i), v in cache.neurons.items():
            assert not v.flags.writeable
            np.testing.assert_array_equal(v, expected[layer].flat("membrane")[:, :, i])
        given.append((dict(cache.neurons), expected))
    for singles, expected in given:
        for (layer, i), v in singles.items():
            np.testing.assert_array_equal(v, expected[layer].flat("membrane")[:, :, i])


def test_snapshot_carries_watched_neurons_membranes_with_or_without_cache():
    sim, ann = make_run(40, capacity=25)
    for cache in (None, HistoryCache(window=25)):
        snap = make_snapshot(sim, ann, ("fc1",), window=25, membrane_layers=(),
                             membrane_neurons=(("fc1", 4),), cache=cache)
        np.testing.assert_array_equal(snap.neuron_membranes[("fc1", 4)],
                                      sim.recorder.trace(25)["fc1"].flat("membrane")[:, :, 4])
        assert snap.history["fc1"].membrane is None
