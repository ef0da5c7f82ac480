"""Test-wide set-up: Qt without a display and a guard that fails any Qt test leaving a QThread
running. numba's cache is the application's own (workbench/engine/__init__.py: the package's
``.numba_cache``, or the user's cache folder when the package is read-only), which
``scripts/setup.sh`` fills before ``make test`` runs: the suite does not compile the kernels
a second time."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


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
