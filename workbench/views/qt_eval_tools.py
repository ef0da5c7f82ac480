"""The window's evaluation tools: Tools > Evaluate… and Tools > Diagnose, and the docked
diagnosis panel linked to the layer table.

``install_eval_tools(window)`` adds them to a ``QtMainWindow`` (after its menus and signal
connections, before its layout is restored, so the dock's place is remembered). The dialog runs
on the session's current normalized network, settings and samples; its diagnosis fills the
panel, whose findings select their layer in the session (and so in the table and every view).
Closing the window cancels a running evaluation and waits for its thread.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt

from workbench.views.qt_diagnosis import QtDiagnosisPanel


class _CloseWatcher(QObject):
    def __init__(self, tools: "EvalTools"):
        super().__init__(tools.window)
        self.tools = tools

    def eventFilter(self, obj, event):  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Close:
            self.tools.close_dialog()
        return False


class EvalTools:
    def __init__(self, window):
        self.window = window
        self.session = window.session
        self.dialog = None
        self.panel = QtDiagnosisPanel()
        self.dock = window._add_dock("diagnosis", "Diagnosis", self.panel, Qt.DockWidgetArea.RightDockWidgetArea)
        window.view_menu.addAction(self.dock.toggleViewAction())
        menu = window.menuBar().addMenu("&Tools")
        self.evaluate_action = menu.addAction("&Evaluate…", "Ctrl+E", lambda: self.open_dialog(start=False))
        self.diagnose_action = menu.addAction("&Diagnose", "Ctrl+Shift+D", lambda: self.open_dialog(start=True))
        self.panel.layer_selected.connect(self.session.select_layer)
        self.session.layer_selected.connect(self.panel.select_layer)
        self.session.network_changed.connect(self._on_network_changed)
        self.session.conversion_edited.connect(lambda: self.panel.mark_stale("the conversion changed"))
        self._original = self.session.original  # the model the diagnosis is of
        self.session.config_changed.connect(self._on_config_changed)
        self.session.data_changed.connect(lambda: self.panel.mark_stale("the data or sample changed"))
        self.panel.apply_requested.connect(self.apply)
        self.panel.rerun_requested.connect(lambda: self.open_dialog(start=True))
        self.panel.config = self.session.config
        window.installEventFilter(_CloseWatcher(self))

    def open_dialog(self, start: bool = False):
        """The Evaluate dialog on the session's network and samples; ``start`` runs it at once
        (Diagnose). Returns the dialog, or None when there is nothing to evaluate."""
        from workbench.views.qt_evaluate_dialog import QtEvaluateDialog

        s = self.session
        if s.network is None or s.samples is None:
            self.window.error_handler("Open a model and sample data first: evaluation runs over the data set.", "")
            return None
        if self.dialog is not None and self.dialog.running:
            self.dialog.raise_()
            return self.dialog
        self.close_dialog()
        self.dialog = QtEvaluateDialog(s.network, s.config, s.samples, self.window)
        self.dialog.diagnosed.connect(self._on_diagnosed)
        self.dialog.show()
        if start:
            self.dialog.start()
        return self.dialog

    def _on_network_changed(self) -> None:
        """Another model clears the diagnosis; the same model converted again leaves it, out of date."""
        if self.session.original is not self._original:
            self.panel.set_diagnosis(None)
        self._original = self.session.original

    def _on_config_changed(self) -> None:
        if self.panel.config is not None and self.panel.config != self.session.config:
            self.panel.mark_stale("the settings changed")
        self.panel.config = self.session.config

    def apply(self, changes: dict, rerun: bool = True) -> None:
        """Set what a finding suggests (Settings fields), then diagnose again on the new settings."""
        from workbench.views.qt_diagnosis import apply_changes

        s = self.session
        try:
            config, percentile = apply_changes(changes, s.config)
        except Exception as exc:  # a suggestion the settings refuse (ConfigError names the field)
            from workbench.views.sim_loop import describe_error

            self.window._on_error(*describe_error(exc))
            return
        if config != s.config:
            s.set_config(config)
        if percentile is not None:
            s.set_percentile(float(percentile))
        self.window.log("Applied from the diagnosis: " + ", ".join(f"{k} = {v:g}" for k, v in changes.items()))
        if rerun:
            self.open_dialog(start=True)

    def close_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.close()  # cancels and waits for its thread

    def _on_diagnosed(self, diagnosis) -> None:
        self.panel.set_diagnosis(diagnosis)
        self.dock.show()
        self.dock.raise_()


def install_eval_tools(window) -> EvalTools:
    tools = EvalTools(window)
    window.eval_tools = tools
    return tools
