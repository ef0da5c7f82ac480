"""QtTraceMode: the window's trace features — view a trace file on its own, compare with a trace.

File > Open trace… loads a trace file (on a worker thread) and switches the window into a
read-only *trace mode*: the views, the layer table, the status bar, the input caption and the
run toolbar are connected to a ``TraceSession`` instead of the live ``Session`` (which is
paused), the settings are disabled, and a "Trace" toolbar shows the banner "viewing trace FILE
(read-only)" with a timestep slider. File > Close trace goes back to the live run.

File > Compare with trace… loads a second file B and compares it (``compare_traces``) with A:
the opened trace in trace mode, else what the live run recorded (the newest steps the session
keeps; the report says when that is not the whole run). The raster and heat map mark the
divergent neurons, the membrane view draws B's membrane dashed next to A's, the report goes to
the "Comparison" dock, and the window jumps to the first divergence: its layer is selected, its
sample shown, its neuron watched and, in trace mode, the timestep moved to it.

Bad files end in the window's error handler with the loader's message (file and field).
"""

from __future__ import annotations

import html
from pathlib import Path

from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QPlainTextEdit, QSlider, QToolBar, QVBoxLayout,
                             QWidget)

from workbench.analysis.compare import compare_traces, format_comparison
from workbench.exchange.trace_io import load_trace
from workbench.analysis.trace_playback import TracePlayback, divergence_overlay
from workbench.views.trace_session import TraceSession, WindowJobs

TRACE_FILTER = "Traces (*.npz *.h5 *.hdf5 *.csv *.txt);;All files (*)"
BANNER_STYLE = "background: #6b5200; color: white; padding: 2px 8px; font-weight: bold"


def open_playback(path, network, window: int) -> TracePlayback:
    trace = load_trace(path)
    same = network is not None and trace.metadata.get("network_sha256") == network.fingerprint()
    return TracePlayback(trace, network if same else None, window)


def parse_mapping(text: str) -> dict[str, str]:
    """'a1=b1, a2=b2' (commas, spaces or new lines between pairs) -> {a1: b1, a2: b2}."""
    from workbench.errors import ConfigError

    mapping = {}
    for pair in text.replace(",", " ").split():
        a, sep, b = pair.partition("=")
        if not sep or not a or not b:
            raise ConfigError("layer mapping", f"'{pair}' is not LAYER_A=LAYER_B")
        mapping[a] = b
    return mapping


def compare_with(a, name_a: str, path_b, notes=(), mapping=None):
    """(overlay, report text) of A against the trace file at ``path_b``; ``mapping`` pairs
    layers whose names differ ({name in A: name in B}; None: by name)."""
    b = load_trace(path_b)
    comparison = compare_traces(a, b, mapping=mapping or None, names=(name_a, str(path_b)))
    overlay = divergence_overlay(comparison, a, b)
    report = "\n".join([*(f"note: {n}" for n in notes), format_comparison(comparison)])
    return overlay, report


def summary(c) -> str:
    """A few wrapped lines (rich text) on top of the report: verdict and first divergence."""
    names = f"A: {html.escape(Path(c.source_a).name)} &nbsp; B: {html.escape(Path(c.source_b).name)}"
    if c.first is None:
        return f"<b style='color:#30a030'>Equal</b> over steps {c.steps[0]}..{c.steps[1]}<br>{names}"
    d = c.first
    diffs = sum(lc.spike_mismatches for lc in c.layers)
    where = f"step {d.step}, layer <b>{html.escape(d.layer)}</b>, sample {d.sample}, neuron {d.neuron} {tuple(d.coords)}"
    return (f"<b style='color:#d03030'>Differ</b>: {diffs} spike difference{'s' if diffs != 1 else ''} over steps "
            f"{c.steps[0]}..{c.steps[1]}<br>First divergence ({d.field}): {where}<br>"
            f"spikes A={d.spike_a} B={d.spike_b}<br>{names}")


