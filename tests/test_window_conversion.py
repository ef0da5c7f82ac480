"""The conversion options of the command line in the window's Settings (issues 16, 20, 21): the
readout and the uniform conversion (SimConfig fields), the normalization rule and SNN Toolbox's
factors file, and the network-level remedies; each changes what runs, through the functions the
command line uses, and a bad value is refused with a message naming its field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_window_state import LONG, open_tanh_mlp, window  # noqa: F401 (the fixture: the demo, running)
from workbench.models import network as nw


def open_tiny(qtbot, s, tmp_path) -> None:
    """Open a 4 -> 2 dense network without data (nothing to measure remedies on)."""
    net = nw.Network("tiny", [
        nw.Layer("in", nw.INPUT, (4,)),
        nw.Layer("out", nw.DENSE, (2,), ("in",), np.full((4, 2), 0.5, np.float32), np.zeros(2, np.float32), "relu"),
    ])
    net.save(tmp_path / "tiny.npz")
    s.open_model(tmp_path / "tiny.npz")
    qtbot.waitUntil(lambda: s.network is not None and s.network.name == "tiny", timeout=LONG)


def apply(qtbot, win, wait_network: bool = True):
    """Press Apply; wait for the converted network when the conversion changed."""
    s = win.session
    if wait_network:
        with qtbot.waitSignal(s.network_changed, timeout=LONG):
            win.settings_panel.apply()
        qtbot.waitUntil(lambda: s.snapshot is not None and s.snapshot.t == 0, timeout=LONG)
    else:
        win.settings_panel.apply()


def test_readout_and_uniform_change_the_models_that_run(qtbot, window, tmp_path):
    panel, s, table = window.settings_panel, window.session, window.table
    assert panel.readout.currentText() == "auto" and not panel.uniform.isChecked()
    auto_kind = table.cell_text("output", "kind")
    assert auto_kind != "dense · if"  # a softmax output is read from its membrane by default
    panel.readout.setCurrentText("spikes")
    assert "changes not applied" in panel.pending.text()
    panel.apply()
    assert s.config.readout == "spikes"
    qtbot.waitUntil(lambda: table.cell_text("output", "kind") == "dense · if", timeout=LONG)
    panel.revert_button.click()  # nothing pending: Revert shows what runs
    assert panel.readout.currentText() == "spikes"
    panel.readout.setCurrentText("membrane")
    panel.revert_button.click()
    assert panel.readout.currentText() == "spikes" and panel.pending.text() == ""

    # uniform: a tanh layer keeps the network's IF instead of its activation-matched wrapper
    open_tanh_mlp(qtbot, s, tmp_path)
    assert table.cell_text("h", "kind") != "dense · if"
    panel.uniform.setChecked(True)
    panel.apply()
    assert s.config.auto_neurons is False
    qtbot.waitUntil(lambda: table.cell_text("h", "kind") == "dense · if", timeout=LONG)
    assert any("conversion: h: tanh" in m for m in window.messages)  # and the plan says what that loses


def test_the_snntoolbox_rule_and_a_factors_file_change_the_scales(qtbot, window, tmp_path):
    from workbench.models.normalize import normalize

    panel, s = window.settings_panel, window.session
    ours = dict(s.network.scales)
    panel.normalize_rule.setCurrentText("snntoolbox")
    apply(qtbot, window)
    expected = normalize(s.original, s.calibration, 99.9, rule="snntoolbox").scales
    assert s.network.scales == expected and s.converted.rule == "snntoolbox"
    assert s.network.scales["pool1"] == ours["conv2"] != ours["pool1"] and s.network.scales["output"] == 1.0

    # SNN Toolbox's <percentile>.json: its factors, pooling passing its input's
    (tmp_path / "99.0.json").write_text(json.dumps({"conv1": 2.0, "conv2": 3.0, "conv3": 4.0, "fc1": 5.0}))
    panel.normalization_file.setText(str(tmp_path / "99.0.json"))
    panel.validate()
    apply(qtbot, window)
    assert s.network.scales == {"input": 1.0, "conv1": 2.0, "conv2": 3.0, "pool1": 3.0, "conv3": 4.0,
                                "flatten": 4.0, "fc1": 5.0, "output": 1.0}
    assert s.network.normalization["percentile"] == 99.0 and s.network.normalization["factors"] == "file"

    # a file without a factor for every layer: refused with the layer named; the settings go back
    (tmp_path / "98.json").write_text(json.dumps({"conv1": 2.0}))
    network = s.network
    panel.normalization_file.setText(str(tmp_path / "98.json"))
    panel.validate()
    panel.apply()
    qtbot.waitUntil(lambda: bool(window.errors), timeout=LONG)
    assert "no factor for layer 'conv2'" in window.errors[-1]
    assert s.network is network and s.conversion == s.converted
    assert panel.normalization_file.text() == str(tmp_path / "99.0.json")

    # a file that is not there is refused in the form
    panel.normalization_file.setText(str(tmp_path / "missing.json"))
    panel.validate()
    assert panel.message.text().startswith("normalization_file: ") and "no such file" in panel.message.text()
    assert not panel.apply_button.isEnabled()


def test_remedies_are_applied_as_the_command_line_does_with_progress(qtbot, window):
    from workbench.analysis.remedies import with_remedies
    from workbench.models.prepare import Prepared

    panel, s = window.settings_panel, window.session
    baseline = s.network
    seen = []
    s.job_progress.connect(seen.append)
    panel.remedies.setText("calib4+channel")
    panel.validate()
    assert panel.apply_button.isEnabled()
    apply(qtbot, window)
    net = s.network
    assert net.normalization["remedies"] == "channel+calib4" and panel.remedies.text() == "channel+calib4"
    assert set(net.normalization["bias_calibration"]["mean_abs_change"]) == {"conv1", "conv2", "conv3", "fc1",
                                                                             "output"}
    assert seen and seen[-1] == 1.0  # calibration's SNN runs, layer by layer
    # the same network the CLI's --remedies makes from the same normalization and data
    prep = Prepared(s.original, baseline, None, "", (), s.calibration)
    cli = with_remedies(prep, s.config, "channel+calib4")[0].network
    for a, b in zip(net.layers, cli.layers):
        assert a.name == b.name and (a.bias is None or np.array_equal(a.bias, b.bias))
        assert a.weights is None or np.array_equal(a.weights, b.weights)

    # calibration measured the SNN with the settings: a neuron parameter changed converts again
    panel.param_widget("v_init").setText("0.5")
    panel.validate()
    apply(qtbot, window)
    assert s.config.neuron.v_init == 0.5
    again = with_remedies(prep, s.config, "channel+calib4")[0].network
    assert np.array_equal(s.network["fc1"].bias, again["fc1"].bias)
    assert not np.array_equal(s.network["fc1"].bias, net["fc1"].bias)

    # back to baseline: the layer-wise normalized network again
    panel.remedies.setText("")
    panel.validate()
    apply(qtbot, window)
    assert "remedies" not in s.network.normalization and s.network.scales == baseline.scales


@pytest.mark.parametrize("spec, says", [
    ("chanel", "remedies: unknown remedy 'chanel'"),
    ("half+channel", "v_init (0.5) and burst above"),
    ("calib0", "remedies: calib0"),
])
def test_a_bad_remedies_spec_is_refused_in_the_form(qtbot, window, spec, says):
    panel = window.settings_panel
    panel.remedies.setText(spec)
    panel.validate()
    assert says in panel.message.text() and panel.message.text().startswith("remedies: ")
    assert not panel.apply_button.isEnabled() and panel.pending.text() == "not valid"
    assert "calibN" in panel.remedies.toolTip() and says in panel.remedies.toolTip()
    panel.revert_button.click()
    assert panel.remedies.text() == "" and panel.message.text() == ""
    assert "lateral" in panel.remedies.toolTip()  # its own tooltip back


def test_a_change_marks_the_diagnosis_out_of_date_and_a_new_model_resets_the_conversion(qtbot, window, tmp_path):
    from workbench.analysis.diagnosis import diagnose
    from workbench.engine.config import SimConfig

    panel, s, tools = window.settings_panel, window.session, window.eval_tools
    x, y = s.samples.x[:8], s.samples.y[:8]
    diagnosis = diagnose(s.network, SimConfig(batch=8), x, y, steps=10)
    tools.panel.set_diagnosis(diagnosis)
    panel.readout.setCurrentText("spikes")
    panel.apply()
    assert "Out of date" in tools.panel.summary.text() and tools.panel.stale == "the settings changed"

    tools.panel.set_diagnosis(diagnosis)
    panel.remedies.setText("lateral")
    panel.validate()
    apply(qtbot, window)
    assert s.network.normalization["remedies"] == "lateral"
    assert tools.panel.stale == "the conversion changed"  # kept (out of date), not cleared, for the same model

    # another model: no factors file or remedies of the one before; the rule stays
    open_tiny(qtbot, s, tmp_path)
    assert s.conversion.remedies == "" and panel.remedies.text() == "" and s.converted == s.conversion
    assert tools.panel.rows() == []


def test_remedies_need_data_to_measure_on(qtbot, window, tmp_path):
    panel, s = window.settings_panel, window.session
    open_tiny(qtbot, s, tmp_path)
    panel.remedies.setText("calib4")
    panel.validate()
    panel.apply()
    qtbot.waitUntil(lambda: bool(window.errors), timeout=LONG)
    assert window.errors[-1].startswith("remedies: calib4 measures on sample data: open data first")
    assert panel.remedies.text() == "" and s.conversion.remedies == ""


def test_lif_synapse_and_rate_inversion_are_settings_and_shown_per_layer(qtbot, window):
    """The fitted LIF's plan rules (docs/conversion.md) as the command line's --synapse and
    --no-rate-inversion: on by default, shown in the kind cell's tooltip, off from Settings."""
    panel, s, table = window.settings_panel, window.session, window.table

    def tip(name):
        return table._items[name][8].toolTip()

    assert panel.synapse.text() == "" and panel.rate_inversion.isChecked()
    panel.neuron_type.setCurrentText("lif")
    panel.apply()
    qtbot.waitUntil(lambda: table.cell_text("conv2", "kind") == "conv2d · lif" and "synapse" in tip("conv2"),
                    timeout=LONG)
    assert "conversion: spiking, current x20.5042, synapse 5 ms" in tip("conv2")
    assert "rate-inverted" in tip("conv1") and "synapse" not in tip("conv1")  # constant current: no filter
    panel.synapse.setText("2")
    panel.rate_inversion.setChecked(False)
    panel.apply()
    assert s.config.synapse == pytest.approx(0.002) and s.config.rate_inversion is False
    qtbot.waitUntil(lambda: "synapse 2 ms" in tip("conv2") and "rate-inverted" not in tip("conv1"), timeout=LONG)
    panel.synapse.setText("-1")  # refused, naming the field; what runs stays
    assert panel.validate() is None and "synapse" in panel.message.text()
    assert s.config.synapse == pytest.approx(0.002)
