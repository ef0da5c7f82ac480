"""QtControls (the run toolbar and its shortcuts) and QtStatus (the status bar).

Toolbar actions turn into Session intents; nothing here steps anything:
Play/Pause (Space), Step (Right, S), Step layer (L, Shift+Right), Run to T (with its spin box,
Ctrl+T), Reset (R, Ctrl+R). The status bar shows the timestep, steps per second, the predicted
against the true class (accuracy for a batch), the next layer while mid-step, and, while the
session works on something long (opening, normalizing, the first compile of the kernels), a
progress bar (busy until the job reports how far its normalization is, then a percentage) and,
for opening and normalizing, a Cancel button (Esc).
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt, pyqtSlot
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QLabel, QProgressBar, QPushButton, QSpinBox, QStatusBar, QStyle,
                             QToolBar)

SPEEDS = (("max speed", None), ("10,000 steps/s", 10_000), ("1,000 steps/s", 1_000), ("100 steps/s", 100),
          ("30 steps/s", 30), ("10 steps/s", 10), ("3 steps/s", 3), ("1 step/s", 1))
SHORTCUTS = {
    "play": ("Space",),
    "step": ("Right", "S"),
    "step_layer": ("L", "Shift+Right"),
    "run_to": ("Ctrl+T",),
    "reset": ("R", "Ctrl+R"),
}

_PIX = QStyle.StandardPixmap
ICONS = {"play": _PIX.SP_MediaPlay, "pause": _PIX.SP_MediaPause, "step": _PIX.SP_MediaSeekForward,
         "step_layer": _PIX.SP_ArrowRight, "run_to": _PIX.SP_MediaSkipForward, "reset": _PIX.SP_MediaSkipBackward}


class QtControls(QToolBar):
    def __init__(self, session, parent=None):
        super().__init__("Run", parent)
        self.setObjectName("run_toolbar")
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.session = session
        self.actions_by_name: dict[str, QAction] = {}
        for name, text, tip, slot in (
            ("play", "Play", "Run the sample to T, then (with 'next sample') the next one, at the chosen speed",
             session.toggle_play),
            ("step", "Step", "Advance one timestep (all layers)", session.step),
            ("step_layer", "Step layer", "Advance the next layer only (the cursor)", session.step_layer),
            ("run_to", "Run to", "Run until timestep T (from t = 0 again when t is already past T)",
             self._on_run_to),
            ("reset", "Reset", "Back to t = 0 (state, RNG and recording)", session.reset),
        ):
            action = QAction(text, self)
            if name in ICONS:
                action.setIcon(self.style().standardIcon(ICONS[name]))
            keys = SHORTCUTS[name]
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setToolTip(f"{tip} ({' / '.join(keys)})")
            action.triggered.connect(slot)
            self.addAction(action)
            self.actions_by_name[name] = action
            if name == "run_to":
                self.target = QSpinBox(minimum=1, maximum=2**31 - 1, value=session.config.steps)
                self.target.setPrefix("T = ")
                self.target.setToolTip("Timestep to run to; Play runs each sample to it")
                self.target.valueChanged.connect(session.set_play_steps)
                self.addWidget(self.target)
        self.addSeparator()
        self.through = QCheckBox("next sample")
        self.through.setChecked(session.play_through)
        self.through.setToolTip("Play: after T steps go on with the next sample (batch) from t = 0")
        self.through.toggled.connect(session.set_play_through)
        self.addWidget(self.through)
        self.speed = QComboBox()
        for text, value in SPEEDS:
            self.speed.addItem(text, value)
        self.speed.setToolTip("Steps per second of Play (slow enough to watch each step)")
        self.speed.currentIndexChanged.connect(lambda i: session.set_speed(self.speed.itemData(i)))
        self.addWidget(self.speed)
        session.running_changed.connect(self._on_running_changed)
        session.config_changed.connect(self._on_config_changed)
        session.network_changed.connect(self._on_network_changed)
        self._on_network_changed()

    def action(self, name: str) -> QAction:
        return self.actions_by_name[name]

    def _on_run_to(self) -> None:
        self.session.run_to(self.target.value())

    def _on_running_changed(self, running: bool) -> None:
        play = self.action("play")
        play.setText("Pause" if running else "Play")
        play.setIcon(self.style().standardIcon(ICONS["pause" if running else "play"]))

    def _on_config_changed(self) -> None:
        self.target.setValue(self.session.config.steps)

    def _on_network_changed(self) -> None:
        loaded = self.session.network is not None
        for action in self.actions_by_name.values():
            action.setEnabled(loaded)


def prediction_text(snapshot) -> str:
    pred, labels = snapshot.predictions, snapshot.labels
    if snapshot.t == 0 and not snapshot.cursor:
        return "no step yet" + ("" if snapshot.batch == 1 or labels is None else f" ({snapshot.batch} samples)")
    if snapshot.batch == 1:
        shown = "–" if pred[0] < 0 else str(int(pred[0]))
        return f"predicted {shown}" + ("" if labels is None else f" / true {int(labels[0])}")
    if labels is None:
        return f"{snapshot.batch} samples"
    right = int(np.sum(pred == labels))
    return f"accuracy {right}/{snapshot.batch} ({right / snapshot.batch:.0%})"


class QtStatus(QStatusBar):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.time_label = QLabel()
        self.speed_label = QLabel()
        self.prediction_label = QLabel()
        self.cursor_label = QLabel()
        self.speed_label.setMinimumWidth(self.speed_label.fontMetrics().horizontalAdvance("000,000 steps/s") + 24)
        self.progress = QProgressBar(maximum=0, maximumWidth=120, textVisible=False)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setShortcut(QKeySequence("Esc"))
        self.cancel_button.setToolTip("Stop opening or normalizing; nothing is changed (Esc)")
        self.cancel_button.clicked.connect(session.cancel_jobs)
        self.cancel_button.hide()
        for w in (self.cursor_label, self.prediction_label, self.speed_label, self.time_label, self.progress,
                  self.cancel_button):
            if isinstance(w, QLabel):
                w.setContentsMargins(10, 0, 10, 0)
            self.addPermanentWidget(w)
        self.session = session
        self._busy_message = None
        self._said = ("", "")  # (message, what was shown of it) of the last say()
        session.snapshot_ready.connect(self.set_snapshot)
        session.status.connect(self._on_status)
        session.busy_changed.connect(self._on_busy)
        session.cancellable_changed.connect(self.cancel_button.setVisible)
        session.job_progress.connect(self._on_progress)
        self.set_snapshot(None)

    @pyqtSlot(object)
    def set_snapshot(self, snapshot) -> None:
        if snapshot is None:
            for label in (self.time_label, self.speed_label, self.prediction_label, self.cursor_label):
                label.setText("")
            return
        self.time_label.setText(f"t = {snapshot.t}")
        self.speed_label.setText(f"{snapshot.steps_per_second:,.0f} steps/s" if snapshot.running else "paused")
        self.prediction_label.setText(prediction_text(snapshot))
        layer = snapshot.cursor_layer or ""
        layer = layer if len(layer) <= 28 else layer[:27] + "…"
        self.cursor_label.setText(f"mid-step: next layer {layer}" if layer else "")

    def _on_busy(self, busy: bool) -> None:
        self.progress.setRange(0, 0)  # busy until the job says how far it is
        self.progress.setTextVisible(False)
        self.progress.setVisible(busy)

    def _on_progress(self, fraction: float) -> None:
        self.progress.setRange(0, 100)
        self.progress.setValue(round(100 * fraction))
        self.progress.setTextVisible(True)

    def say(self, message: str, timeout_ms: int = 15_000) -> None:
        """``showMessage``, cut with '…' to the room left by t, speed and prediction (which stay in
        view); the whole message is in the tooltip and in the Messages dock."""
        room = self.width() - sum(w.sizeHint().width() for w in (self.cursor_label, self.prediction_label,
                                                                  self.speed_label, self.time_label)
                                  if w.isVisible()) - 40
        shown = self.fontMetrics().elidedText(message, Qt.TextElideMode.ElideRight, max(room, 80))
        self.setToolTip(message if shown != message else "")
        self._said = (message, shown)
        self.showMessage(shown, timeout_ms)

    def _on_status(self, message: str) -> None:
        """A note shows for 15 s; what the session is busy with stays until it is done."""
        if message:
            self.say(message, 0 if self.session.busy else 15_000)
        elif self._busy_message is not None and self._said == (self._busy_message, self.currentMessage()):
            self.clearMessage()
        self._busy_message = message if self.session.busy else None
