"""File > Export trace…: write what the live run recorded to NPZ, HDF5 or CSV.

The live session keeps the newest ``window`` timesteps of every neuron layer (a ring buffer, so a
window left running keeps flat memory); this exports those, with the ANN activations and the full
metadata, in the documented trace format (docs/trace-format.md). The file is written on a worker
thread and atomically: a failed or interrupted export never leaves a half-written file. For a
whole long run use the command line (``snn-workbench run ... --record-trace FILE``), which
streams to HDF5.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QObject, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QFileDialog

from workbench.exchange.trace_io import save_trace
from workbench.views.trace_session import WindowJobs

EXPORT_FILTERS = {
    "NPZ trace (*.npz)": ".npz",
    "HDF5 trace (*.h5)": ".h5",
    "CSV, selected layer only (*.csv)": ".csv",
}


def write_trace(trace, path: Path, layer: str | None) -> str:
    """Save and describe what was written (runs on the worker thread)."""
    if trace is None or trace.n_steps == 0:
        raise ValueError("nothing recorded yet: step or run the network first")
    if path.suffix.lower() == ".csv":
        if layer not in trace.layers:
            layer = next(iter(trace.layers))
        save_trace(trace, path, layer=layer)
        what = f"layer {layer}"
    else:
        save_trace(trace, path)
        what = f"{len(trace.layers)} layers"
    first, last = int(trace.steps[0]), int(trace.steps[-1])
    return f"Exported {what}, steps {first}..{last} ({trace.batch} sample(s)) to {path.name}"


class QtTraceExport(QObject):
    exported = pyqtSignal(str)  # the written file's path

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.session
        self._pending: Path | None = None
        self.jobs = WindowJobs(window, parent=self)
        self.session.trace_ready.connect(self._on_trace)

    def add_menu_action(self, menu) -> None:
        self.action = menu.addAction("&Export trace…", "Ctrl+Shift+E", self._on_export)

    def _on_export(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self.window, "Export trace", self.window._last_dir(),
                                                   ";;".join(EXPORT_FILTERS))
        if path:
            self.window.remember_dir(path)
            path = Path(path)
            if not path.suffix and chosen in EXPORT_FILTERS:
                path = path.with_suffix(EXPORT_FILTERS[chosen])
            self.export(path)

    def export(self, path) -> None:
        """Ask the live session for its recording; it is written when it arrives."""
        if self.session.network is None:
            self.window.error_handler("Nothing to export: open a model and run it first.", "")
            return
        self._pending = Path(path)
        self.session.request_trace()

    @pyqtSlot(object)
    def _on_trace(self, trace) -> None:
        path, self._pending = self._pending, None
        if path is None:
            return  # a trace asked for by someone else (e.g. Compare)
        self.jobs.run(f"Writing {path.name}…", lambda text: self._on_written(text, path),
                      write_trace, trace, path, self.session.selected_layer)

    def _on_written(self, text: str, path: Path) -> None:
        self.window.statusBar().showMessage(text, 15_000)
        self.exported.emit(str(path))

    def shutdown(self) -> None:
        """Finish writing before the window closes: a finished export is never lost."""
        self.jobs.wait_all()
