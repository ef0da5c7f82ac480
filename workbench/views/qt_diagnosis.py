"""QtDiagnosisPanel: the findings of a diagnosis, most severe first, linked to the layer table.

One row per finding (severity, layer, cause, the message); below the list the selected
finding in full: what was measured, the numbers, and the change to try. Clicking a finding emits
``layer_selected(name)`` (network-wide findings have no layer and emit nothing);
``select_layer(name)`` from the layer table highlights that layer's first finding. ``set_diagnosis``
takes an ``engine.diagnosis.Diagnosis`` (or None to clear). The panel holds no engine state.
"""

from __future__ import annotations

import html
import math
import re

from PyQt6.QtCore import Qt, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSplitter,
                             QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

SEVERITY_COLORS = {3: "#e05050", 2: "#e0a030", 1: "#6aa0e0", 0: "#a0a0a0"}
CAUSE_TITLES = {
    "saturated": "saturated", "silent": "silent", "resolution": "rate resolution",
    "low_correlation": "correlation drop", "maxpool_error": "max-pool error", "quantization": "quantization",
    "negative_spikes": "negative spikes", "not_converged": "not converged", "unnormalized": "not normalized",
}
COLUMNS = ("severity", "layer", "cause", "finding")
FIELD_NAMES = {"steps": "steps", "rate_scale": "rate scale", "percentile": "normalization percentile", "dt": "dt"}
_NUM = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def _field_name(key: str) -> str:
    return f"neuron parameter {key[6:]}" if key.startswith("param.") else FIELD_NAMES.get(key, key)


def settings_changes(finding, config=None, percentile=None) -> tuple[dict, str]:
    """({setting: value} the finding's advice maps onto, the advice in the Settings' words).
    Settings: "steps", "rate_scale", "percentile", "dt", "param.<name>" (the global neuron
    model's parameter)."""
    text = finding.suggestion
    changes: dict = {}
    own = getattr(finding, "settings", None)
    if own:
        changes.update(own)
    rate = getattr(config, "rate_scale", 1.0) or 1.0

    def relative(match):
        verb, factor = match.group(1), float(match.group(2))
        value = rate * factor if verb == "raise" else rate / factor
        changes.setdefault("rate_scale", float(f"{value:.3g}"))
        return f"{verb} Settings › rate scale by ~{factor:g}x (to {changes['rate_scale']:g})"

    text = re.sub(r"(raise|lower) the rate scale \(--rate-scale\) by ~" + _NUM + "x", relative, text)

    def flag(key, cast=float):
        def sub(match):
            changes.setdefault(key, cast(match.group(1)))
            return f"Settings › {_field_name(key)} = {match.group(1)}"
        return sub

    text = re.sub(r"--steps (\d+)", flag("steps", int), text)
    text = re.sub(r"--rate-scale " + _NUM, flag("rate_scale"), text)
    text = re.sub(r"--normalize " + _NUM, flag("percentile"), text)
    text = re.sub(r"--dt " + _NUM, flag("dt"), text)

    def param(match):
        changes.setdefault(f"param.{match.group(1)}", float(match.group(2)))
        return f"Settings › {match.group(1)} = {match.group(2)}"

    text = re.sub(r"--param (\w+)=" + _NUM, param, text)
    text = re.sub(r"\(?--param (\w+)=\.\.\.[^)]*\)?", r"(Settings › \1)", text)
    text = text.replace("(--rate-scale)", "(Settings › rate scale)")
    text = re.sub(r" --calibration FILE", " (File › Open data: the calibration set)", text)
    return changes, text


def apply_changes(changes: dict, config):
    """(the SimConfig with ``changes`` applied, the percentile or None)."""
    import dataclasses

    kw, params = {}, {}
    for key, value in changes.items():
        if key.startswith("param."):
            params[key[6:]] = value
        elif key in ("steps", "rate_scale", "dt"):
            kw[key] = int(value) if key == "steps" else float(value)
    if params:
        known = {k: v for k, v in params.items() if k in config.neuron.params()}
        if known:
            kw["neuron"] = dataclasses.replace(config.neuron, **known)
    return config.replace(**kw) if kw else config, changes.get("percentile")


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


