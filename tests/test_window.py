"""The window: what it shows equals what the engine holds; keys, settings, layout, closing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtWidgets import QMessageBox

from workbench.analysis.layer_stats import simulator_stats
from workbench.engine.simulator import Simulator
from workbench.models.forward import forward
from workbench.views import raster_codes
from workbench.views.app import build_window
from workbench.views.qt_network_table import CURSOR_MARK, _fmt
from workbench.views.qt_settings import INVALID_STYLE

LONG = 60_000


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "workbench.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def errors():
    return []


@pytest.fixture
def window(qtbot, settings, errors):
    session, win = build_window(settings=settings, error_handler=lambda m, d: errors.append((m, d)))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: session.snapshot is not None, timeout=LONG)
    yield win
    win.close()
    assert not session._thread.isRunning()


def wait_t(qtbot, session, t, cursor=0):
    qtbot.waitUntil(lambda: session.snapshot is not None and session.snapshot.t == t
                    and session.snapshot.cursor == cursor and not session.running, timeout=LONG)


def engine_stats(session, steps):
    x = session.samples.x[session.batch_start:session.batch_start + session.config.batch]
    sim = Simulator(session.network, session.config, x)
    sim.run(steps)
    return {s.name: s for s in simulator_stats(sim, forward(session.network, x))}


def test_demo_opens_with_title_table_and_input(window, errors):
    s = window.session
    assert "digits_cnn" in window.windowTitle()
    assert [window.table.item(r, 0).text() for r in range(window.table.rowCount())] == [l.name for l in s.network.layers]
    np.testing.assert_array_equal(window.input_view.image.image, s.samples.x[0, :, :, 0])
    assert window.input_view.image.axisOrder == "row-major" and window.input_view.view.yInverted()
    assert f"true: <b>{int(s.samples.y[0])}</b>" in window.input_view.caption.text()
    assert errors == []


def test_step_keys_update_table_with_engine_stats(qtbot, window):
    s = window.session
    for _ in range(4):
        qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.keyClick(window, Qt.Key.Key_S)
    wait_t(qtbot, s, 5)
    for name, stats in engine_stats(s, 5).items():
        assert window.table.cell_text(name, "mean rate") == _fmt(stats.mean_rate)
        assert window.table.cell_text(name, "silent %") == _fmt(stats.silent, 100, 1)
        assert window.table.cell_text(name, "r") == _fmt(stats.r)
    assert window.statusBar().time_label.text() == "t = 5"


def test_step_layer_highlights_the_cursor(qtbot, window):
    s = window.session
    qtbot.keyClick(window, Qt.Key.Key_L)
    qtbot.keyClick(window, Qt.Key.Key_L)
    wait_t(qtbot, s, 0, cursor=2)
    name = s.network.layers[2].name
    assert window.table.cursor_layer == name == s.snapshot.cursor_layer
    row = window.table.row_of(name)
    assert window.table.item(row, 0).text() == CURSOR_MARK + name and window.table.item(row, 0).font().bold()
    assert name in window.statusBar().cursor_label.text()
    window.controls.action("reset").trigger()
    wait_t(qtbot, s, 0)
    assert window.table.cursor_layer is None and window.table.item(row, 0).text() == name


def test_play_pause_with_space(qtbot, window):
    s = window.session
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: s.running and s.snapshot.t > 10, timeout=LONG)
    assert "Pause" in window.controls.action("play").text()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not s.running and not s.snapshot.running, timeout=LONG)
    assert "Play" in window.controls.action("play").text()


def test_change_neuron_type_in_settings(qtbot, window):
    s, panel = window.session, window.settings_panel
    panel.neuron_type.setCurrentText("lif")
    assert "tau_rc" in panel._params and panel.apply_button.isEnabled()
    with qtbot.waitSignal(s.config_changed, timeout=LONG):
        panel.apply_button.click()
    assert s.config.neuron.name == "lif"
    qtbot.waitUntil(lambda: s.snapshot.layer("fc1").model.startswith("lif"), timeout=LONG)


def test_invalid_parameter_is_marked_and_not_run(qtbot, window):
    s, panel = window.session, window.settings_panel
    before = s.config
    field = panel.param_widget("threshold")
    qtbot.keyClicks(field, "x")
    assert INVALID_STYLE in field.styleSheet() and "threshold" in panel.message.text()
    field.setText("-1")
    panel.validate()
    assert "threshold" in panel.message.text() and "> 0" in panel.message.text()
    assert not panel.apply_button.isEnabled()
    panel.apply()
    assert s.config is before and not s.running
    field.setText("0.5")
    panel.validate()
    assert field.styleSheet() == "" and panel.apply_button.isEnabled()


def test_override_table_sets_per_layer_type(qtbot, window):
    s, panel = window.session, window.settings_panel
    row = [panel.overrides.cellWidget(r, 0).text() for r in range(panel.overrides.rowCount())].index("fc1")
    panel.overrides.cellWidget(row, 1).setCurrentText("lif")
    assert "dt" in panel.message.text() and INVALID_STYLE in panel.dt.styleSheet()  # IF's dt 1.0 > tau
    panel.dt.setText("0.001")
    panel.validate()
    with qtbot.waitSignal(s.config_changed, timeout=LONG):
        panel.apply()
    assert s.config.overrides["fc1"].name == "lif" and s.config.neuron.name == "if"
    qtbot.waitUntil(lambda: s.snapshot.layer("fc1").model.startswith("lif"), timeout=LONG)


def test_selecting_a_row_selects_the_layer_everywhere(qtbot, window):
    s = window.session
    with qtbot.waitSignal(s.layer_selected):
        window.table.selectRow(window.table.row_of("fc1"))
    assert s.selected_layer == "fc1"
    for view in window.views.values():
        assert view.selected_layer == "fc1"
    s.step()
    wait_t(qtbot, s, 1)
    assert "fc1" in s.snapshot.history.layers


def test_sample_spin_box_selects_the_sample(qtbot, window):
    s = window.session
    window.input_view.index.setValue(5)
    qtbot.waitUntil(lambda: s.batch_start == 5 and s.snapshot.labels[0] == s.samples.y[5], timeout=LONG)
    np.testing.assert_array_equal(window.input_view.image.image, s.samples.x[5, :, :, 0])


def test_close_mid_run_stops_the_worker(qtbot, window):
    s = window.session
    s.play()
    qtbot.waitUntil(lambda: s.running, timeout=LONG)
    window.close()
    assert not s._thread.isRunning()


def test_layout_and_recent_files_are_remembered(qtbot, settings, tmp_path, window):
    window.docks["input"].hide()
    model = tmp_path / "copy.network.npz"
    window.session.network.save(model)
    with qtbot.waitSignal(window.session.network_changed, timeout=LONG):
        window.open_model(model)
    window.close()
    session, again = build_window(demo=False, settings=settings, error_handler=lambda m, d: None)
    qtbot.addWidget(again)
    again.show()
    assert again.docks["input"].isHidden() and not again.docks["settings"].isHidden()
    assert again.recent_models()[0] == str(model.resolve())
    assert [a.text() for a in again.recent_menu.actions()][0] == model.name
    again.close()


def test_default_error_dialog_is_non_blocking_with_details(qtbot, settings):
    session, win = build_window(demo=False, settings=settings)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(session.error, timeout=LONG):
        session.open_model("/no/such/model.keras")
    qtbot.waitUntil(lambda: any(b.isVisible() for b in win.findChildren(QMessageBox)), timeout=LONG)
    box = next(b for b in win.findChildren(QMessageBox) if b.isVisible())
    assert "model.keras" in box.text() and "Traceback" in box.detailedText()
    box.close()


# ---- wiring of the views -----------------------------------------------------------------------
def test_all_layers_toggle_asks_the_session_for_every_layer(qtbot, window):
    s, raster = window.session, window.views["raster"]
    raster._all.setChecked(True)
    assert s.history_all
    s.step()
    wait_t(qtbot, s, 1)
    assert set(s.snapshot.history.layers) == {l.name for l in s.network.neuron_layers}
    raster._all.setChecked(False)
    assert not s.history_all


def test_step_in_progress_is_the_rasters_last_column(qtbot, window):
    s, raster = window.session, window.views["raster"]
    s.step()
    s.step_layer()
    s.step_layer()  # input and conv1 advanced in step 2
    wait_t(qtbot, s, 1, cursor=2)
    raster.refresh()
    codes = raster.codes()
    assert raster.blocks[0][0] == "conv1" and codes.shape[1] == 2
    np.testing.assert_array_equal(codes[:, -1] == raster_codes.POSITIVE, s.snapshot.layer("conv1").spikes[0].reshape(-1) > 0)


def test_batch_shows_ann_accuracy_and_the_chosen_sample_everywhere(qtbot, window):
    s, accuracy = window.session, window.views["accuracy"]
    with qtbot.waitSignal(s.ann_accuracy_changed, timeout=LONG):
        s.select_batch(0, 8)
    x, y = s.samples.x[:8], s.samples.y[:8]
    ann = forward(s.network, x)[s.network.output_layer.name]
    expected = float(np.mean(ann.argmax(axis=1) == y))
    assert s.ann_accuracy == pytest.approx(expected)
    window.docks["accuracy"].raise_()
    s.step()
    qtbot.waitUntil(lambda: s.snapshot.batch == 8 and s.snapshot.t == 1, timeout=LONG)
    qtbot.waitUntil(lambda: window.input_view.shown.isVisibleTo(window.input_view), timeout=LONG)
    accuracy.refresh()
    assert accuracy.ann_line.isVisible() and accuracy.ann_line.value() == pytest.approx(100 * expected)
    window.input_view.shown.setValue(3)
    assert all(view.sample(s.snapshot) == 3 for view in window.views.values())
    np.testing.assert_array_equal(window.input_view.image.image, s.samples.x[3, :, :, 0])
    assert f"true: <b>{int(s.samples.y[3])}</b>" in window.input_view.caption.text()
    with qtbot.waitSignal(s.ann_accuracy_changed, timeout=LONG):
        s.select_batch(0, 1)
    qtbot.waitUntil(lambda: s.snapshot.batch == 1, timeout=LONG)
    assert not window.input_view.shown.isVisibleTo(window.input_view) and window.input_view.shown_sample() == 0


def test_rate_scale_setting_is_checked_and_reaches_the_engine(qtbot, window):
    s, panel = window.session, window.settings_panel
    assert panel.rate_scale.text() == "1.0"
    for bad in ("x", "-2", "0"):
        panel.rate_scale.setText(bad)
        panel.validate()
        assert INVALID_STYLE in panel.rate_scale.styleSheet() and "rate_scale" in panel.message.text()
        assert not panel.apply_button.isEnabled()
    panel.rate_scale.setText("4")
    panel.validate()
    with qtbot.waitSignal(s.config_changed, timeout=LONG):
        panel.apply()
    assert s.config.rate_scale == 4.0
    s.step()
    qtbot.waitUntil(lambda: s.snapshot.t == 1 and s.snapshot.layer("fc1").output_scale == pytest.approx(0.25),
                    timeout=LONG)


def test_dock_tab_behind_another_does_not_paint(qtbot, window):
    s = window.session
    window.docks["heatmap"].raise_()
    qtbot.waitUntil(lambda: window.views["heatmap"].on_screen() and not window.views["rates"].on_screen())
    rates, heatmap = window.views["rates"], window.views["heatmap"]
    before = rates.repaint_count, heatmap.repaint_count
    s.step()
    wait_t(qtbot, s, 1)
    qtbot.waitUntil(lambda: heatmap.repaint_count > before[1], timeout=LONG)
    assert rates.repaint_count == before[0] and rates._dirty
    window.docks["rates"].raise_()
    qtbot.waitUntil(lambda: rates.repaint_count > before[0] and not rates._dirty, timeout=LONG)


def test_batch_larger_than_the_data_is_refused_naming_batch(qtbot, window, errors):
    s, panel = window.session, window.settings_panel
    n = len(s.samples)
    assert panel.n_samples == n
    before = s.config
    panel.batch.setValue(n + 1)
    panel.validate()
    assert INVALID_STYLE in panel.batch.styleSheet() and panel.message.text().startswith("batch:")
    assert not panel.apply_button.isEnabled()
    panel.apply()
    assert s.config is before
    s.set_config(before.replace(batch=n + 1))  # the session refuses it too, naming the field
    assert s.config is before and errors and errors[-1][0].startswith("batch:")
    panel.batch.setValue(n)
    panel.validate()
    assert panel.batch.styleSheet() == "" and panel.message.text() == ""


def test_normalizing_shows_a_percentage_and_cancel_keeps_the_settings(qtbot, window, monkeypatch):
    """The status bar's bar turns into a percentage as the job reports, with a Cancel button
    (Esc); cancelling leaves the network and puts the percentile field back."""
    import threading

    from workbench.views import loaders

    s, status = window.session, window.statusBar()
    shown = []
    s.job_progress.connect(lambda f: shown.append((status.progress.maximum(), status.progress.value(),
                                                   status.cancel_button.isVisible())))
    with qtbot.waitSignal(s.network_changed, timeout=LONG):
        window.settings_panel.percentile.setValue(99.0)
        window.settings_panel.apply()
    assert shown and shown[-1] == (100, 100, True)
    qtbot.waitUntil(lambda: not status.progress.isVisible() and not status.cancel_button.isVisible(), timeout=LONG)

    go_on, original = threading.Event(), loaders.normalized

    def held(*args, on_progress):  # the worker waits here until the test has clicked Cancel
        on_progress(0, 1)
        go_on.wait(30)
        return original(*args, on_progress=on_progress)

    monkeypatch.setattr(loaders, "normalized", held)
    network = s.network
    window.settings_panel.percentile.setValue(97.0)
    window.settings_panel.apply()
    qtbot.waitUntil(lambda: status.cancel_button.isVisible() and status.progress.maximum() == 100, timeout=LONG)
    assert status.progress.value() == 0 and status.progress.isTextVisible()
    qtbot.mouseClick(status.cancel_button, Qt.MouseButton.LeftButton)
    go_on.set()
    qtbot.waitUntil(lambda: "Cancelled" in status.currentMessage(), timeout=LONG)
    assert s.network is network and window.settings_panel.percentile.value() == 99.0
    qtbot.waitUntil(lambda: not status.cancel_button.isVisible(), timeout=LONG)


def test_a_busy_message_stays_until_the_work_is_done_then_goes(window):
    """The first compile takes ~20 s: its message must not time out (15 s for notes) while the
    bar still runs, and must not stay once the work is done."""
    s, status = window.session, window.statusBar()
    s._on_message("status", "Compiling the engine's kernels…")
    assert status.currentMessage() == "Compiling the engine's kernels…" and status.progress.isVisible()
    assert not status.cancel_button.isVisible()  # not a job: nothing to cancel
    s._on_message("status", "")
    assert status.currentMessage() == "" and not status.progress.isVisible()
    s.status.emit("A note.")  # notes (not busy) are left to their timeout
    s._on_message("status", "")
    assert status.currentMessage() == "A note."


def test_an_onnx_model_opens_and_is_remembered(qtbot, settings, window):
    from workbench.views.qt_main_window import MODEL_FILTER

    assert "*.onnx" in MODEL_FILTER.split(";;")[0]
    model = Path(__file__).resolve().parent.parent / "resources" / "onnx" / "mobilenet.onnx"
    with qtbot.waitSignal(window.session.network_changed, timeout=LONG):
        window.open_model(model)
    assert window.session.network.name == "mobilenet"
    assert window.session.network.input_shape == (32, 32, 3)
    assert window.recent_models()[0] == str(model.resolve())
