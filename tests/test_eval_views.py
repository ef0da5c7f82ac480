"""The Evaluate dialog (worker thread, live curve, cancel) and the diagnosis panel."""

import numpy as np
import pytest
from PyQt6.QtCore import Qt

import eval_nets as E
from workbench.engine.config import SimConfig
from workbench.engine.diagnosis import diagnose
from workbench.views.qt_diagnosis import QtDiagnosisPanel
from workbench.views.qt_evaluate_dialog import QtEvaluateDialog


@pytest.fixture()
def dialog(qtbot):
    net, x, y = E.normalized()
    dlg = QtEvaluateDialog(net, SimConfig(batch=16), (x, y), steps=30, top_k=2)
    qtbot.addWidget(dlg)
    yield dlg
    dlg.cancel()
    dlg.wait()


def test_dialog_runs_off_the_gui_thread_and_fills_the_curve(qtbot, dialog):
    with qtbot.waitSignals([dialog.evaluated, dialog.diagnosed], timeout=30_000) as blocker:
        dialog.start()
        assert dialog.running and not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.running, timeout=10_000)
    result = dialog.result
    assert result.completed and result.samples == 96 and result.top_k == (1, 2)
    xs, ys = dialog.curve.curve_data(1)
    assert len(xs) == 30 and np.allclose(ys, 100 * result.snn_accuracy)
    assert dialog.curve.curve_data(2)[0] is not None
    assert dialog.curve.ann_line.isVisible() and dialog.curve.ann_line.value() == pytest.approx(100.0)
    assert dialog.curve.chance_line.value() == pytest.approx(25.0)
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()
    assert "96 of 96 samples" in dialog.status.text() and "Diagnosis" in dialog.status.text()
    assert dialog.start_button.isEnabled()
    assert blocker.all_signals_and_args[1].args[0].result is result


def test_cancel_keeps_the_finished_batches(qtbot, dialog):
    dialog.steps.setValue(400)
    with qtbot.waitSignal(dialog.evaluated, timeout=30_000) as blocker:
        dialog.start()
        dialog.cancel()
    result = blocker.args[0]
    assert not result.completed and result.samples < 96 and result.samples % 16 == 0
    assert "cancelled" in dialog.status.text()
    qtbot.waitUntil(lambda: not dialog.running, timeout=10_000)


def test_unlabelled_data_says_so(qtbot):
    net, x, _ = E.normalized()
    dlg = QtEvaluateDialog(net, SimConfig(), (x[:10], None), steps=5)
    qtbot.addWidget(dlg)
    assert "no labels" in dlg.status.text()
    with qtbot.waitSignal(dlg.evaluated, timeout=30_000):
        dlg.start()
    dlg.wait()
    assert not dlg.curve.ann_line.isVisible()


@pytest.fixture(scope="module")
def planted():
    net, x, y = E.over_scaled("fc2", 5.0)
    return diagnose(net, SimConfig(batch=48), x, y, steps=100)


def test_panel_lists_findings_and_links_layers(qtbot, planted):
    panel = QtDiagnosisPanel()
    qtbot.addWidget(panel)
    panel.set_diagnosis(planted)
    rows = panel.rows()
    assert rows[0] == ("high", "fc2", "saturated") and len(rows) == len(planted.findings)
    assert "Try:" in panel.details.text() and "threshold" in panel.details.text()
    item = panel.tree.topLevelItem(0)
    with qtbot.waitSignal(panel.layer_selected, timeout=2_000) as blocker:
        rect = panel.tree.visualItemRect(item)
        qtbot.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == ["fc2"]
    with qtbot.assertNotEmitted(panel.layer_selected):
        panel.select_layer("fc3")
    assert panel.finding(panel.tree.currentItem()).layer == "fc3"
    panel.set_diagnosis(None)
    assert panel.rows() == [] and "No diagnosis" in panel.summary.text()