class QtDiagnosisPanel(QWidget):
    layer_selected = pyqtSignal(str)
    apply_requested = pyqtSignal(dict)  # {setting: value} of the selected finding
    rerun_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._diagnosis = None
        self.config = None  # the settings that run (to turn "by ~2x" into a value)
        self.stale = ""
        self.apply_button = QPushButton("Apply suggestion")
        self.apply_button.setToolTip("Set the Settings fields this finding suggests and diagnose again")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self._on_apply)
        self.rerun_button = QPushButton("Diagnose again")
        self.rerun_button.setToolTip("Run the diagnosis on the current settings (Ctrl+Shift+D)")
        self.rerun_button.clicked.connect(self.rerun_requested)
        self.summary = QLabel("No diagnosis yet: run Tools > Diagnose.")
        self.summary.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.tree.header()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMargin(6)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addStretch(1)
        buttons.addWidget(self.rerun_button)
        layout.addLayout(buttons)
        self.tree.currentItemChanged.connect(self._on_current_changed)
        self.tree.itemClicked.connect(self._on_item_clicked)
        self.tree.itemActivated.connect(self._on_item_clicked)

    # ---- slots -----------------------------------------------------------------------------
    @pyqtSlot(object)
    def set_diagnosis(self, diagnosis) -> None:
        self._diagnosis = diagnosis
        self.stale = ""
        self.tree.clear()
        self.details.setText("")
        self.apply_button.setEnabled(False)
        if diagnosis is None:
            self.summary.setText("No diagnosis yet: run Tools > Diagnose.")
            return
        r = diagnosis.result
        acc = ""
        if r.labelled and r.samples:
            acc = (f"ANN {100 * r.ann_accuracy:.2f}%, SNN {100 * r.snn_accuracy[-1]:.2f}% after {r.steps} steps "
                   f"on {r.samples} samples. ")
        n = len(diagnosis.findings)
        self.summary.setText(acc + (f"{n} finding{'s' if n != 1 else ''}; click one to see its layer."
                                    if n else "Nothing stands out."))
        for i, f in enumerate(diagnosis.findings):
            short = f.message.removeprefix(f"layer {f.layer}: ") if f.layer else f.message
            item = QTreeWidgetItem([f.severity_name, f.layer or "(network)", CAUSE_TITLES.get(f.cause, f.cause),
                                    short])
            item.setData(0, Qt.ItemDataRole.UserRole, i)
            item.setForeground(0, QBrush(QColor(SEVERITY_COLORS.get(f.severity, "#a0a0a0"))))
            item.setToolTip(3, f"{f.message}\n\n→ {settings_changes(f, self.config)[1]}")
            self.tree.addTopLevelItem(item)
        if n:
            self.tree.setCurrentItem(self.tree.topLevelItem(0))

    def mark_stale(self, reason: str) -> None:
        """The findings are from before ``reason`` (Apply, new data): say so, offer to rerun."""
        if self._diagnosis is None or self.stale:
            return
        self.stale = reason
        self.summary.setText(f"<b style='color:#e0a030'>Out of date:</b> {html.escape(reason)} since this "
                             f"diagnosis. Diagnose again to see the run as it is now.<br>" + self.summary.text())

    def changes(self, finding) -> dict:
        return settings_changes(finding, self.config)[0]

    @pyqtSlot(str)
    def select_layer(self, name: str) -> None:
        """Highlight the first finding of layer ``name`` (no signal is emitted back)."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if self.finding(item).layer == name:
                self.tree.setCurrentItem(item)
                return

    # ---- reading ---------------------------------------------------------------------------
    @property
    def diagnosis(self):
        return self._diagnosis

    def finding(self, item):
        return self._diagnosis.findings[item.data(0, Qt.ItemDataRole.UserRole)]

    def rows(self) -> list[tuple[str, str, str]]:
        return [tuple(self.tree.topLevelItem(i).text(c) for c in range(3))
                for i in range(self.tree.topLevelItemCount())]

    # ---- events ----------------------------------------------------------------------------
    def _on_current_changed(self, current, _previous) -> None:
        if current is None or self._diagnosis is None:
            self.details.setText("")
            return
        f = self.finding(current)
        changes, advice = settings_changes(f, self.config)
        self.apply_button.setEnabled(bool(changes))
        self.apply_button.setToolTip("Set " + ", ".join(f"{_field_name(k)} = {v:g}" for k, v in changes.items())
                                     + " and diagnose again" if changes else "This advice maps onto no setting")
        color = SEVERITY_COLORS.get(f.severity, "#a0a0a0")
        evidence = ", ".join(f"{html.escape(k)} = {html.escape(_fmt(v))}" for k, v in f.evidence.items())
        self.details.setText(
            f"<p><b style='color:{color}'>{html.escape(f.severity_name)}</b> · <b>{html.escape(f.layer or 'network')}</b>"
            f" · {html.escape(CAUSE_TITLES.get(f.cause, f.cause))}</p>"
            f"<p>{html.escape(f.message)}</p>"
            f"<p><b>Try:</b> {html.escape(advice)}</p>"
            + (f"<p style='color:#909090'>evidence: {evidence}</p>" if evidence else ""))

    def _on_apply(self) -> None:
        item = self.tree.currentItem()
        if item is not None and self._diagnosis is not None:
            changes = self.changes(self.finding(item))
            if changes:
                self.apply_requested.emit(changes)

    def _on_item_clicked(self, item, _column) -> None:
        f = self.finding(item)
        if f.layer:
            self.layer_selected.emit(f.layer)
