"""The window's trace features: a trace file viewed on its own, compared with another trace
(the live run's or an opened one), and bad files reported by name without breaking the window."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PyQt6.QtCore import QSettings

from tests.test_trace_playback import planted
from tests.view_data import make_run
from workbench.analysis.layer_stats import simulator_stats
from workbench.exchange.trace_io import save_trace
from workbench.views import raster_codes
from workbench.views.app import build_window
from workbench.views.qt_network_table import _fmt

LONG = 60_000


@pytest.fixture
def errors():
    return []


def make_window(qtbot, tmp_path, errors, demo):
    settings = QSettings(str(tmp_path / "workbench.ini"), QSettings.Format.IniFormat)
    session, win = build_window(demo=demo, settings=settings, error_handler=lambda m, d: errors.append((m, d)))
    qtbot.addWidget(win)
    win.show()
    return win


@pytest.fixture
def window(qtbot, tmp_path, errors):
    win = make_window(qtbot, tmp_path, errors, demo=False)
    yield win
    win.close()
    assert not win.session._thread.isRunning()


@pytest.fixture(scope="module")
def run():
    """A real run of a small network: (simulator, its trace with ANN activations)."""
    sim, ann = make_run(30, batch=2, labels=True)
    return sim, sim.trace(ann=ann)


def open_trace(qtbot, win, path):
    mode = win.trace_mode
    with qtbot.waitSignal(mode.entered, timeout=LONG):
        mode.open_trace(path)
    return mode.trace_session


def settled(qtbot, view):
    qtbot.waitUntil(lambda: not view._dirty, timeout=LONG)
    view.refresh()


def test_open_trace_views_show_the_file(qtbot, window, run, tmp_path, errors):
    sim, trace = run
    ann = dict(trace.ann)
    path = tmp_path / "run.npz"
    save_trace(trace, path)
    ts = open_trace(qtbot, window, path)
    assert window.trace_mode.active and not window.settings_panel.isEnabled()
    assert window.trace_mode.banner.text() == "viewing trace run.npz (read-only)"
    assert "read-only" in window.docks["settings"].windowTitle()
    ts.run_to(30)
    assert ts.snapshot.t == 30 and window.statusBar().time_label.text() == "t = 30"
    assert window.trace_mode.slider.value() == 30
    raster, heat = window.views["raster"], window.views["heatmap"]
    window.table.selectRow(window.table.row_of("fc1"))
    assert ts.selected_layer == "fc1" and raster.selected_layer == "fc1"
    settled(qtbot, raster)
    spikes = trace["fc1"].spikes[:, 0].reshape(30, -1).T  # neurons x steps, sample 0
    np.testing.assert_array_equal(raster.codes() == raster_codes.POSITIVE, spikes > 0)
    np.testing.assert_array_equal(raster.codes() == raster_codes.EMPTY, spikes == 0)
    settled(qtbot, heat)
    rates = sim.layer("fc1").counts[0].reshape(-1) / 30
    np.testing.assert_allclose(np.sort(heat.grid()[np.isfinite(heat.grid())]), np.sort(rates))
    live = {st.name: st for st in simulator_stats(sim, ann)}
    for column, value in (("mean rate", _fmt(live["fc1"].mean_rate)), ("r", _fmt(live["fc1"].r))):
        assert window.table.cell_text("fc1", column) == value
    window.controls.action("reset").trigger()
    assert ts.snapshot.t == 0
    window.controls.action("step").trigger()
    window.controls.action("step").trigger()
    assert ts.snapshot.t == 2 and window.trace_mode.slider.value() == 2
    window.trace_mode.slider.setValue(17)
    assert ts.snapshot.t == 17
    window.controls.action("play").trigger()  # replays to the end
    qtbot.waitUntil(lambda: not ts.running and ts.snapshot.t == 30, timeout=LONG)
    window.trace_mode.close_trace()
    assert not window.trace_mode.active and window.settings_panel.isEnabled()
    assert not window.trace_mode.toolbar.isVisible() and errors == []


def test_compare_in_trace_mode_jumps_to_the_planted_divergence(qtbot, window, run, tmp_path, errors):
    _, a = run
    save_trace(a, tmp_path / "a.npz")
    save_trace(planted(a, "fc1", 13, 1, 5, "spikes"), tmp_path / "b.npz")
    ts = open_trace(qtbot, window, tmp_path / "a.npz")
    mode = window.trace_mode
    with qtbot.waitSignal(mode.compared, timeout=LONG):
        mode.compare(tmp_path / "b.npz")
    d = mode.overlay.first
    assert (d.step, d.layer, d.sample, d.neuron) == (13, "fc1", 1, 5)
    assert ts.snapshot.t == 13 and ts.selected_layer == "fc1"
    assert window.table.selected_layer() == "fc1"
    raster, heat, membrane = (window.views[k] for k in ("raster", "heatmap", "membrane"))
    assert raster.sample() == 1 and ("fc1", 5) in membrane.watched()
    settled(qtbot, raster)
    divergent = (raster.codes() == raster_codes.DIVERGENT).any(axis=1)
    assert np.flatnonzero(divergent).tolist() == [5]
    assert raster.first_line.isVisible() and raster.first_line.value() == 13
    x, y = raster.div_marks.getData()
    assert x.tolist() == [13] and y.tolist() == [5]
    settled(qtbot, heat)
    assert heat.outlined().tolist() == [5]
    settled(qtbot, membrane)
    x, y = membrane.reference_data("fc1", 5)
    np.testing.assert_array_equal(x, np.arange(1, 14))
    np.testing.assert_array_equal(y, a["fc1"].membrane[:13, 1, 5])
    assert "step 13" in mode.report.toPlainText() and "fc1" in mode.report.toPlainText()
    ts.seek(12)  # before the divergence: nothing marked yet
    settled(qtbot, raster)
    assert not (raster.codes() == raster_codes.DIVERGENT).any()
    mode.clear_comparison()
    assert mode.overlay is None and not raster.first_line.isVisible()
    assert errors == []


def bad_files(tmp_path, trace):
    good = tmp_path / "good.npz"
    save_trace(trace, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    pickled = tmp_path / "pickled.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(pickled, "w") as zout:
        for item in zin.namelist():
            if item != "layer0.spikes.npy":
                zout.writestr(item, zin.read(item))
        import io

        buf = io.BytesIO()
        np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
        zout.writestr("layer0.spikes.npy", buf.getvalue())
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a trace\n")
    wrong_shape = tmp_path / "wrong_shape.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(wrong_shape, "w") as zout:
        for item in zin.namelist():
            if item != "layer1.spikes.npy":
                zout.writestr(item, zin.read(item))
        buf = io.BytesIO()
        np.save(buf, np.zeros((3, 2, 7), np.int16))
        zout.writestr("layer1.spikes.npy", buf.getvalue())
    return good, [(truncated, ""), (pickled, "layer0.spikes"), (text, ""), (wrong_shape, "spikes")]


def test_bad_files_name_the_file_and_the_window_stays_usable(qtbot, window, run, tmp_path, errors):
    good, bad = bad_files(tmp_path, run[1])
    mode = window.trace_mode
    for path, field in bad:
        errors.clear()
        mode.open_trace(path)
        qtbot.waitUntil(lambda: bool(errors) and not mode.busy(), timeout=LONG)
        message = errors[0][0]
        assert path.name in message and field in message, message
        assert not mode.active
    ts = open_trace(qtbot, window, good)
    for path, field in bad:
        errors.clear()
        mode.compare(path)
        qtbot.waitUntil(lambda: bool(errors) and not mode.busy(), timeout=LONG)
        assert path.name in errors[0][0] and mode.overlay is None
    window.controls.action("step").trigger()
    assert ts.snapshot.t == 1 and mode.active


def test_compare_the_live_run_with_a_trace(qtbot, tmp_path, errors):
    win = make_window(qtbot, tmp_path, errors, demo=True)
    s, mode = win.session, win.trace_mode
    qtbot.waitUntil(lambda: s.snapshot is not None, timeout=LONG)
    s.run_to(20)
    qtbot.waitUntil(lambda: s.snapshot.t == 20 and not s.running, timeout=LONG)
    with qtbot.waitSignal(s.trace_ready, timeout=LONG) as got:
        s.request_trace()
    live = got.args[0]
    assert live.n_steps == 20
    save_trace(planted(live, "fc1", 7, 0, 3, "spikes"), tmp_path / "b.npz")
    with qtbot.waitSignal(mode.compared, timeout=LONG):
        mode.compare(tmp_path / "b.npz")
    d = mode.overlay.first
    assert (d.step, d.layer, d.neuron) == (7, "fc1", 3)
    qtbot.waitUntil(lambda: s.selected_layer == "fc1" and "fc1" in s.snapshot.history.layers, timeout=LONG)
    assert ("fc1", 3) in win.views["membrane"].watched()
    raster = win.views["raster"]
    settled(qtbot, raster)
    assert np.flatnonzero((raster.codes() == raster_codes.DIVERGENT).any(axis=1)).tolist() == [3]
    assert errors == []
    win.close()
    assert not s._thread.isRunning()


def test_compare_pairs_renamed_layers_and_the_input_shows_the_divergent_sample(qtbot, tmp_path, errors):
    import dataclasses

    from workbench.engine.trace import Trace
    from workbench.views.qt_trace_mode import parse_mapping

    win = make_window(qtbot, tmp_path, errors, demo=True)
    s, mode = win.session, win.trace_mode
    qtbot.waitUntil(lambda: s.snapshot is not None, timeout=LONG)
    s.select_batch(0, 2)
    qtbot.waitUntil(lambda: s.snapshot is not None and s.snapshot.batch == 2, timeout=LONG)
    s.run_to(20)
    qtbot.waitUntil(lambda: s.snapshot.t == 20 and not s.running, timeout=LONG)
    with qtbot.waitSignal(s.trace_ready, timeout=LONG) as got:
        s.request_trace()
    b = planted(got.args[0], "fc1", 7, 1, 3, "spikes")
    renamed = {("dense_1" if n == "fc1" else n): dataclasses.replace(lt, name="dense_1" if n == "fc1" else n)
               for n, lt in b.layers.items()}
    save_trace(Trace(renamed, b.steps, b.predictions, b.labels, {("dense_1" if k == "fc1" else k): v
                                                                 for k, v in b.ann.items()}), tmp_path / "b.npz")
    assert parse_mapping("fc1=dense_1, conv1=conv1") == {"fc1": "dense_1", "conv1": "conv1"}
    with qtbot.waitSignal(mode.compared, timeout=LONG):
        mode.compare(tmp_path / "b.npz", parse_mapping("fc1=dense_1"))
    d = mode.overlay.first
    assert (d.step, d.layer, d.sample, d.neuron) == (7, "fc1", 1, 3)
    assert win.input_view.shown.value() == 1 and win.views["heatmap"].sample() == 1
    assert not win.statusBar().currentMessage().startswith("Comparing")
    assert errors == []
    win.close()
