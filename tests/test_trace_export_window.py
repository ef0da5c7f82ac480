"""File > Export trace…: what the live run recorded reaches the file exactly, in every format."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QSettings, Qt

from workbench.engine.simulator import Simulator
from workbench.exchange.trace_io import load_trace
from workbench.views.app import build_window

LONG = 60_000


@pytest.fixture
def window(qtbot, tmp_path):
    errors = []
    settings = QSettings(str(tmp_path / "workbench.ini"), QSettings.Format.IniFormat)
    session, win = build_window(settings=settings, error_handler=lambda m, d: errors.append((m, d)))
    win.errors = errors
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: session.snapshot is not None, timeout=LONG)
    yield win
    win.close()
    assert not session._thread.isRunning()


def step(qtbot, win, n):
    for _ in range(n):
        qtbot.keyClick(win, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: win.session.snapshot.t == n and not win.session.running, timeout=LONG)


def engine_trace(session, steps):
    sim = Simulator(session.network, session.config, session.samples.x[:1])
    sim.run(steps)
    return sim.trace()


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_export_writes_the_recorded_steps(qtbot, window, tmp_path, suffix):
    step(qtbot, window, 6)
    path = tmp_path / f"live{suffix}"
    with qtbot.waitSignal(window.trace_export.exported, timeout=LONG):
        window.trace_export.export(path)
    got = load_trace(path)
    want = engine_trace(window.session, 6)
    assert got.steps.tolist() == [1, 2, 3, 4, 5, 6]
    for name, layer in want.layers.items():
        np.testing.assert_array_equal(got[name].spikes, layer.spikes)
        np.testing.assert_array_equal(got[name].membrane, layer.membrane)
    assert got.metadata["network_sha256"] == window.session.network.fingerprint()
    assert "output" in got.ann
    assert window.errors == []


def test_csv_export_holds_the_selected_layer(qtbot, window, tmp_path):
    window.session.select_layer("fc1")
    step(qtbot, window, 3)
    path = tmp_path / "fc1.csv"
    with qtbot.waitSignal(window.trace_export.exported, timeout=LONG):
        window.trace_export.export(path)
    got = load_trace(path)
    assert list(got.layers) == ["fc1"]
    np.testing.assert_array_equal(got["fc1"].spikes, engine_trace(window.session, 3)["fc1"].spikes)


def test_export_into_a_missing_folder_reports_and_keeps_working(qtbot, window, tmp_path):
    step(qtbot, window, 2)
    window.trace_export.export(tmp_path / "no" / "such" / "dir" / "t.npz")
    qtbot.waitUntil(lambda: bool(window.errors), timeout=LONG)
    message = window.errors[0][0]
    assert "t.npz" in message and "does not exist" in message
    step_to = window.session.snapshot.t + 1
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.session.snapshot.t == step_to, timeout=LONG)
