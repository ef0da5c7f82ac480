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

from PyQt6.QtCore import Qt, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QSplitter, QTreeWidget, QTreeWidgetItem,
                             QVBoxLayout, QWidget)

SEVERITY_COLORS = {3: "#e05050", 2: "#e0a030", 1: "#6aa0e0", 0: "#a0a0a0"}
CAUSE_TITLES = {
    "saturated": "saturated", "silent": "silent", "resolution": "rate resolution",
    "low_correlation": "correlation drop", "maxpool_error": "max-pool error", "quantization": "quantization",
    "negative_spikes": "negative spikes", "not_converged": "not converged", "unnormalized": "not normalized",
}
COLUMNS = ("severity", "layer", "cause", "finding")


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


class QtDiagnosisPanel(QWidget):
    layer_selected = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._diagnosis = None
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
        self.tree.currentItemChanged.connect(self._on_current_changed)
        self.tree.itemClicked.connect(self._on_item_clicked)
        self.tree.itemActivated.connect(self._on_item_clicked)

    # ---- slots -----------------------------------------------------------------------------
    @pyqtSlot(object)
    def set_diagnosis(self, diagnosis) -> None:
        self._diagnosis = diagnosis
        self.tree.clear()
        self.details.setText("")
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
            item.setToolTip(3, f"{f.message}\n\n→ {f.suggestion}")
            self.tree.addTopLevelItem(item)
        if n:
            self.tree.setCurrentItem(self.tree.topLevelItem(0))

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
        color = SEVERITY_COLORS.get(f.severity, "#a0a0a0")
        evidence = ", ".join(f"{html.escape(k)} = {html.escape(_fmt(v))}" for k, v in f.evidence.items())
        self.details.setText(
            f"<p><b style='color:{color}'>{html.escape(f.severity_name)}</b> · <b>{html.escape(f.layer or 'network')}</b>"
            f" · {html.escape(CAUSE_TITLES.get(f.cause, f.cause))}</p>"
            f"<p>{html.escape(f.message)}</p>"
            f"<p><b>Try:</b> {html.escape(f.suggestion)}</p>"
            + (f"<p style='color:#909090'>evidence: {evidence}</p>" if evidence else ""))

    def _on_item_clicked(self, item, _column) -> None:
        f = self.finding(item)
        if f.layer:
            self.layer_selected.emit(f.layer)