class QtTraceMode(QObject):
    entered = pyqtSignal(bool)  # trace mode on / off
    compared = pyqtSignal(object)  # DivergenceOverlay, None when cleared

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.trace_session: TraceSession | None = None
        self.overlay = None
        self.jobs = WindowJobs(window, parent=self)
        self._pending_b = None  # file to compare once the live trace arrives
        self.toolbar = None
        self.report_dock = None
        self.session.trace_ready.connect(self._on_live_trace)
        self.session.network_changed.connect(self._on_network_changed)

    # ---- menu --------------------------------------------------------------------------------
    def add_menu_actions(self, menu) -> None:
        menu.addAction("Open &trace…", "Ctrl+Shift+O", self._on_open_trace)
        self.compare_action = menu.addAction("&Compare with trace…", "Ctrl+Shift+C", self._on_compare)
        self.compare_mapped_action = menu.addAction("Compare with trace, &pairing layers…", self._on_compare_mapped)
        self.clear_action = menu.addAction("C&lear comparison", self.clear_comparison)
        self.close_action = menu.addAction("Close t&race (back to the live run)", self.close_trace)
        self.clear_action.setEnabled(False)
        self.close_action.setEnabled(False)

    @property
    def active(self) -> bool:
        return self.trace_session is not None

    def _ask(self, title: str):
        path, _ = QFileDialog.getOpenFileName(self.window, title, self.window._last_dir(), TRACE_FILTER)
        if path:
            self.window.remember_dir(path)
        return path or None

    def _on_open_trace(self) -> None:
        path = self._ask("Open trace")
        if path:
            self.open_trace(path)

    def _on_compare(self) -> None:
        path = self._ask("Compare with trace")
        if path:
            self.compare(path)

    def _on_compare_mapped(self) -> None:
        from PyQt6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getMultiLineText(
            self.window, "Pair layers", "Layers whose names differ between A (this run) and B (the trace),\n"
            "one pair a line or separated by commas: NAME_IN_A=NAME_IN_B", getattr(self, "_mapping_text", ""))
        if not ok:
            return
        try:
            mapping = parse_mapping(text)
        except Exception as exc:
            self.window.error_handler(str(exc), "")
            return
        self._mapping_text = text
        path = self._ask("Compare with trace")
        if path:
            self.compare(path, mapping)

    def busy(self) -> bool:
        return self.jobs.busy()

    def shutdown(self) -> None:
        self.jobs.wait_all()
        if self.trace_session is not None:
            self.trace_session.shutdown()

    # ---- opening a trace -------------------------------------------------------------------------
    def open_trace(self, path) -> None:
        path = Path(path)
        self.jobs.run(f"Reading {path.name}…", lambda pb: self._enter(pb, path), open_playback, path,
                  self.session.network, self.session._loop.window)

    def _enter(self, playback: TracePlayback, path: Path) -> None:
        if self.active:
            self._leave(restore=False)
        self.clear_comparison()
        self.session.pause()
        ts = TraceSession(playback, path, self)
        self.trace_session = ts
        self._connect(self.session, False)
        self._connect(ts, True)
        ts.running_changed.connect(self.window.controls._on_running_changed)
        ts.position_changed.connect(self._on_position)
        self._show_banner(ts)
        self.window.input_view.set_samples(None)
        for action in self.window.controls.actions_by_name.values():
            action.setEnabled(True)
        self.close_action.setEnabled(True)
        self.window.table.set_snapshot(None)
        ts.start(self.session.selected_layer)
        self.entered.emit(True)

    def close_trace(self) -> None:
        if self.active:
            self._leave(restore=True)

    def _leave(self, restore: bool) -> None:
        ts, self.trace_session = self.trace_session, None
        ts.shutdown()
        self._connect(ts, False)
        ts.running_changed.disconnect(self.window.controls._on_running_changed)
        ts.deleteLater()
        self.clear_comparison()
        self.close_action.setEnabled(False)
        if self.toolbar is not None:
            self.toolbar.hide()
        panel_dock = self.window.docks["settings"]
        panel_dock.setWindowTitle("Settings")
        self.window.settings_panel.setEnabled(True)
        if restore:
            self._connect(self.session, True)
            self.window.controls._on_running_changed(self.session.running)
            self.window.controls._on_network_changed()
            self.window.controls._on_config_changed()
            self.window._on_data_changed()
            self.window.table.set_snapshot(None)
            if self.session.selected_layer:
                for _sig, slot in self._links(self.session, "layer"):
                    slot(self.session.selected_layer)
            for _sig, slot in self._links(self.session, "snapshot"):
                slot(self.session.snapshot)
            self.entered.emit(False)

    def _on_network_changed(self) -> None:
        """Opening a model (or the demo) goes back to the live run."""
        if self.active:
            self._leave(restore=True)
        self.clear_comparison()

    def _links(self, src, which: str | None = None):
        """(signal, slot) pairs that tie the consumers to a source (Session or TraceSession)."""
        w = self.window
        snapshot = [w.table.set_snapshot, w.input_view.set_snapshot, w.statusBar().set_snapshot]
        snapshot += [v.set_snapshot for v in w.views.values()]
        layer = [w.table.set_selected_layer] + [v.set_selected_layer for v in w.views.values()]
        links = {"snapshot": [(src.snapshot_ready, s) for s in snapshot],
                 "layer": [(src.layer_selected, s) for s in layer],
                 "intent": [(w.table.layer_selected, src.select_layer)]}
        c = w.controls
        links["intent"] += [(c.action(name).triggered, getattr(src, slot)) for name, slot in
                            (("play", "toggle_play"), ("step", "step"), ("step_layer", "step_layer"),
                             ("reset", "reset"))]
        links["intent"] += [(c.action("run_to").triggered, c._on_run_to if src is self.session else self._on_run_to)]
        return links[which] if which else [p for group in links.values() for p in group]

    def _connect(self, src, on: bool) -> None:
        for signal, slot in self._links(src):
            if on:
                signal.connect(slot)
            else:
                try:
                    signal.disconnect(slot)
                except TypeError:  # was not connected
                    pass

    def _on_run_to(self) -> None:
        if self.trace_session is not None:
            self.trace_session.run_to(self.window.controls.target.value())

    # ---- the trace toolbar -----------------------------------------------------------------------
    def _show_banner(self, ts: TraceSession) -> None:
        w = self.window
        if self.toolbar is None:
            self.toolbar = QToolBar("Trace", w)
            self.toolbar.setObjectName("trace_toolbar")
            self.banner = QLabel()
            self.banner.setStyleSheet(BANNER_STYLE)
            self.slider = QSlider(Qt.Orientation.Horizontal)
            self.slider.setMinimumWidth(300)
            self.slider.setToolTip("Move through the file's timesteps")
            self.slider.valueChanged.connect(self._on_slider)
            self.step_label = QLabel()
            self.step_label.setContentsMargins(8, 0, 8, 0)
            self.toolbar.addWidget(self.banner)
            self.toolbar.addWidget(self.slider)
            self.toolbar.addWidget(self.step_label)
            self.toolbar.addAction(self.compare_action)
            self.toolbar.addAction(self.close_action)
            w.addToolBarBreak()
            w.addToolBar(self.toolbar)
        text = f"viewing trace {ts.path.name} (read-only)"
        self.banner.setText(text)
        self.banner.setToolTip(str(ts.path))
        self.slider.blockSignals(True)
        self.slider.setRange(0, ts.n_positions - 1)
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.toolbar.show()
        w.docks["settings"].setWindowTitle(f"Settings — {text}")
        w.settings_panel.setEnabled(False)
        w.controls.target.setValue(ts.playback.t_at(ts.n_positions - 1))

    def _on_slider(self, value: int) -> None:
        if self.trace_session is not None and value != self.trace_session.position:
            self.trace_session.seek_position(value)

    def _on_position(self, position: int) -> None:
        ts = self.trace_session
        if ts is None:
            return
        if self.slider.value() != position:
            self.slider.blockSignals(True)
            self.slider.setValue(position)
            self.slider.blockSignals(False)
        self.step_label.setText(f"t = {ts.playback.t_at(position)} of {ts.playback.t_at(ts.n_positions - 1)}")

    # ---- comparing -------------------------------------------------------------------------------
    def compare(self, path, mapping: dict | None = None) -> None:
        """Compare A (the open trace, else the live run) with the trace at ``path``; ``mapping``
        pairs layers whose names differ ({name in A: name in B})."""
        path = Path(path)
        self._mapping = dict(mapping or {})
        if self.active:
            ts = self.trace_session
            self.jobs.run(f"Comparing with {path.name}…", self._on_compared, compare_with, ts.trace, str(ts.path), path,
                          (), self._mapping)
        elif self.session.network is None:
            self.window.error_handler("Nothing to compare with: open a model (and run it) or a trace first.", "")
        else:
            self._pending_b = path
            self.session.pause()
            self.session.request_trace()

    def _on_live_trace(self, trace) -> None:
        path, self._pending_b = self._pending_b, None
        if path is None:
            return
        if trace is None or trace.n_steps == 0:
            self.window.error_handler("Nothing to compare yet: step or run the network first.", "")
            return
        notes = []
        if int(trace.steps[0]) > 1:
            notes.append(f"the live run keeps its newest {trace.n_steps} steps: compared over steps "
                         f"{int(trace.steps[0])}..{int(trace.steps[-1])} only")
        self.jobs.run(f"Comparing with {path.name}…", self._on_compared, compare_with, trace, "live run", path, notes,
                      getattr(self, "_mapping", {}))

    def _on_compared(self, result) -> None:
        overlay, report = result
        self.set_overlay(overlay)
        self._show_report(report, summary(overlay.comparison))
        d = overlay.first
        w = self.window
        if d is None:
            w.statusBar().showMessage("Traces agree over the compared steps.", 15_000)
            return
        src = self.trace_session or self.session
        src.select_layer(d.layer)
        for view in w.views.values():
            view.set_sample(d.sample)
        if d.sample <= w.input_view.shown.maximum():  # the Input dock shows the same sample as the views
            w.input_view.shown.setValue(d.sample)
        membrane = w.views.get("membrane")
        if membrane is not None:
            membrane.add_neuron(d.layer, d.neuron)
        if self.trace_session is not None:
            self.trace_session.seek(d.step)
        for key in ("heatmap", "membrane", "raster"):
            if key in w.docks:
                w.docks[key].raise_()
        w.statusBar().showMessage(f"First divergence ({d.field}): step {d.step}, layer {d.layer}, "
                                  f"sample {d.sample}, neuron {d.neuron}", 30_000)

    def set_overlay(self, overlay) -> None:
        self.overlay = overlay
        for view in self.window.views.values():
            if hasattr(view, "set_divergence"):
                view.set_divergence(overlay)
            if hasattr(view, "set_reference"):
                view.set_reference(overlay)
        if hasattr(self, "clear_action"):
            self.clear_action.setEnabled(overlay is not None)
        self.compared.emit(overlay)

    def clear_comparison(self) -> None:
        if self.overlay is not None:
            self.set_overlay(None)
            if self.report_dock is not None:
                self.report.setPlainText("")
                self.summary.setText("")

    def _show_report(self, text: str, short: str = "") -> None:
        w = self.window
        if self.report_dock is None:
            self.summary = QLabel()
            self.summary.setWordWrap(True)
            self.summary.setTextFormat(Qt.TextFormat.RichText)
            self.summary.setContentsMargins(4, 4, 4, 4)
            self.report = QPlainTextEdit()
            self.report.setReadOnly(True)
            self.report.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            font = QFont("monospace")
            font.setStyleHint(QFont.StyleHint.Monospace)
            self.report.setFont(font)
            self.report_dock = QDockWidget("Comparison", w)
            self.report_dock.setObjectName("dock_compare")
            box = QWidget()
            layout = QVBoxLayout(box)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(self.summary)
            layout.addWidget(self.report, 1)
            self.report_dock.setWidget(box)
            w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.report_dock)
            w.tabifyDockWidget(w.docks["settings"], self.report_dock)
            w.view_menu.addAction(self.report_dock.toggleViewAction())
        self.report.setPlainText(text)
        self.summary.setText(short)
        self.report_dock.show()
        self.report_dock.raise_()
