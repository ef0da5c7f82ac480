"""QtEvaluateDialog: accuracy over the loaded data set, off the GUI thread, with a live curve.

The same ``engine.evaluate`` the ``snn-workbench evaluate`` command runs, on a worker thread:
a progress bar, Cancel (the finished batches stay), and the accuracy curve (top-1 and top-k) that
fills in batch by batch with the ANN's accuracy and the chance level as reference lines. When the
run ends (finished or cancelled) the dialog diagnoses it and emits ``evaluated(EvalResult)`` and
``diagnosed(Diagnosis)``, for the window's report panel.

The dialog captures the network, the SimConfig and the samples when it is made; the worker only
reads them (the samples are read-only arrays), so it needs no locks.
"""

from __future__ import annotations

import threading

from PyQt6.QtCore import QThread, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QProgressBar,
                             QPushButton, QSpinBox, QVBoxLayout)

from workbench.views.qt_eval_plots import QtEvalCurve


class _EvalThread(QThread):
    """Runs one evaluation; its signals reach the dialog queued on the GUI thread."""

    progress = pyqtSignal(int, int)
    partial = pyqtSignal(object)  # EvalResult after each finished batch
    done = pyqtSignal(object, object)  # EvalResult, Diagnosis
    failed = pyqtSignal(str)

    def __init__(self, network, config, x, y, steps: int, top_k: tuple[int, ...], parent=None):
        super().__init__(parent)
        self.request = (network, config, x, y, steps, top_k)
        self.cancel_event = threading.Event()
        self.setObjectName("snn-workbench-evaluate")

    def run(self) -> None:
        from workbench.analysis.diagnosis import diagnose_result
        from workbench.analysis.evaluate import evaluate

        network, config, x, y, steps, top_k = self.request
        try:
            result = evaluate(network, config, x, y, steps=steps, top_k=top_k,
                              on_progress=self.progress.emit, on_batch=self.partial.emit,
                              should_stop=self.cancel_event.is_set)
            self.done.emit(result, diagnose_result(network, result))
        except Exception as exc:  # shown in the dialog; the window keeps working
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class QtEvaluateDialog(QDialog):
    evaluated = pyqtSignal(object)
    diagnosed = pyqtSignal(object)

    def __init__(self, network, config, samples, parent=None, steps: int | None = None, top_k: int = 5):
        """``samples``: a ``Samples`` (x, y) or an ``(x, y)`` pair; ``config``: a SimConfig."""
        super().__init__(parent)
        self.setWindowTitle("Evaluate")
        self.network, self.config = network, config
        self.x, self.y = (samples.x, samples.y) if hasattr(samples, "x") else samples
        self.result = None
        self.diagnosis = None
        self._thread: _EvalThread | None = None

        n = int(self.x.shape[0])
        self.steps = QSpinBox(minimum=1, maximum=100_000, value=int(steps or config.steps))
        self.count = QSpinBox(minimum=1, maximum=n, value=n)
        classes = max(network.output_layer.size, 1)
        self.top_k = QSpinBox(minimum=1, maximum=classes, value=min(top_k, classes))
        self.batch = QSpinBox(minimum=1, maximum=4096, value=max(1, min(int(config.batch) if config.batch > 1 else 64, n)))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("timesteps", self.steps)
        form.addRow(f"samples (of {n})", self.count)
        form.addRow("batch", self.batch)
        form.addRow("also top-k", self.top_k)
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("%p%")
        self.status = QLabel("" if self.y is not None else "The data has no labels: accuracy cannot be measured.")
        self.status.setWordWrap(True)
        self.curve = QtEvalCurve()
        self.curve.setMinimumSize(520, 300)
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.save_button = QPushButton("Save results…")
        self.save_button.setToolTip("Save the accuracy curve, per-layer numbers and the diagnosis as JSON "
                                    "(or the diagnosis report as .txt)")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._on_save)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.curve, 1)
        layout.addWidget(buttons)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

    # ---- control ---------------------------------------------------------------------------
    @pyqtSlot()
    def start(self) -> None:
        if self.running:
            return
        n = self.count.value()
        x = self.x[:n]
        y = None if self.y is None else self.y[:n]
        config = self.config.replace(batch=min(self.batch.value(), n), steps=self.steps.value())
        top_k = (self.top_k.value(),) if self.top_k.value() > 1 else ()
        self.progress_bar.setRange(0, -(-n // config.batch) * config.steps)
        self.progress_bar.setValue(0)
        self.status.setText(f"Simulating {n} samples x {config.steps} steps ...")
        self._thread = _EvalThread(self.network, config, x, y, config.steps, top_k, self)
        self._thread.progress.connect(self._on_progress)
        self._thread.partial.connect(self._on_partial)
        self._thread.done.connect(self._on_done)
        self._thread.failed.connect(self._on_failed)
        self._thread.finished.connect(self._on_thread_finished)
        self._set_running(True)
        self._thread.start()

    def save(self, path) -> None:
        """Write the last result: ``.txt`` the diagnosis report, else JSON {result, diagnosis}."""
        import json
        from pathlib import Path

        from workbench.analysis.diagnosis import format_report

        path = Path(path)
        if path.suffix.lower() == ".txt":
            path.write_text(format_report(self.diagnosis))
        else:
            data = {"result": self.result.to_dict(), "diagnosis": self.diagnosis.to_dict()}
            path.write_text(json.dumps(data, indent=1, default=lambda o: getattr(o, "tolist", lambda: str(o))()))

    def _on_save(self) -> None:
        from PyQt6.QtWidgets import QFileDialog

        parent = self.parent()
        start = parent._last_dir() if hasattr(parent, "_last_dir") else ""
        path, _ = QFileDialog.getSaveFileName(self, "Save evaluation", str(start),
                                              "JSON (*.json);;Diagnosis report (*.txt)")
        if path:
            if hasattr(parent, "remember_dir"):
                parent.remember_dir(path)
            try:
                self.save(path if "." in path.rsplit("/", 1)[-1] else path + ".json")
            except OSError as exc:
                self.status.setText(f"Could not save: {exc}")
            else:
                self.status.setText(self.status.text() + f" Saved to {path}.")

    @pyqtSlot()
    def cancel(self) -> None:
        if self._thread is not None:
            self._thread.cancel_event.set()
            self.status.setText("Cancelling: the running batch is dropped, the finished ones are kept ...")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def wait(self, ms: int = 30_000) -> bool:
        return self._thread is None or self._thread.wait(ms)

    def closeEvent(self, event):  # noqa: N802 (Qt override)
        self.cancel()
        self.wait()
        super().closeEvent(event)

    # ---- worker messages -------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for w in (self.steps, self.count, self.batch, self.top_k):
            w.setEnabled(not running)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.setMaximum(total)
        self.progress_bar.setValue(done)

    def _on_partial(self, result) -> None:
        self.curve.set_result(result)

    def _on_done(self, result, diagnosis) -> None:
        self.result, self.diagnosis = result, diagnosis
        self.save_button.setEnabled(True)
        self.curve.set_result(result)
        if result.completed:
            self.progress_bar.setValue(self.progress_bar.maximum())
        text = f"{result.samples} of {result.total} samples" + ("" if result.completed else " (cancelled)")
        if result.labelled and result.samples:
            text += (f": ANN {100 * result.ann_accuracy:.2f}%, SNN {100 * result.snn_accuracy[-1]:.2f}% after "
                     f"{result.steps} steps")
        text += f"; {result.spikes_per_sample:.0f} spikes and {result.synops_per_sample:.3g} synaptic operations per sample"
        n = len(diagnosis.findings)
        text += f". Diagnosis: {n} finding{'s' if n != 1 else ''}."
        self.status.setText(text)
        self.evaluated.emit(result)
        self.diagnosed.emit(diagnosis)

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Evaluation failed: {message}")

    def _on_thread_finished(self) -> None:
        self._set_running(False)
