"""Plot views, each alone, fed real Snapshots of a small hand-built network: what a view shows
must equal what the snapshot holds; clicks name the right neuron; hidden views do not paint."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PyQt6.QtCore import QPointF, Qt

from tests.view_data import make_run, snapshot
from workbench.analysis.layer_stats import pearson
from workbench.analysis.snapshot import HistoryCache, make_snapshot
from workbench.engine.trace import LayerTrace, Trace
from workbench.views import raster_codes
from workbench.views.qt_accuracy import QtAccuracyView
from workbench.views.qt_ann_vs_snn import QtAnnSnnView
from workbench.views.qt_heatmap import QtHeatmapView
from workbench.views.qt_membrane import MAX_WATCHED, QtMembraneView
from workbench.views.qt_raster import QtRasterView
from workbench.views.qt_rates import QtRatesView


@pytest.fixture(scope="module")
def snap():
    return snapshot(30, batch=3, labels=True)


def shown(qtbot, view, snapshot=None, layer=None):
    qtbot.addWidget(view)
    view.resize(450, 300)
    view.show()
    qtbot.waitExposed(view)
    if layer:
        view.set_selected_layer(layer)
    if snapshot is not None:
        view.set_snapshot(snapshot)
        qtbot.waitUntil(lambda: view.repaint_count >= 1 and not view._dirty)
        view.refresh()  # again, now that autorange has settled
    return view


def click(qtbot, view, x, y):
    """Left-click at view (data) coordinates of the view's main plot."""
    view.plot.vb.updateAutoRange()  # autorange otherwise follows on the next paint
    scene = view.plot.vb.mapViewToScene(QPointF(x, y))
    pos = view.plot_widget.mapFromScene(scene)
    qtbot.mouseMove(view.plot_widget.viewport(), pos)
    qtbot.mouseClick(view.plot_widget.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def spikes_of(snapshot, layer, sample):
    h = snapshot.history
    return h[layer].spikes.reshape(h.n_steps, h.batch, -1)[:, sample, :]  # (T, N)


# ---- raster -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sample", [0, 2])
def test_raster_marks_exactly_the_recorded_spikes(qtbot, snap, sample):
    view = shown(qtbot, QtRasterView(), layer="conv1")
    view.set_sample(sample)
    view.set_snapshot(snap)
    view.refresh()
    img = view.image.image
    assert img.dtype == np.uint8 and img.flags["C_CONTIGUOUS"]
    expected = spikes_of(snap, "conv1", sample).T  # neurons x time
    assert img.shape == expected.shape
    np.testing.assert_array_equal(img == raster_codes.POSITIVE, expected > 0)
    np.testing.assert_array_equal(img == raster_codes.EMPTY, expected == 0)
    assert tuple(view.image.levels) == raster_codes.LEVELS
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.left() == pytest.approx(snap.history.steps[0] - 0.5)
    assert rect.width() == pytest.approx(snap.history.n_steps)


def test_raster_reuses_codes_of_one_recording_and_paints_what_a_fresh_view_paints(qtbot):
    """Snapshots of one recording (a HistoryCache: same epoch) let the raster transpose only the
    new steps; a reset starts a new epoch. Every frame equals a fresh view's."""
    sim, ann = make_run(0, batch=2, capacity=12)
    cache = HistoryCache(window=12)
    view = shown(qtbot, QtRasterView(), layer="conv1")
    view.resize(450, 110)  # fewer pixels than neurons: pooled rows
    view.set_sample(1)
    epochs, pooled, drawn_from_spikes = set(), False, False
    for steps in (3, 4, 1, 9, 2, 15, 0, 5, -1, 4, 3):
        if steps < 0:
            sim.reset()
            continue
        sim.run(steps)
        snap = make_snapshot(sim, ann, ["conv1"], 12, cache=cache)
        epochs.add(snap.history_epoch)
        view.set_snapshot(snap)
        view.refresh()
        drawn_from_spikes |= view._lazy is not None  # pooled straight from the spikes (codes built when asked)
        fresh = QtRasterView()
        fresh.set_selected_layer("conv1")
        fresh.set_sample(1)
        fresh.set_snapshot(dataclasses.replace(snap, history_epoch=0))
        fresh.refresh()
        np.testing.assert_array_equal(view.codes(), fresh.codes())
        np.testing.assert_array_equal(view.codes() == raster_codes.POSITIVE, spikes_of(snap, "conv1", 1).T > 0)
        py, px = view._pool
        pooled |= py > 1
        want = raster_codes.pool_codes(view.codes(), py, px) if (py, px) != (1, 1) else view.codes()
        np.testing.assert_array_equal(view.image.image, want)
    assert len(epochs) == 2 and 0 not in epochs and pooled and drawn_from_spikes


@pytest.mark.parametrize("py", [2, 3, 5, 7, 16])
@pytest.mark.parametrize("signed", [False, True])
def test_pooling_spikes_equals_pooling_their_codes(py, signed):
    rng = np.random.default_rng(py)
    spikes = (rng.random((37, 50)) < 0.2).astype(np.int16)  # 50 neurons: a last, smaller group
    if signed:
        spikes[rng.random(spikes.shape) < 0.15] = -1
        spikes[:, :py] = -1  # a cell of negative spikes only
    codes = np.where(spikes.T > 0, raster_codes.POSITIVE, np.where(spikes.T < 0, raster_codes.NEGATIVE, raster_codes.EMPTY))
    want = raster_codes.pool_codes(codes.astype(np.uint8), py, 1)
    np.testing.assert_array_equal(raster_codes.pool_spikes(spikes, py, signed), want)


def test_raster_x_axis_is_the_real_step_numbers_after_the_ring_wraps(qtbot):
    sim, ann = make_run(25, capacity=10)
    snap = make_snapshot(sim, ann)
    view = shown(qtbot, QtRasterView(), snap, layer="fc1")
    assert list(snap.history.steps) == list(range(16, 26))
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert (rect.left(), rect.right()) == pytest.approx((15.5, 25.5))
    np.testing.assert_array_equal(view.image.image == raster_codes.POSITIVE, spikes_of(snap, "fc1", 0).T > 0)


def test_raster_stacks_layers_with_separators_and_shows_signed_spikes(qtbot, snap):
    # A signed model's negative spikes: rewrite fc1's recorded spikes with some -1s.
    h = snap.history
    signed = np.array(h["fc1"].spikes)
    signed[::3, :, ::2] = -1
    layers = {name: lt for name, lt in h.layers.items()}
    layers["fc1"] = LayerTrace("fc1", h["fc1"].shape, signed, h["fc1"].membrane)
    hist = Trace(layers, h.steps, h.predictions, h.labels)
    lays = tuple(dataclasses.replace(ls, signed=True) if ls.name == "fc1" else ls for ls in snap.layers)
    snap2 = dataclasses.replace(snap, history=hist, layers=lays)

    view = shown(qtbot, QtRasterView(), snap2)
    view.set_stacked(True)
    view.refresh()
    assert view.blocks == [("conv1", 0, 48), ("fc1", 49, 12), ("output", 62, 5)]
    img = view.image.image
    assert (img[48] == raster_codes.SEPARATOR).all() and (img[61] == raster_codes.SEPARATOR).all()
    fc1 = img[49:61]
    expected = signed.reshape(h.n_steps, h.batch, -1)[:, 0, :].T
    np.testing.assert_array_equal(fc1 == raster_codes.NEGATIVE, expected < 0)
    np.testing.assert_array_equal(fc1 == raster_codes.POSITIVE, expected > 0)
    np.testing.assert_array_equal(img[:48] == raster_codes.POSITIVE, spikes_of(snap, "conv1", 0).T > 0)
    assert raster_codes.LUT[raster_codes.NEGATIVE].tolist() != raster_codes.LUT[raster_codes.POSITIVE].tolist()


def test_raster_gives_small_stacked_layers_a_band_of_repeated_rows(qtbot, snap, monkeypatch):
    from workbench.views import qt_raster

    monkeypatch.setattr(qt_raster, "MIN_BAND_SHARE", 1 / 5)  # 3 layers: min(1/5, 0.5/3) of 65 rows: 11
    view = shown(qtbot, QtRasterView(), snap)
    view.set_stacked(True)
    view.refresh()
    assert [view.rows_per_neuron(n) for n in ("conv1", "fc1", "output")] == [1, 1, 3]
    assert view.blocks == [("conv1", 0, 48), ("fc1", 49, 12), ("output", 62, 5)]
    img = view.codes()
    assert img.shape[0] == 48 + 1 + 12 + 1 + 15
    np.testing.assert_array_equal(img[49:61] == raster_codes.POSITIVE, spikes_of(snap, "fc1", 0).T > 0)
    np.testing.assert_array_equal(img[62:77] == raster_codes.POSITIVE,
                                  np.repeat(spikes_of(snap, "output", 0).T > 0, 3, axis=0))
    assert view.row_to_neuron(49 + 7) == ("fc1", 7) and view.row_to_neuron(62 + 3 * 4 + 2) == ("output", 4)
    assert view.row_to_neuron(61) is None  # the separator


def test_raster_click_emits_layer_and_neuron(qtbot, snap):
    view = shown(qtbot, QtRasterView(), snap, layer="conv1")
    x = float(snap.history.steps[5])
    with qtbot.waitSignal(view.neuron_clicked) as blocker:
        click(qtbot, view, x, 7)
    assert blocker.args == ["conv1", 7]
    view.set_stacked(True)
    view.refresh()
    with qtbot.waitSignal(view.neuron_clicked) as blocker:
        click(qtbot, view, x, 49 + 3)
    assert blocker.args == ["fc1", 3]


def test_raster_highlights_the_cursor_layer(qtbot):
    sim, ann = make_run(10)
    while sim.layers[sim.cursor].layer.name != "fc1":
        sim.step_layer()
    snap = make_snapshot(sim, ann)
    assert snap.cursor_layer == "fc1"
    view = shown(qtbot, QtRasterView(), snap)
    view.set_stacked(True)
    view.refresh()
    img = view.image.image
    fc1 = img[49:61]
    assert not (fc1 == raster_codes.EMPTY).any() and (fc1 == raster_codes.CURSOR).any()
    assert not (img[:48] == raster_codes.CURSOR).any()
    assert "fc1" in view.plot.titleLabel.text


def test_raster_pools_rows_by_spike_density(qtbot, snap):
    view = shown(qtbot, QtRasterView(), snap, layer="conv1")
    view.plot.vb.enableAutoRange(False)
    view.plot.vb.setRange(yRange=(-0.5, 1000), padding=0)  # zoomed out: several rows per pixel
    qtbot.waitUntil(lambda: view._pooling()[0] > 1)
    view.refresh()
    py, px = view._pooling()
    img, full = view.image.image, view.codes()
    assert img.shape == (-(-full.shape[0] // py), -(-full.shape[1] // px))
    np.testing.assert_array_equal(img, raster_codes.pool_codes(full, py, px))
    # every pooled cell with a spike is shaded, none without
    padded = np.zeros((img.shape[0] * py, img.shape[1] * px), np.uint8)
    padded[:full.shape[0], padded.shape[1] - full.shape[1]:] = full
    any_spike = (padded == raster_codes.POSITIVE).reshape(img.shape[0], py, img.shape[1], px).any(axis=(1, 3))
    np.testing.assert_array_equal(img >= raster_codes.POSITIVE_RAMP, any_spike)


def test_pooled_shade_follows_density_and_keeps_single_and_negative_spikes():
    P, N, E = raster_codes.POSITIVE, raster_codes.NEGATIVE, raster_codes.EMPTY
    codes = np.full((12, 8), E, np.uint8)
    codes[0:4, 0:4] = P  # a full cell
    codes[0, 4] = P  # one spike in 16
    codes[4:8, 4:8] = N  # all negative
    codes[8:12] = P
    codes[9] = raster_codes.SEPARATOR  # a separator row (a whole row) among spikes
    out = raster_codes.pool_codes(codes, 4, 4)
    assert out[0, 0] == P  # fully dense: the spike colour itself
    assert out[0, 1] == raster_codes.POSITIVE_RAMP  # one spike: the dimmest shade, still visible
    assert out[1, 1] == N and out[1, 0] == E
    assert (out[2] == raster_codes.SEPARATOR).all()
    half = np.full((4, 4), E, np.uint8)
    half[::2] = P
    shade = raster_codes.pool_codes(half, 4, 4)[0, 0]
    assert raster_codes.POSITIVE_RAMP < shade < P
    brightness = raster_codes.LUT[raster_codes.POSITIVE_RAMP:raster_codes.POSITIVE + 1].sum(axis=1)
    assert np.all(np.diff(brightness) > 0)  # denser is brighter
    assert raster_codes.pool_codes(np.full((4, 4), raster_codes.CURSOR, np.uint8), 2, 2).tolist() == [[1, 1], [1, 1]]


def test_raster_shows_the_step_in_progress_as_a_marked_last_column(qtbot):
    sim, ann = make_run(10)
    while sim.layers[sim.cursor].layer.name != "output":  # conv1 and fc1 advanced, output not
        sim.step_layer()
    snap = make_snapshot(sim, ann)
    view = shown(qtbot, QtRasterView(), snap)
    view.set_stacked(True)
    view.refresh()
    codes = view.codes()
    assert codes.shape[1] == snap.history.n_steps + 1
    column = codes[:, -1]
    for name, first, n in view.blocks:
        expected = snap.layer(name).spikes[0].reshape(-1)
        part = column[first:first + n]
        if name == "output":  # still to advance this step: nothing yet (cursor background)
            assert (part == raster_codes.CURSOR).all()
        else:
            np.testing.assert_array_equal(part == raster_codes.POSITIVE, expected > 0)
            np.testing.assert_array_equal(part == raster_codes.NOW, expected == 0)
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.right() == pytest.approx(snap.t + 1.5)
    assert f"step {snap.t + 1} in progress" in view._status.text()
    assert view.now_line.isVisible() and view.now_line.value() == pytest.approx(snap.t + 0.5)
    # between timesteps there is no such column
    sim.step_layer()
    done = make_snapshot(sim, ann)
    view.set_snapshot(done)
    view.refresh()
    assert view.codes().shape[1] == done.history.n_steps and not (view.codes() == raster_codes.NOW).any()
    assert not view.now_line.isVisible()


def test_raster_step_in_progress_before_the_first_step_completes(qtbot):
    sim, ann = make_run(0)
    sim.step_layer()
    sim.step_layer()  # conv1 advanced in step 1
    snap = make_snapshot(sim, ann)
    view = shown(qtbot, QtRasterView(), snap, layer="conv1")
    assert view.codes().shape == (48, 1)
    np.testing.assert_array_equal(view.codes()[:, 0] == raster_codes.POSITIVE, snap.layer("conv1").spikes[0].reshape(-1) > 0)


# ---- membrane ---------------------------------------------------------------------------------
def test_membrane_add_remove_and_curves(qtbot, snap):
    view = shown(qtbot, QtMembraneView(), snap)
    with qtbot.waitSignal(view.watched_changed) as blocker:
        view.add_neuron("fc1", 3)
    assert blocker.args == [[("fc1", 3)]]
    view.add_neuron("conv1", 10)
    view.add_neuron("fc1", 3)  # already watched: no duplicate
    assert view.watched() == [("fc1", 3), ("conv1", 10)]
    view.set_sample(1)
    view.refresh()
    h = snap.history
    for layer, idx in view.watched():
        x, y = view.curve_data(layer, idx)
        np.testing.assert_array_equal(x, h.steps)
        np.testing.assert_array_equal(y, h[layer].membrane.reshape(h.n_steps, 3, -1)[:, 1, idx])
        sx, sy = view.spike_marks(layer, idx)
        s = h[layer].spikes.reshape(h.n_steps, 3, -1)[:, 1, idx]
        np.testing.assert_array_equal(sx, h.steps[s > 0])
        k = view.watched().index((layer, idx))
        assert np.all(sy == view.mark_level(k, snap.layer(layer).threshold))
        assert np.all(sy > snap.layer(layer).threshold)
    assert "after reset" in view.plot.getAxis("left").labelText

    with qtbot.waitSignal(view.watched_changed) as blocker:
        view.remove_neuron("fc1", 3)
    assert blocker.args == [[("conv1", 10)]]
    with pytest.raises(KeyError):
        view.curve_data("fc1", 3)


@pytest.mark.parametrize("neuron,threshold", [("loihi_cuba", 64 * 64.0), ("stochastic_spiking", None)])
def test_membrane_threshold_line_is_in_the_models_own_units(qtbot, neuron, threshold):
    """LoihiCUBA's membrane is an integer that spikes past vth << 6 (not at 1); Stochastic- and
    PoissonSpiking show their rate as the membrane, which has no threshold: no line, and the
    spike ticks sit above the trace."""
    from tests.view_data import small_network
    from workbench.engine.config import SimConfig
    from workbench.engine.neurons import make_neuron
    from workbench.engine.simulator import Simulator
    from workbench.models.forward import forward

    net = small_network(0)
    x = np.random.default_rng(1).uniform(0.0, 1.0, (1, 4, 4, 1)).astype(np.float32)
    cfg = SimConfig(neuron=make_neuron(neuron), dt=1.0 if neuron == "loihi_cuba" else 0.001,
                    rate_scale=1.0 if neuron == "loihi_cuba" else 300.0)
    sim = Simulator(net, cfg, x)
    sim.run(60)
    snap = make_snapshot(sim, forward(net, x))
    assert snap.layer("fc1").threshold == threshold
    busiest = int(np.argmax(np.abs(sim.layer("fc1").counts.reshape(-1))))
    view = shown(qtbot, QtMembraneView(), snap)
    view.add_neuron("fc1", busiest)
    view.refresh()
    lines = [line for line in view._thresholds.values() if line.isVisible()]
    assert [line.value() for line in lines] == ([] if threshold is None else [threshold])
    sx, sy = view.spike_marks("fc1", busiest)
    _, v = view.curve_data("fc1", busiest)
    assert len(sx) > 0 and np.all(sy > np.max(np.abs(v)))
    label = view.plot.getAxis("left").labelText
    assert label.startswith("rate r, Hz") if threshold is None else label == "membrane v, after reset"


def test_membrane_plots_single_neuron_membranes_as_the_window_sends_them(qtbot):
    """The window's snapshots carry the watched neurons' membranes alone
    (``neuron_membranes``), no layer's whole membranes; the curves are those."""
    snap = snapshot(30, batch=3, history_layers=("fc1", "conv1"), membrane_layers=(),
                    membrane_neurons=(("fc1", 3), ("conv1", 10)))
    assert snap.history["fc1"].membrane is None
    view = shown(qtbot, QtMembraneView(), snap)
    view.add_neuron("fc1", 3)
    view.add_neuron("conv1", 10)
    view.add_neuron("fc1", 4)  # not sent: nothing drawn, and said so
    view.set_sample(2)
    view.refresh()
    for layer, idx in (("fc1", 3), ("conv1", 10)):
        x, y = view.curve_data(layer, idx)
        np.testing.assert_array_equal(x, snap.history.steps)
        np.testing.assert_array_equal(y, snap.neuron_membranes[(layer, idx)][:, 2])
    assert len(view.curve_data("fc1", 4)[0]) == 0 and "not recorded" in view.legend.text()


def test_membrane_legend_click_removes_and_colours_are_distinct(qtbot, snap):
    view = shown(qtbot, QtMembraneView(), snap)
    for i in range(MAX_WATCHED + 1):
        view.add_neuron("conv1", i)
    assert len(view.watched()) == MAX_WATCHED and ("conv1", 0) not in view.watched()
    colours = {view.colour_of(*key) for key in view.watched()}
    assert len(colours) == MAX_WATCHED
    assert "conv1[1]" in view.legend.text()
    for colour in colours:
        assert colour in view.legend.text()
    with qtbot.waitSignal(view.watched_changed):
        view.legend.linkActivated.emit("conv1:1")  # what a click on the entry's link emits
    assert ("conv1", 1) not in view.watched() and "conv1[1]" not in view.legend.text()


# ---- heat map ---------------------------------------------------------------------------------
def test_heatmap_tiles_rates_in_the_layer_shape(qtbot, snap):
    view = shown(qtbot, QtHeatmapView(), layer="conv1")
    view.set_sample(2)
    view.set_snapshot(snap)
    view.refresh()
    grid = view.image.image
    rates = snap.layer("conv1").counts[2] / snap.t  # (4, 4, 3)
    assert grid.shape == (9, 9)  # 2 x 2 tiles of 4 x 4 with a one-cell gap
    for c in range(3):
        tr, tc = divmod(c, 2)
        np.testing.assert_allclose(grid[tr * 5:tr * 5 + 4, tc * 5:tc * 5 + 4], rates[:, :, c], rtol=1e-6)
    assert np.isnan(grid[5:, 5:]).all() and np.isnan(grid[4]).all()  # 4th tile empty, gaps
    assert tuple(view.image.levels) == (0.0, snap.layer("conv1").max_rate)


def test_heatmap_vector_layer_is_near_square_and_click_gives_flat_index(qtbot, snap):
    view = shown(qtbot, QtHeatmapView(), snap, layer="fc1")
    grid = view.image.image
    rates = snap.layer("fc1").counts[0] / snap.t
    assert grid.shape == (3, 4)
    np.testing.assert_allclose(grid.reshape(-1), rates, rtol=1e-6)
    with qtbot.waitSignal(view.neuron_clicked) as blocker:
        click(qtbot, view, 2.5, 1.5)  # row 1, column 2 -> 1 * 4 + 2
    assert blocker.args == ["fc1", 6]

    view.set_selected_layer("conv1")
    view.refresh()
    # channel 2 is the tile at tile-row 1, tile-column 0; cell (h=1, w=2) inside it
    assert view.neuron_at(2.5, 5 + 1.5) == ((1 * 4 + 2) * 3 + 2, (1, 2, 2))
    assert view.neuron_at(4.5, 1.5) is None  # the gap between tiles
    with qtbot.waitSignal(view.neuron_clicked) as blocker:
        click(qtbot, view, 2.5, 6.5)
    assert blocker.args == ["conv1", 20]
    assert "(h=1, w=2, c=2)" in view._hover.text() and "spikes/step" in view._hover.text()


# ---- rates ------------------------------------------------------------------------------------
def test_rates_histogram_and_bars(qtbot, snap):
    view = shown(qtbot, QtRatesView(), snap, layer="fc1")
    edges, counts = view.histogram()
    rates = snap.layer("fc1").counts.reshape(-1) / snap.t
    expected, expected_edges = np.histogram(rates, bins=len(counts), range=(edges[0], edges[-1]))
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == rates.size  # every neuron of every sample
    names, values = view.bar_values()
    assert names == [s.name for s in snap.stats]
    np.testing.assert_allclose(values, [s.mean_rate for s in snap.stats])
    st = snap.stats_for("fc1")
    assert f"{100 * st.silent:.0f}% silent" in view.hist_plot.titleLabel.text


# ---- ANN vs SNN -------------------------------------------------------------------------------
def test_ann_vs_snn_scatter_title_and_r_curves(qtbot):
    sim, ann = make_run(0, batch=2)
    r_hist = {}
    for _ in range(15):
        sim.step()
        for name in ("conv1", "fc1", "output"):
            r_hist.setdefault(name, []).append((sim.t, pearson(ann[name], sim.layer(name).counts)))
    snap = make_snapshot(sim, ann, r_history={k: tuple(v) for k, v in r_hist.items()})
    view = shown(qtbot, QtAnnSnnView(), snap, layer="fc1")
    x, y = view.scatter_data()
    np.testing.assert_allclose(x, ann["fc1"].reshape(-1))
    np.testing.assert_allclose(y, snap.layer("fc1").counts.reshape(-1) / snap.t)  # IF, dt 1: a spike is 1
    st = snap.stats_for("fc1")
    title = view.scatter_plot.titleLabel.text
    assert f"r = {st.r:.3f}" in title and f"{100 * st.saturated:.1f}% saturated" in title
    assert "spike value" in view.scatter_plot.getAxis("left").labelText
    assert "ANN activation" in view.scatter_plot.getAxis("bottom").labelText
    for name, points in r_hist.items():
        cx, cy = view.r_curve(name)
        np.testing.assert_allclose(cx, [p[0] for p in points])
        np.testing.assert_allclose(cy, [p[1] for p in points])


def test_ann_vs_snn_plots_the_output_value_a_spike_carries(qtbot):
    """With rate_scale 4 a spike carries 1/4: the y values are counts * 1/4 / t, on the same
    scale as the ANN activation, and the saturation line is max_rate * 1/4."""
    from tests.view_data import small_network
    from workbench.engine.config import SimConfig
    from workbench.engine.simulator import Simulator
    from workbench.models.forward import forward

    net = small_network()
    x = np.random.default_rng(1).uniform(0.0, 1.0, (2, 4, 4, 1)).astype(np.float32)
    sim = Simulator(net, SimConfig(batch=2, rate_scale=4.0), x)
    sim.run(40)
    snap = make_snapshot(sim, forward(net, x))
    ls = snap.layer("fc1")
    assert ls.output_scale == pytest.approx(0.25)
    view = shown(qtbot, QtAnnSnnView(), snap, layer="fc1")
    _, y = view.scatter_data()
    np.testing.assert_allclose(y, ls.counts.reshape(-1) * 0.25 / 40, rtol=1e-6)
    assert view.saturation.value() == pytest.approx(ls.max_rate * 0.25)
    np.testing.assert_allclose(y, sim.layer("fc1").counts.reshape(-1) * float(sim.layer("fc1").out_scale) / 40,
                               rtol=1e-6)


def test_ann_vs_snn_mid_step_divides_advanced_layers_by_t_plus_one(qtbot):
    sim, ann = make_run(10)
    while sim.layers[sim.cursor].layer.name != "output":
        sim.step_layer()
    snap = make_snapshot(sim, ann)
    view = shown(qtbot, QtAnnSnnView(), snap, layer="fc1")
    _, y = view.scatter_data()
    np.testing.assert_allclose(y, snap.layer("fc1").counts.reshape(-1) / 11)


# ---- accuracy ---------------------------------------------------------------------------------
def test_accuracy_curves_equal_the_snapshot(qtbot):
    sim, ann = make_run(40, batch=4, labels=True, capacity=25)  # the ring has wrapped
    snap = make_snapshot(sim, ann)
    view = shown(qtbot, QtAccuracyView(), layer="fc1")
    view.set_ann_accuracy(0.75)
    view.set_sample(1)
    view.set_snapshot(snap)
    view.refresh()
    x, y = view.accuracy_curve()
    np.testing.assert_array_equal(x, snap.history.steps)
    np.testing.assert_allclose(y, 100 * snap.accuracy)
    assert view.ann_line.value() == pytest.approx(75.0) and view.ann_line.isVisible()
    assert view.chance_line.value() == pytest.approx(100 / 5)
    curves = view.count_curves()
    assert len(curves) == 5
    out = snap.history["output"].spikes.reshape(25, 4, 5)[:, 1, :]
    for k, (cx, cy) in enumerate(curves):
        np.testing.assert_array_equal(cx, snap.history.steps)
        assert cy[-1] == snap.output_counts[1, k]  # ends at the cumulative count
        np.testing.assert_array_equal(np.diff(cy), out[1:, k])  # rises by each step's spikes


def test_accuracy_plot_hidden_without_labels_or_batch(qtbot):
    view = shown(qtbot, QtAccuracyView(), snapshot(10, batch=1, labels=True))
    assert not view.accuracy_visible()
    view.set_snapshot(snapshot(10, batch=2, labels=True))
    view.refresh()
    assert view.accuracy_visible()


# ---- refresh clock ----------------------------------------------------------------------------
VIEWS = [QtRasterView, QtMembraneView, QtHeatmapView, QtRatesView, QtAnnSnnView, QtAccuracyView]


@pytest.mark.parametrize("cls", VIEWS)
def test_hidden_view_skips_repaint_until_shown(qtbot, snap, cls):
    view = cls()
    qtbot.addWidget(view)
    view.set_snapshot(snap)
    qtbot.waitUntil(lambda: not view._timer.isActive())
    assert view.repaint_count == 0
    view.show()
    qtbot.waitUntil(lambda: view.repaint_count == 1)
    view.hide()
    view.set_snapshot(snap)
    qtbot.waitUntil(lambda: not view._timer.isActive())
    assert view.repaint_count == 1


def test_a_snapshot_a_little_early_is_painted_at_once_not_a_frame_later(qtbot, snap):
    """The worker sends 30 snapshots a second on a grid that makes up lateness, so one may come
    up to a tenth of a frame early: a view paints it at once (a full frame's wait, on a coarse
    timer, made it paint 29.4 of 30 a second); closer to the last paint it waits the rest of
    ``MIN_GAP`` of a frame, on a precise timer."""

    class Clock:  # stands in for the QElapsedTimer started at the last paint
        ms = 0

        def isValid(self):
            return True

        def elapsed(self):
            return self.ms

        def start(self):
            self.ms = 0

    view = QtRasterView()
    qtbot.addWidget(view)
    view._since = Clock()
    frame = 1000 / view.MAX_FPS
    for since, wait in ((frame * 0.92, 0), (frame * 0.5, int(view.MIN_GAP * frame) - int(frame * 0.5))):
        view._timer.stop()
        view._since.ms = int(since)
        view.set_snapshot(snap)
        assert view._timer.isActive() and view._timer.interval() == wait
    assert view._timer.timerType() == Qt.TimerType.PreciseTimer
    assert view.MIN_GAP * frame >= 0.9 * frame - 1e-9  # still at most ~MAX_FPS paints a second


def test_bursts_of_snapshots_are_coalesced(qtbot, snap):
    view = shown(qtbot, QtRasterView(), snap)
    before = view.repaint_count
    for _ in range(100):
        view.set_snapshot(snap)
    qtbot.waitUntil(lambda: not view._dirty and not view._timer.isActive())
    assert 1 <= view.repaint_count - before <= 2
