"""QtNetworkTable: the network's layers, one row each, with live statistics from snapshots.

Columns: name, kind, shape, neurons, mean rate, max rate, % silent, % saturated, r (the
snapshot's ``LayerStats``, shown as they are). A row whose layer looks wrong gets a coloured
background and a tooltip saying why: amber for a warning, red when it is bad (thresholds below);
nothing is flagged before the first timestep.
The layer under the stepping cursor (``Snapshot.cursor_layer``) is shown in bold with a marker.
Selecting a row emits ``layer_selected(name)``.
"""

from __future__ import annotations

import math

from PyQt6.QtCore import Qt, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QBrush, QColor, QFont
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

COLUMNS = ("layer", "kind", "shape", "neurons", "mean rate", "max rate", "silent %", "saturated %", "r")
# (statistic, amber above/below, red above/below, how to say it)
SATURATED = (0.20, 0.50)
SILENT = (0.50, 0.90)
LOW_R = (0.80, 0.50)
AMBER = QColor("#6b5200")
RED = QColor("#7a1f1f")
CURSOR_MARK = "▶ "


def diagnose(stats, is_output: bool = False) -> tuple[int, list[str]]:
    """(severity 0 ok / 1 amber / 2 red, reasons) for one LayerStats. Silence is not flagged in
    the output layer, where all classes but the winner are expected to stay quiet."""
    level, reasons = 0, []
    for value, (amber, red), text, above in (
        (stats.saturated, SATURATED, "{:.0%} of neurons saturated (more than {:.0%})", True),
        (None if is_output else stats.silent, SILENT, "{:.0%} of neurons silent (more than {:.0%})", True),
        (stats.r, LOW_R, "ANN-vs-SNN correlation r = {:.3f} (below {})", False),
    ):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        bad_red = value > red if above else value < red
        bad_amber = value > amber if above else value < amber
        if bad_amber or bad_red:
            level = max(level, 2 if bad_red else 1)
            reasons.append(text.format(value, red if bad_red else amber))
    return level, reasons


def _fmt(value: float, scale: float = 1.0, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value * scale:.{digits}f}"


class QtNetworkTable(QTableWidget):
    layer_selected = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self._names: list[str] = []
        self._flags: dict[int, tuple[int, str]] = {}  # row -> (level, tooltip) shown
        self._shown: dict[int, tuple[str, ...]] = {}  # row -> statistics texts shown
        self._selecting = False
        self.cursor_layer: str | None = None
        self.itemSelectionChanged.connect(self._on_selection_changed)

    # ---- slots -----------------------------------------------------------------------------
    @pyqtSlot(object)
    def set_snapshot(self, snapshot) -> None:
        if snapshot is None:
            self.setRowCount(0)
            self._names = []
            self._shown = {}
            return
        names = [ls.name for ls in snapshot.layers]
        if names != self._names:
            self._rebuild(snapshot)
        stats = {s.name: s for s in snapshot.stats}
        changed = []  # rows whose statistics changed
        model = self.model()
        model.blockSignals(True)  # one dataChanged for all cells below, not one per cell: each
        try:  # made the header re-measure every row of its ResizeToContents columns
            for row, ls in enumerate(snapshot.layers):
                s = stats.get(ls.name)
                if s is None:
                    continue
                values = (_fmt(s.mean_rate), _fmt(s.max_rate), _fmt(s.silent, 100, 1), _fmt(s.saturated, 100, 1), _fmt(s.r))
                if values == self._shown.get(row):
                    continue
                self._shown[row] = values
                changed.append(row)
                for col, text in enumerate(values, start=4):
                    self.item(row, col).setText(text)
        finally:
            model.blockSignals(False)
        if changed:
            model.dataChanged.emit(model.index(changed[0], 4), model.index(changed[-1], len(COLUMNS) - 1))
        for row, ls in enumerate(snapshot.layers):
            self._flag(row, stats.get(ls.name) if snapshot.t > 0 else None, row == len(snapshot.layers) - 1)
        self._mark_cursor(snapshot.cursor_layer)

    @pyqtSlot(str)
    def set_selected_layer(self, name: str) -> None:
        if name in self._names and self.selected_layer() != name:
            self._selecting = True
            self.selectRow(self._names.index(name))
            self._selecting = False

    def selected_layer(self) -> str | None:
        rows = self.selectionModel().selectedRows()
        return self._names[rows[0].row()] if rows else None

    def row_of(self, name: str) -> int:
        return self._names.index(name)

    def cell_text(self, name: str, column: str) -> str:
        return self.item(self.row_of(name), COLUMNS.index(column)).text()

    # ---- internals -------------------------------------------------------------------------
    def _rebuild(self, snapshot) -> None:
        selected = self.selected_layer()
        self._names = [ls.name for ls in snapshot.layers]
        self._flags = {}
        self._shown = {}
        self.setRowCount(len(self._names))
        for row, ls in enumerate(snapshot.layers):
            neurons = int(math.prod(ls.shape)) if ls.is_neuron else 0
            texts = (ls.name, ls.kind, "×".join(map(str, ls.shape)), str(neurons) if neurons else "–")
            for col in range(len(COLUMNS)):
                item = QTableWidgetItem(texts[col] if col < len(texts) else "–")
                if col >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(row, col, item)
            if ls.is_neuron:
                self.item(row, 0).setToolTip(ls.model + ("\nsigned: emits negative spikes" if ls.signed else ""))
        self.cursor_layer = None
        if selected in self._names:
            self.set_selected_layer(selected)

    def _flag(self, row: int, stats, is_output: bool) -> None:
        level, reasons = (0, []) if stats is None else diagnose(stats, is_output)
        tip = "\n".join(reasons)
        if self._flags.get(row) == (level, tip):
            return
        self._flags[row] = (level, tip)
        brush = QBrush() if level == 0 else QBrush(AMBER if level == 1 else RED)
        for col in range(len(COLUMNS)):
            item = self.item(row, col)
            item.setBackground(brush)
            if col:
                item.setToolTip(tip)
        self.item(row, 0).setData(Qt.ItemDataRole.UserRole, level)

    def _mark_cursor(self, name: str | None) -> None:
        if name == self.cursor_layer:
            return
        for layer, bold in ((self.cursor_layer, False), (name, True)):
            if layer in self._names:
                item = self.item(self._names.index(layer), 0)
                font = QFont(item.font())
                font.setBold(bold)
                item.setFont(font)
                item.setText((CURSOR_MARK if bold else "") + layer)
        self.cursor_layer = name

    def flag_level(self, name: str) -> int:
        return int(self.item(self.row_of(name), 0).data(Qt.ItemDataRole.UserRole) or 0)

    def _on_selection_changed(self) -> None:
        name = self.selected_layer()
        if name is not None and not self._selecting:
            self.layer_selected.emit(name)
