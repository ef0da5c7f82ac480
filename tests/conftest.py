"""Test-wide set-up: Qt without a display, numba's cache in a writable place, and a guard that
fails any Qt test leaving a QThread running."""

import os
import tempfile

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the base of the engine's content-keyed numba cache (workbench/engine/__init__.py)
os.environ.setdefault("SNN_WORKBENCH_NUMBA_CACHE", os.path.join(tempfile.gettempdir(), "snn-workbench-numba-cache"))


@pytest.fixture(autouse=True)
def no_dangling_qthreads(request, monkeypatch):
    """Fail a Qt test that leaves a QThread running (checked after qtbot has closed its widgets)."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    from PyQt6.QtCore import QThread

    started = []
    original = QThread.start

    def tracking_start(self, *args):
        started.append(self)
        return original(self, *args)

    monkeypatch.setattr(QThread, "start", tracking_start)
    yield
    running = []
    for thread in started:
        try:
            if thread.isRunning():
                running.append(thread.objectName() or repr(thread))
        except RuntimeError:  # the C++ object is gone, so is the thread
            pass
    if running:
        pytest.fail(f"test left QThread(s) running: {', '.join(running)}")
