"""QtMainWindow: composes the session's views; holds no simulation logic of its own.

The layer table is the central widget; settings, input and the plot views are dock widgets that
a person can move, tabify and hide (View menu), and the layout is remembered between sessions
(``QSettings``). The plot views are added from ``PLOT_VIEWS``: a view whose module is not there
is left out, one that fails to build is reported, and the rest of the window works.
Errors from the session go to ``error_handler(message, details)``; by default a non-blocking
message box whose details can be copied.
"""

from __future__ import annotations

import importlib
import math
import time
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtGui import QGuiApplication, QTextCursor
from PyQt6.QtWidgets import (QDockWidget, QFileDialog, QMainWindow, QMessageBox, QPlainTextEdit, QScrollArea,
                             QVBoxLayout, QWidget)

from workbench.models.loading import DEMO_DIR
from workbench.views.qt_controls import QtControls, QtStatus
from workbench.views.qt_input import QtInputView
from workbench.views.qt_network_table import QtTablePanel
from workbench.views.qt_settings import QtSettingsPanel
from workbench.views.qt_trace_export import QtTraceExport
from workbench.views.qt_trace_mode import QtTraceMode
from workbench.views.sim_loop import describe_error

ORGANIZATION = "SNN Workbench"
APPLICATION = "snn-workbench"
MAX_RECENT = 8
SILENT_AFTER = 30  # steps after which a network without any spike is said to be silent
Area = Qt.DockWidgetArea
# (key, module, class, title, area)
PLOT_VIEWS = (
    ("raster", "workbench.views.qt_raster", "QtRasterView", "Spike raster", Area.BottomDockWidgetArea),
    ("membrane", "workbench.views.qt_membrane", "QtMembraneView", "Membrane potential", Area.BottomDockWidgetArea),
    ("heatmap", "workbench.views.qt_heatmap", "QtHeatmapView", "Layer heat map", Area.RightDockWidgetArea),
    ("ann_vs_snn", "workbench.views.qt_ann_vs_snn", "QtAnnSnnView", "ANN vs SNN", Area.RightDockWidgetArea),
    ("rates", "workbench.views.qt_rates", "QtRatesView", "Firing rates", Area.RightDockWidgetArea),
    ("accuracy", "workbench.views.qt_accuracy", "QtAccuracyView", "Accuracy over time", Area.RightDockWidgetArea),
)
MODEL_FILTER = "Models (*.keras *.h5 *.hdf5 *.onnx *.npz);;All files (*)"
DATA_FILTER = "Sample data (*.npz *.npy *.png *.pgm *.ppm *.pnm);;All files (*)"


