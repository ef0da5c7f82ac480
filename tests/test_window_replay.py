"""The window's options that were the command line's only (issues 20 and 21): replaying the input
spike train of a trace (``run --input recorded --input-spikes``) and a saved network converted
with the neuron-side remedies (half, burstN) opening with them, as the command line runs it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.test_window_state import LONG, wait_t, window  # noqa: F401 (the fixture: the demo, running)
from workbench.engine.simulator import Simulator
from workbench.engine.trace import LayerTrace, Trace
from workbench.exchange.trace_io import load_trace, save_trace

STEPS = 20


def record_demo(s, path, steps=STEPS):
    """A Poisson run of the window's demo network on sample 0, with its input layer's spikes
    (the trace a chip or another simulator would give): (the trace saved to ``path``, its spikes)."""
    config = s.config.replace(encoder="poisson", batch=1, seed=7, record=None, record_membrane=False)
    sim = Simulator(s.network, config, s.samples.x[:1])
    frames = []
    for _ in range(steps):
        sim.step()
        frames.append(sim.layers[0].y.copy())
    trace = sim.trace()
    inp = s.network.input_layer
    layers = {inp.name: LayerTrace(inp.name, tuple(inp.output_shape), np.asarray(frames, np.int16)),
              **dict(trace.layers)}
    save_trace(Trace(layers, trace.steps, trace.predictions), path)
    return load_trace(path)


def test_a_replayed_trace_gives_the_spikes_of_the_run_that_recorded_it(qtbot, window, tmp_path):
    s, view = window.session, window.input_view
    recorded = record_demo(s, tmp_path / "demo.npz")
    with qtbot.waitSignal(s.replay_changed, timeout=LONG):
        s.replay_input(tmp_path / "demo.npz")
    assert s.config.encoder == "recorded" and s.replay.steps == STEPS and s.replay.batch == 1
    assert window.settings_panel.encoder.currentText() == "recorded"
    assert not view.replay.isHidden() and "demo.npz" in view.replay.text()
    s.set_history_all(True)
    s.set_play_through(False)
    s.set_play_steps(STEPS + 10)  # the play stops where the recording ends, and says so
    qtbot.waitUntil(lambda: s.snapshot is not None and s.snapshot.t == 0, timeout=LONG)
    s.play()
    wait_t(qtbot, s, STEPS)
    snap = s.snapshot
    for name in ("conv1", "conv2", "fc1", "output"):
        np.testing.assert_array_equal(snap.history[name].spikes[-STEPS:], recorded[name].spikes)
        assert recorded[name].spikes.sum() > 0 or name == "output"
    qtbot.waitUntil(lambda: any("ends at step 20" in m for m in window.messages), timeout=LONG)
    s.step()  # no input for step 21: refused with the message, the run stays at 20
    qtbot.waitUntil(lambda: sum("ends at step 20" in m for m in window.messages) >= 2, timeout=LONG)
    assert s.snapshot.t == STEPS and not window.errors

    s.stop_replay()  # back to the samples
    qtbot.waitUntil(lambda: s.replay is None and s.config.encoder == "constant", timeout=LONG)
    assert view.replay.isHidden()


def test_a_trace_of_another_input_shape_is_refused_with_a_message(qtbot, window, tmp_path):
    s = window.session
    spikes = np.zeros((5, 1, 3, 3, 1), np.int16)
    save_trace(Trace({"input": LayerTrace("input", (3, 3, 1), spikes)}, np.arange(1, 6)), tmp_path / "small.npz")
    s.replay_input(tmp_path / "small.npz")
    qtbot.waitUntil(lambda: bool(window.errors), timeout=LONG)
    assert "small.npz" in window.errors[-1] and "(3, 3, 1)" in window.errors[-1]
    assert "the network's input is (8, 8, 1)" in window.errors[-1]
    assert s.replay is None and s.config.encoder == "constant"
    window.settings_panel.encoder.setCurrentText("recorded")  # without a trace: refused, naming the menu
    window.settings_panel.apply()
    assert "Replay input from trace" in window.errors[-1] and s.config.encoder == "constant"


@pytest.mark.parametrize("spec, v_init, burst", [("half", 0.5, 1), ("half+burst3", 0.5, 3)])
def test_a_saved_network_opens_with_its_neuron_side_remedies(qtbot, window, tmp_path, spec, v_init, burst):
    from workbench.analysis.remedies import with_remedies
    from workbench.engine.config import SimConfig
    from workbench.models.prepare import prepare

    s, panel = window.session, window.settings_panel
    path = tmp_path / "saved.npz"
    from workbench.models.loading import DEMO_CALIBRATION

    prep = prepare(None, None, DEMO_CALIBRATION, 99.9, demo=True)  # as convert --demo --remedies SPEC
    prep, _ = with_remedies(prep, SimConfig(), spec)
    prep.network.save(path)
    s.open_model(path)
    qtbot.waitUntil(lambda: s.model_path == path and s.snapshot is not None and s.snapshot.t == 0, timeout=LONG)
    assert (s.config.neuron.v_init, s.config.neuron.burst) == (v_init, burst)
    assert panel.param_widget("v_init").text() == str(v_init) and panel.param_widget("burst").text() == str(burst)
    assert panel.remedies.text() == "" and panel.pending.text() == ""  # half and burst are the IF fields
    s.step()
    wait_t(qtbot, s, 1)
    # the command line's run of the saved network: prepare, then apply (baseline keeps the saved remedies)
    cli = prepare(str(path), None, None, None)
    cli_prep, config = with_remedies(cli, SimConfig(batch=s.config.batch, record=None, record_membrane=True), "")
    assert config.neuron == s.config.neuron
    sim = Simulator(cli_prep.network, config, s.samples.x[: s.config.batch])
    sim.step()
    for name in ("conv1", "fc1"):
        np.testing.assert_array_equal(s.snapshot.layer(name).membrane, sim.layer(name).membrane())
    assert float(np.max(sim.layer("conv1").membrane())) > 0.5  # started at 0.5, not 0

    s.open_demo()  # another model: not converted with them, so back to the neuron before
    qtbot.waitUntil(lambda: s.model_path != path and s.snapshot is not None and s.snapshot.t == 0, timeout=LONG)
    assert (s.config.neuron.v_init, s.config.neuron.burst) == (0.0, 1)
