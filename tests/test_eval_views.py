"""The Evaluate dialog (worker thread, live curve, cancel) and the diagnosis panel."""

import numpy as np
import pytest
from PyQt6.QtCore import Qt

import eval_nets as E
from workbench.engine.config import SimConfig
from workbench.analysis.diagnosis import Diagnosis, Finding, diagnose
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


def test_dialog_runs_off_the_gui_thread_and_fills_the_curve(qtbot, dialog, tmp_path):
    with qtbot.waitSignals([dialog.evaluated, dialog.diagnosed], timeout=30_000) as blocker:
        dialog.start()
        assert dialog.running and not dialog.start_button.isEnabled()
    qtbot.waitUntil(dialog.start_button.isEnabled, timeout=10_000)
    result = dialog.result
    assert result.completed and result.samples == 96 and result.top_k == (1, 2)
    xs, ys = dialog.curve.curve_data(1)
    assert len(xs) == 30 and np.allclose(ys, 100 * result.snn_accuracy)
    assert dialog.curve.curve_data(2)[0] is not None
    assert dialog.curve.ann_line.isVisible() and dialog.curve.ann_line.value() == pytest.approx(100.0)
    assert dialog.curve.chance_line.value() == pytest.approx(25.0)
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()
    assert "96 of 96 samples" in dialog.status.text() and "Diagnosis" in dialog.status.text()
    assert blocker.all_signals_and_args[1].args[0].result is result
    assert dialog.save_button.isEnabled()
    import json

    dialog.save(tmp_path / "eval.json")
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["result"]["samples"] == 96 and len(saved["diagnosis"]["findings"]) == len(dialog.diagnosis.findings)
    dialog.save(tmp_path / "eval.txt")
    assert (tmp_path / "eval.txt").read_text().strip()


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