def _scrolling(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def load_views(specs=PLOT_VIEWS):
    """[(key, title, area, widget)] for the views that exist, and [(message, details)] for the
    ones that exist but failed to build."""
    views, problems = [], []
    for key, module_name, class_name, title, area in specs:
        try:
            widget = getattr(importlib.import_module(module_name), class_name)()
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            problems.append(describe_error(exc))
        except Exception as exc:  # a broken view must not take the window down
            problems.append(describe_error(exc))
        else:
            views.append((key, title, area, widget))
    return views, problems


class QtMainWindow(QMainWindow):
    def __init__(self, session, settings: QSettings | None = None, error_handler=None, view_specs=PLOT_VIEWS):
        super().__init__()
        self.session = session
        self.settings = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)
        self.error_handler = error_handler or self._show_error
        self.docks: dict[str, QDockWidget] = {}
        self.views: dict[str, QWidget] = {}
        self.table_panel = QtTablePanel()
        self.table = self.table_panel.table
        self.setCentralWidget(self.table_panel)
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setPlaceholderText("Messages, warnings and errors of this session appear here.")
        self.messages: list[str] = []
        self._silent_said = False
        self.settings_panel = QtSettingsPanel()
        self.input_view = QtInputView()
        self.controls = QtControls(session, self)
        self.addToolBar(self.controls)
        self.setStatusBar(QtStatus(session, self))
        self._add_dock("input", "Input", self.input_view, Area.LeftDockWidgetArea)
        settings_box = QWidget()
        box = QVBoxLayout(settings_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(_scrolling(self.settings_panel), 1)
        box.addWidget(self.settings_panel.take_button_bar())  # Apply stays in view
        self._add_dock("settings", "Settings", settings_box, Area.LeftDockWidgetArea)
        views, problems = load_views(view_specs)
        for key, title, area, widget in views:
            self._add_plot_view(key, title, area, widget)
        log_dock = self._add_dock("log", "Messages", self.log_view, Area.BottomDockWidgetArea)
        bottom = [d for k, d in self.docks.items() if k != "log" and self.dockWidgetArea(d) == Area.BottomDockWidgetArea]
        if bottom:
            self.tabifyDockWidget(bottom[-1], log_dock)
            bottom[-1].raise_()
        self.trace_mode = QtTraceMode(self)  # File > Open trace / Compare with trace
        self.trace_export = QtTraceExport(self)  # File > Export trace
        self._build_menus()
        self._connect()
        try:  # Tools > Evaluate…/Diagnose and the diagnosis dock; a broken tool must not stop the window
            from workbench.views.qt_eval_tools import install_eval_tools

            install_eval_tools(self)
        except Exception as exc:
            problems.append(describe_error(exc))
        self._restore_layout()
        self._on_network_changed()
        for problem in problems:
            self.error_handler(*problem)

    # ---- building ---------------------------------------------------------------------------
    def _add_dock(self, key: str, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        previous = [d for d in self.docks.values() if self.dockWidgetArea(d) == area]
        self.addDockWidget(area, dock)
        if area == Area.RightDockWidgetArea and previous:
            self.tabifyDockWidget(previous[-1], dock)
        self.docks[key] = dock
        return dock

    def _add_plot_view(self, key, title, area, widget) -> None:
        self.views[key] = widget
        dock = self._add_dock(key, title, widget, area)
        dock.visibilityChanged.connect(widget.set_on_screen)  # a tab behind another does not paint
        self.session.snapshot_ready.connect(widget.set_snapshot)
        self.session.layer_selected.connect(widget.set_selected_layer)
        if hasattr(widget, "neuron_clicked"):
            widget.neuron_clicked.connect(self._on_neuron_clicked)
        if hasattr(widget, "stacked_changed"):
            widget.stacked_changed.connect(self.session.set_history_all)
        if hasattr(widget, "watched_changed"):
            widget.watched_changed.connect(self._on_watched_changed)
        if hasattr(widget, "render_failed"):
            widget.render_failed.connect(self._on_render_failed)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction("Open &model…", "Ctrl+O", self._on_open_model)
        file_menu.addAction("Open &data…", "Ctrl+D", self._on_open_data)
        file_menu.addAction("Open d&emo", self.session.open_demo)
        file_menu.addAction("Re&play input from trace…", self._on_replay_input).setToolTip(
            "Replay the input spike train of a trace (its input layer), as run --input recorded --input-spikes")
        self.stop_replay_action = file_menu.addAction("Stop replaying input", self.session.stop_replay)
        self.stop_replay_action.setEnabled(False)
        file_menu.addSeparator()
        self.trace_mode.add_menu_actions(file_menu)
        self.trace_export.add_menu_action(file_menu)
        self.recent_menu = file_menu.addMenu("&Recent models")
        file_menu.addSeparator()
        file_menu.addAction("&Quit", "Ctrl+Q", self.close)
        self.view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            self.view_menu.addAction(dock.toggleViewAction())
        self.view_menu.addAction(self.controls.toggleViewAction())
        self.view_menu.addSeparator()
        self.view_menu.addAction("&Find neuron…", "Ctrl+F", self._on_find_neuron)
        self._fill_recent()

    def _connect(self) -> None:
        s = self.session
        s.error.connect(self._on_error)
        s.status.connect(lambda message: message and self.log(message))
        s.conversion_warnings.connect(self._on_conversion_warnings)
        s.network_changed.connect(self._on_network_changed)
        s.config_changed.connect(self._on_config_changed)
        s.data_changed.connect(self._on_data_changed)
        s.snapshot_ready.connect(self.table.set_snapshot)
        s.snapshot_ready.connect(self._check_silent)
        s.snapshot_ready.connect(self.input_view.set_snapshot)
        s.replay_changed.connect(self.input_view.set_replay)
        s.replay_changed.connect(self._on_replay_changed)
        s.layer_selected.connect(self.table.set_selected_layer)
        self.table.layer_selected.connect(s.select_layer)
        self.settings_panel.config_edited.connect(s.set_config)
        self.settings_panel.conversion_edited.connect(s.set_conversion)
        self.settings_panel.budget_edited.connect(self._on_budget_edited)
        saved = self.settings.value("memory_budget", None)
        try:
            if saved is not None and int(saved) > 0:
                s.set_memory_budget(int(saved))
        except (TypeError, ValueError):
            pass
        self.settings_panel.set_budget(s.memory_budget)
        self.input_view.sample_selected.connect(s.select_sample)
        self.input_view.batch_sample_selected.connect(self._on_batch_sample_selected)
        accuracy = self.views.get("accuracy")
        if accuracy is not None:
            s.ann_accuracy_changed.connect(accuracy.set_ann_accuracy)

    # ---- session events ----------------------------------------------------------------------
    def log(self, message: str, level: str = "") -> None:
        """Add a line to the Messages dock (kept for the session; the status bar forgets)."""
        line = f"{time.strftime('%H:%M:%S')}  {level + ': ' if level else ''}{message}"
        self.messages.append(line)
        self.log_view.appendPlainText(line)
        self.log_view.moveCursor(QTextCursor.MoveOperation.End)

    def _on_conversion_warnings(self, warnings) -> None:
        """The conversion plan's warnings (a tanh layer on a rectifying neuron, ...): kept in the
        Messages dock, the first also in the status bar."""
        for w in warnings:
            self.log(w, "conversion")
        if warnings:
            more = f" (+{len(warnings) - 1} more in Messages)" if len(warnings) > 1 else ""
            self.statusBar().say(f"Conversion: {warnings[0]}{more}")

    def _on_error(self, message: str, details: str) -> None:
        self.log(message, "error")
        self.error_handler(message, details)

    def _on_render_failed(self, message: str, details: str) -> None:
        self.log(message, "view error")
        if details:
            self.log_view.appendPlainText(details.rstrip())
        self.statusBar().say(f"{message} (details in Messages)")

    def _reset_views(self, forget: bool = True) -> None:
        """Nothing from before stays in any view: a new model or data set runs from scratch
        (``forget``: another model, so also the views' legends, layouts and overlays)."""
        for view in self.views.values():
            view.reset(forget)
        self._update_notice()

    def _update_notice(self) -> None:
        self._silent_said = False
        s = self.session
        if s.network is None:
            text = "No model open: File > Open model… (Keras .keras/.h5 or a converted .npz), or File > Open demo."
        elif s.samples is None:
            shape = "×".join(map(str, s.network.input_shape))
            text = (f"No data open: the table shows the architecture only. File > Open data… (an .npz with x of "
                    f"shape (N, {', '.join(map(str, s.network.input_shape))}) and optional labels y, or an image "
                    f"of {shape}) to run the network.")
        else:
            text = ""
        self.table_panel.set_notice(text)
        net = s.network
        if net is None:
            self.table_panel.set_counts(0, 0, 0)
        else:
            neuron = net.neuron_layers
            self.table_panel.set_counts(len(net.layers), len(neuron),
                                        sum(math.prod(layer.output_shape) for layer in neuron))

    def _check_silent(self, snapshot) -> None:
        """Say it when the whole network stays silent (no layer spiked after SILENT_AFTER steps)."""
        silent = (snapshot is not None and snapshot.t >= SILENT_AFTER and bool(snapshot.stats)
                  and all(st.mean_rate == 0 for st in snapshot.stats))
        if silent == self._silent_said:
            return
        self._silent_said = silent
        if silent:
            text = (f"The network is silent: no neuron layer has spiked in {snapshot.t} steps. Check the neuron "
                    "model's threshold against dt (an IF neuron adds dt*J per step), the rate scale and the "
                    "encoding; Tools > Diagnose tells which layer to look at.")
            self.table_panel.set_notice(text)
            self.log(text, "warning")
        else:
            self._update_notice()

    def _on_network_changed(self) -> None:
        network = self.session.network
        self.table.set_network(network)
        self._reset_views()
        if network is None:
            self.setWindowTitle("SNN Workbench")
            return
        membrane = self.views.get("membrane")
        if membrane is not None:
            membrane.keep_layers([layer.name for layer in network.layers])
        path = self.session.model_path
        self.setWindowTitle(f"{network.name}{f' ({path.name})' if path else ''} — SNN Workbench")
        self.settings_panel.set_layers([layer.name for layer in network.neuron_layers])
        if path is not None and path.resolve().parent != DEMO_DIR:
            self._remember(path)
        if self.session.selected_layer:
            for view in self.views.values():
                view.set_selected_layer(self.session.selected_layer)
            self.table.set_selected_layer(self.session.selected_layer)

    def _on_config_changed(self) -> None:
        self.settings_panel.set_config(self.session.config, self.session.percentile, self.session.conversion)

    def _on_data_changed(self) -> None:
        self._reset_views(forget=False)
        self.input_view.set_samples(self.session.samples, self.session.batch_start)
        samples = self.session.samples
        self.settings_panel.set_data_size(None if samples is None else len(samples))

    def _on_replay_input(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Replay the input spike train of a trace", "",
                                              "Traces (*.npz *.h5 *.hdf5 *.csv);;All files (*)")
        if path:
            self.session.replay_input(path)

    def _on_replay_changed(self, replay) -> None:
        self.stop_replay_action.setEnabled(replay is not None)
        if replay is not None:
            self.statusBar().say(f"Replaying the {replay.describe()}.")

    def _on_find_neuron(self) -> None:
        """Ask for a neuron of the selected layer (number or h, w, c): the raster zooms to it and
        the membrane view watches it."""
        from PyQt6.QtWidgets import QInputDialog

        raster = self.views.get("raster")
        if raster is None or self.session.selected_layer is None:
            return
        text, ok = QInputDialog.getText(self, "Find neuron",
                                        f"Neuron of {self.session.selected_layer}: its number, or h, w, c")
        if ok and text.strip():
            self.docks["raster"].raise_()
            raster.find_neuron(text)

    def _on_budget_edited(self, nbytes: int) -> None:
        self.session.set_memory_budget(nbytes)
        self.settings.setValue("memory_budget", int(nbytes))

    def _on_batch_sample_selected(self, index: int) -> None:
        for view in self.views.values():
            view.set_sample(index)

    def _on_neuron_clicked(self, layer: str, index: int) -> None:
        membrane = self.views.get("membrane")
        if membrane is not None:
            membrane.add_neuron(layer, index)
            self.docks["membrane"].raise_()

    def _on_watched_changed(self, *_args) -> None:
        self.session.set_watched(self.views["membrane"].watched())

    # ---- files -------------------------------------------------------------------------------
    def _on_open_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", self._last_dir(), MODEL_FILTER)
        if path:
            self.remember_dir(path)
            self.open_model(path)

    def _on_open_data(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open sample data", self._last_dir(), DATA_FILTER)
        if path:
            self.remember_dir(path)
            self.session.open_data(path)

    def open_model(self, path) -> None:
        self.session.open_model(path)

    def recent_models(self) -> list[str]:
        value = self.settings.value("recent/models", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember(self, path: Path) -> None:
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent_models() if p != path]
        self.settings.setValue("recent/models", recent[:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_models():
            self.recent_menu.addAction(Path(path).name, lambda p=path: self.open_model(p)).setToolTip(path)
        self.recent_menu.setEnabled(bool(self.recent_models()))

    def remember_dir(self, path) -> None:
        """The folder of a file picked in a dialog: the next file dialog starts there."""
        self.settings.setValue("dialogs/last_dir", str(Path(path).resolve().parent))

    def _last_dir(self) -> str:
        last = self.settings.value("dialogs/last_dir")
        if last and Path(last).is_dir():
            return str(last)
        recent = self.recent_models()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    # ---- layout, errors, closing ---------------------------------------------------------------
    def _default_layout(self) -> None:
        """Dock sizes for a first start (applied once the window is shown, when they can be)."""
        left = [d for key, d in self.docks.items() if self.dockWidgetArea(d) == Area.LeftDockWidgetArea]
        right = [d for d in self.docks.values() if self.dockWidgetArea(d) == Area.RightDockWidgetArea]
        bottom = [d for d in self.docks.values() if self.dockWidgetArea(d) == Area.BottomDockWidgetArea]
        self.resizeDocks(left[:1] + right[:1], [340, 560], Qt.Orientation.Horizontal)
        self.resizeDocks(left[:2], [230, 600], Qt.Orientation.Vertical)
        if bottom:
            self.resizeDocks(bottom[:1], [330], Qt.Orientation.Vertical)
        if right:
            right[0].raise_()

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:  # 1500x950, or the screen's free area on a smaller screen (a 1366x768 laptop)
            screen = self.screen() or QGuiApplication.primaryScreen()
            free = screen.availableGeometry() if screen is not None else None
            self.resize(min(1500, free.width()) if free else 1500, min(950, free.height()) if free else 950)
        self._first_show = self.settings.value("window/state") is None
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)

    def showEvent(self, event):  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._first_show:
            self._first_show = False
            QTimer.singleShot(0, self._default_layout)

    def _show_error(self, message: str, details: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "SNN Workbench", message, parent=self)
        box.setDetailedText(details)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def closeEvent(self, event):  # noqa: N802 (Qt override)
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        self.trace_mode.shutdown()
        self.trace_export.shutdown()
        self.session.shutdown()
        super().closeEvent(event)
