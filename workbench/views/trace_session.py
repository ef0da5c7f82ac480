"""TraceSession: a read-only "session" that plays a trace file back to the views.

It offers what the views and the run toolbar use of ``Session`` (``snapshot_ready``,
``layer_selected``, ``running_changed``; play, pause, step, run to, reset, select layer), but
its snapshots come from a file (``TracePlayback``), not from a simulator: Step moves to the
file's next row, Reset to before its first, Run to T jumps to step T, Play replays at
``FPS`` frames a second, advancing ``max(1, T // PLAY_FRAMES)`` rows a frame (so any file
replays in about ``PLAY_FRAMES / FPS`` seconds). Step layer is Step: a trace records whole steps.
Building a snapshot is a few numpy slices, so everything runs on the GUI thread.

``Job`` runs one function on a worker thread (opening and comparing files).
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QObject, QThread, QTimer, pyqtSignal, pyqtSlot

from workbench.analysis.trace_playback import TracePlayback
from workbench.views.sim_loop import describe_error

FPS = 30
PLAY_FRAMES = 300


class Job(QThread):
    """Runs ``fn(*args)`` once; afterwards ``value`` holds its result or ``error`` the
    (message, details) of what it raised. Connect ``finished`` to a slot of a GUI-thread QObject
    (a bound method, so that Qt queues the call onto the GUI thread)."""

    def __init__(self, fn, *args, parent=None):
        super().__init__(parent)
        self.setObjectName("snn-workbench-trace-job")
        self._fn, self._args = fn, args
        self.value = None
        self.error: tuple[str, str] | None = None
        self.on_done = None

    def run(self) -> None:
        try:
            self.value = self._fn(*self._args)
        except Exception as exc:  # reported on the GUI thread; the window stays usable
            self.error = describe_error(exc)


class WindowJobs(QObject):
    """One-off worker jobs of a window feature: ``run`` starts ``fn(*args)`` on a ``Job``
    thread with a status message; back on the GUI thread the result goes to ``on_done``, an
    exception to the window's error handler. ``wait_all`` on close, so no finished file is lost."""

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self._jobs: list[Job] = []

    def run(self, label: str, on_done, fn, *args) -> None:
        job = Job(fn, *args, parent=self)
        job.on_done = on_done
        job.label = label
        job.finished.connect(self._on_job_finished)
        self._jobs.append(job)
        self.window.statusBar().showMessage(label, 0)  # until the job is done
        if hasattr(self.window, "log"):
            self.window.log(label)
        job.start()

    @pyqtSlot()
    def _on_job_finished(self) -> None:
        job = self.sender()
        if job not in self._jobs:
            return
        self._jobs.remove(job)
        job.wait()
        job.deleteLater()
        if self.window.statusBar().currentMessage() == job.label:
            self.window.statusBar().clearMessage()  # "Reading …" does not outlive the reading
        if job.error is not None:
            (getattr(self.window, "_on_error", None) or self.window.error_handler)(*job.error)
        else:
            job.on_done(job.value)

    def busy(self) -> bool:
        return bool(self._jobs)

    def wait_all(self) -> None:
        for job in list(self._jobs):
            job.wait()


class TraceSession(QObject):
    snapshot_ready = pyqtSignal(object)
    layer_selected = pyqtSignal(str)
    running_changed = pyqtSignal(bool)
    position_changed = pyqtSignal(int)  # 0..n_positions - 1

    def __init__(self, playback: TracePlayback, path, parent=None):
        super().__init__(parent)
        self.playback = playback
        self.path = Path(path)
        self.position = 0
        self.running = False
        self.snapshot = None
        self.selected_layer: str | None = None
        self._target: int | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // FPS)
        self._timer.timeout.connect(self._on_tick)

    @property
    def trace(self):
        return self.playback.trace

    @property
    def n_positions(self) -> int:
        return self.playback.n_positions

    def steps_per_frame(self) -> int:
        return max(1, self.trace.n_steps // PLAY_FRAMES)

    # ---- intents -----------------------------------------------------------------------------
    @pyqtSlot()
    def play(self) -> None:
        if self.position >= self.n_positions - 1:
            self.position = 0  # replay from the start
        self._set_running(True)

    @pyqtSlot()
    def pause(self) -> None:
        self._set_running(False)
        self._target = None
        self._emit()

    @pyqtSlot()
    def toggle_play(self) -> None:
        self.pause() if self.running else self.play()

    @pyqtSlot()
    def step(self) -> None:
        self.seek_position(self.position + 1)

    @pyqtSlot()
    def step_layer(self) -> None:
        self.step()

    @pyqtSlot(int)
    def run_to(self, t: int) -> None:
        self.seek(t)

    @pyqtSlot()
    def reset(self) -> None:
        self.seek_position(0)

    @pyqtSlot(int)
    def seek(self, t: int) -> None:
        """Show timestep ``t`` (the file's last row at or before it)."""
        self.seek_position(self.playback.position_of(t))

    @pyqtSlot(int)
    def seek_position(self, position: int) -> None:
        self._set_running(False)
        self.position = self.playback.clamp(position)
        self._emit()

    @pyqtSlot(str)
    def select_layer(self, name: str) -> None:
        if name and name != self.selected_layer and name in self.trace.layers:
            self.selected_layer = name
            self.layer_selected.emit(name)

    def set_watched(self, neurons) -> None:  # every layer is in the history already
        pass

    def start(self, layer: str | None = None) -> None:
        """The first snapshot, with ``layer`` selected if the file has it (else its first)."""
        self.select_layer(layer if layer in self.trace.layers else self.playback.names[0])
        self._emit()

    def shutdown(self) -> None:
        self._timer.stop()
        self.running = False

    # ---- internals -----------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        if running == self.running:
            return
        self.running = running
        self._timer.start() if running else self._timer.stop()
        self.running_changed.emit(running)

    def _on_tick(self) -> None:
        last = self.n_positions - 1
        self.position = min(last, self.position + self.steps_per_frame())
        if self.position >= last:
            self._set_running(False)
        self._emit()

    def _emit(self) -> None:
        rate = self.steps_per_frame() * FPS if self.running else 0.0
        self.snapshot = self.playback.snapshot(self.position, running=self.running, steps_per_second=rate)
        self.position_changed.emit(self.position)
        self.snapshot_ready.emit(self.snapshot)