def test_window_tools_menu_diagnose_fills_the_docked_panel(qtbot, tmp_path):
    """Tools > Diagnose on the demo: the dialog runs, the panel fills, a finding's layer becomes
    the session's selected layer; closing the window mid-run stops the evaluation thread."""
    from PyQt6.QtCore import QSettings

    from workbench.views.app import build_window

    settings = QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat)
    errors = []
    session, win = build_window(settings=settings, error_handler=lambda m, d: errors.append(m))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: session.snapshot is not None, timeout=60_000)
    tools = win.eval_tools
    titles = [a.text() for a in win.menuBar().actions()]
    assert "&Tools" in titles and tools.dock in win.docks.values()
    dlg = tools.open_dialog(start=False)
    dlg.count.setValue(64)
    dlg.steps.setValue(40)
    with qtbot.waitSignal(dlg.diagnosed, timeout=60_000) as blocker:
        dlg.start()
    assert tools.panel.diagnosis is blocker.args[0] and tools.dock.isVisible()
    diag = blocker.args[0]  # the demo is healthy: add a finding to click
    extra = Finding("conv2", "silent", 2, "layer conv2: planted", "try this", {})
    tools.panel.set_diagnosis(Diagnosis(diag.findings + (extra,), diag.result, diag.percentile))
    row = next(i for i in range(tools.panel.tree.topLevelItemCount())
               if tools.panel.tree.topLevelItem(i).text(1) == "conv2")
    with qtbot.waitSignal(session.layer_selected, timeout=5_000) as sel:
        rect = tools.panel.tree.visualItemRect(tools.panel.tree.topLevelItem(row))
        qtbot.mouseClick(tools.panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sel.args == ["conv2"] and session.selected_layer == "conv2"
    tools.apply({"steps": 250, "rate_scale": 2.0}, rerun=False)  # Apply suggestion, in the Settings
    assert session.config.steps == 250 and session.config.rate_scale == 2.0
    assert win.settings_panel.steps.value() == 250 and "Out of date" in tools.panel.summary.text()
    assert any("Applied from the diagnosis: steps = 250" in m for m in win.messages)
    dlg.steps.setValue(2000)
    dlg.start()
    assert dlg.running
    win.close()
    assert not dlg.running and errors == []


def test_dialog_compares_conversion_variants(qtbot):
    """'compare variants': each remedy spec on the same samples, one curve each, the ANN line
    (IF everywhere with a spike readout: the membrane readout of the default plan answers this
    MLP from step 2 already, leaving the half-threshold start nothing to win)."""
    net, x, y = E.normalized()
    dialog = QtEvaluateDialog(net, SimConfig(batch=16, auto_neurons=False, readout="spikes"), (x, y), steps=30,
                              top_k=2)
    qtbot.addWidget(dialog)
    dialog.steps.setValue(8)
    dialog.variants.setText("baseline, half, half+calib8")
    with qtbot.waitSignal(dialog.evaluated, timeout=60_000):
        dialog.start()
    qtbot.waitUntil(dialog.start_button.isEnabled, timeout=10_000)
    assert list(dialog.variant_results) == ["baseline", "half", "half+calib8"]
    for name, result in dialog.variant_results.items():
        xs, ys = dialog.curve.curve_data(f"variant:{name}")
        assert len(xs) == 8 and np.allclose(ys, 100 * result.snn_accuracy)
    base, half = dialog.variant_results["baseline"], dialog.variant_results["half"]
    assert half.snn_accuracy[1] > base.snn_accuracy[1]  # the half-threshold start answers sooner
    assert dialog.curve.ann_line.value() == pytest.approx(100.0)
    assert dialog.result is base
    dialog.cancel()
    dialog.wait()


def test_dialog_refuses_an_unknown_variant(qtbot, dialog):
    dialog.variants.setText("half, warp")
    dialog.start()
    assert not dialog.running and "unknown remedy 'warp'" in dialog.status.text()


def test_advice_is_given_in_the_settings_terms_with_the_values_to_apply():
    from workbench.engine.neurons import make_neuron
    from workbench.views.qt_diagnosis import apply_changes, settings_changes

    silent = Finding("fc1", "silent", 2, "layer fc1: quiet",
                     "run longer (--steps 400) or raise the rate scale (--rate-scale) by ~2.0x", {})
    changes, text = settings_changes(silent, SimConfig(rate_scale=1.5))
    assert changes == {"steps": 400, "rate_scale": 3.0} and "--" not in text
    assert "Settings › steps = 400" in text and "rate scale by ~2x (to 3)" in text
    lif = Finding("fc1", "saturated", 3, "m", "for LIF converted from ReLU, try --param amplitude=0.02 "
                  "--param tau_ref=0.002 --rate-scale 25 (docs/neurons.md, 'Converting to LIF')", {})
    changes, text = settings_changes(lif, SimConfig())
    assert changes == {"param.amplitude": 0.02, "param.tau_ref": 0.002, "rate_scale": 25.0} and "--" not in text
    config, percentile = apply_changes(changes, SimConfig(neuron=make_neuron("lif")))
    assert (config.neuron.amplitude, config.neuron.tau_ref, config.rate_scale, percentile) == (0.02, 0.002, 25.0, None)
    threshold = Finding("fc1", "saturated", 3, "m", "raise fc1's threshold by ~2.0x or normalize with a higher "
                        "percentile (now 99.9; 100 = the maximum activation)", {})
    assert settings_changes(threshold, SimConfig())[0] == {}
    own = Finding("fc1", "silent", 2, "m", "free text", {})
    object.__setattr__(own, "settings", {"percentile": 99.99})  # a finding that names its settings itself
    assert settings_changes(own, SimConfig())[0] == {"percentile": 99.99}
    assert apply_changes({"percentile": 99.99}, SimConfig())[1] == 99.99


def test_panel_applies_a_suggestion_and_says_when_it_is_out_of_date(qtbot, planted):
    panel = QtDiagnosisPanel()
    qtbot.addWidget(panel)
    findings = (Finding("fc2", "silent", 2, "layer fc2: quiet", "run longer (--steps 300)", {}),
                Finding("fc2", "saturated", 3, "layer fc2: busy", "raise fc2's threshold by ~2.0x", {}))
    panel.set_diagnosis(Diagnosis(findings, planted.result, planted.percentile))
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    assert panel.apply_button.isEnabled() and "Settings › steps = 300" in panel.details.text()
    with qtbot.waitSignal(panel.apply_requested, timeout=2_000) as blocker:
        panel.apply_button.click()
    assert blocker.args == [{"steps": 300}]
    panel.tree.setCurrentItem(panel.tree.topLevelItem(1))
    assert not panel.apply_button.isEnabled()  # a per-layer threshold is no setting of the window
    panel.mark_stale("the settings changed")
    assert "Out of date" in panel.summary.text() and panel.stale
