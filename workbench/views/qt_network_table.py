"""QtNetworkTable: the network's layers, one row each, with live statistics from snapshots.

Columns: name, then the statistics of the shown run (mean rate, max rate, % silent,
% saturated, r: the snapshot's ``LayerStats``, shown as they are), then neurons, shape and kind.
The name column stays in place when the table scrolls sideways (a frozen copy of it lies over
the left edge), the numeric columns are as wide as their numbers, and a click on a header sorts
by that column (again: the other way; the "layer" header goes back to the network's order).
As soon as a model is open (``set_network``) the rows show its architecture, before any data.

A row whose layer looks wrong gets a coloured background and a tooltip saying why: amber for a
warning, red when it is bad (thresholds below). A layer is judged only once it could have fired:
``JUDGE_AFTER`` steps after the step at which input can first reach it (its depth in neuron
layers), and only while every neuron layer feeding it has spiked (a layer behind a silent one is
not silent by its own fault; the silent one is flagged). ``set_flagged_only`` hides the rest.
The layer under the stepping cursor (``Snapshot.cursor_layer``) is shown in bold with a marker.
Selecting a row emits ``layer_selected(name)``.
"""

from __future__ import annotations

import math

from PyQt6.QtCore import Qt, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QBrush, QColor, QFont
from PyQt6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QTableView,
                             QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

COLUMNS = ("layer", "r", "mean rate", "max rate", "silent %", "saturated %", "neurons", "shape", "kind")
HEADERS = ("layer", "r", "mean", "max", "silent %", "sat. %", "neurons", "shape", "kind")
# r next to the name: the one number that says whether a layer converted well stays in view at
# 1280x800 even beside InceptionV3's long layer names
STAT_COLUMNS = range(1, 6)
KIND_COLUMN = COLUMNS.index("kind")
HEADER_TIPS = ("layer name (click: the network's order)", "mean rate, spikes per step", "highest rate, spikes per step",
               "neurons without a spike", "neurons at the model's maximum rate",
               "Pearson r between the ANN activation and the SNN's spike counts", "neurons", "output shape",
               "layer kind")
# (statistic, amber above/below, red above/below, how to say it)
SATURATED = (0.20, 0.50)
SILENT = (0.50, 0.90)
LOW_R = (0.80, 0.50)
JUDGE_AFTER = 10  # steps after input can reach a layer before it is judged
AMBER = QColor("#6b5200")
RED = QColor("#7a1f1f")
CURSOR_MARK = "▶ "
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
NAME_ROLE = Qt.ItemDataRole.UserRole + 2
NAME_WIDTH = (90, 220)  # the name column's width: fits the names within these bounds


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


def neuron_depths(network) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
    """({layer: neuron layers on the longest path from the input, itself included},
    {layer: the nearest neuron layers feeding it})."""
    depth: dict[str, int] = {}
    feeders: dict[str, tuple[str, ...]] = {}
    by_name = {layer.name: layer for layer in network.layers}
    for layer in network.layers:
        ins = [n for n in getattr(layer, "inbound", ()) if n in by_name]
        d = max((depth.get(n, 0) for n in ins), default=0)
        near: list[str] = []
        for n in ins:
            near.extend([n] if by_name[n].is_neuron_layer else feeders.get(n, ()))
        feeders[layer.name] = tuple(dict.fromkeys(near))
        depth[layer.name] = d + int(layer.is_neuron_layer)
    return depth, feeders


def _fmt(value: float, scale: float = 1.0, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value * scale:.{digits}f}"



def _kind_text(kind: str, model: str, is_neuron: bool) -> str:
    """"conv2d · if": the layer's kind and the neuron model it runs (the conversion plan's choice)."""
    runs = model.split("(")[0] if model and is_neuron else ""
    return f"{kind} · {runs}" if runs else kind

class _Item(QTableWidgetItem):
    """A cell that sorts by its SORT_ROLE value (numbers as numbers, '–' last)."""

    def __lt__(self, other):
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if a is None or b is None:
            return a is not None and b is None
        return a < b


class _FrozenNames(QTableView):
    """The name column again, over the table's left edge, so it stays when the table scrolls
    sideways (Qt's frozen-column pattern: the same model and selection)."""

    def __init__(self, table: QTableWidget):
        super().__init__(table)
        self.table = table
        self.setModel(table.model())
        self.setSelectionModel(table.selectionModel())
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.horizontalHeader().setSectionsClickable(True)
        self.horizontalHeader().sectionClicked.connect(table.horizontalHeader().sectionClicked)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollMode(table.verticalScrollMode())
        self.setStyleSheet("QTableView { border: none; border-right: 1px solid #606060; }")
        self.verticalScrollBar().valueChanged.connect(table.verticalScrollBar().setValue)
        table.verticalScrollBar().valueChanged.connect(self.verticalScrollBar().setValue)
        table.horizontalHeader().sectionResized.connect(self._on_resized)
        table.model().columnsInserted.connect(self.hide_other_columns)
        self.hide_other_columns()
        self.show()

    def hide_other_columns(self, *_args) -> None:
        for col in range(1, self.model().columnCount()):
            self.setColumnHidden(col, True)

    def _on_resized(self, col: int, _old: int, new: int) -> None:
        if col == 0:
            self.setColumnWidth(0, new)
            self.place()

    def place(self) -> None:
        t = self.table
        self.setColumnWidth(0, t.columnWidth(0))
        for row in range(t.rowCount()):
            self.setRowHidden(row, t.isRowHidden(row))
            self.setRowHeight(row, t.rowHeight(row))
        self.setGeometry(t.frameWidth(), t.frameWidth(), t.columnWidth(0),
                         t.viewport().height() + t.horizontalHeader().height())


class QtNetworkTable(QTableWidget):
    layer_selected = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(HEADERS)
        for col, tip in enumerate(HEADER_TIPS):
            self.horizontalHeaderItem(col).setToolTip(tip)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.setStretchLastSection(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        header.sectionClicked.connect(self._on_header_clicked)
        self._sort = (0, Qt.SortOrder.AscendingOrder)
        self._names: list[str] = []
        self._items: dict[str, list[QTableWidgetItem]] = {}
        self._models: dict[str, tuple[str, bool]] = {}  # the model each layer runs, as shown
        self._flags: dict[str, tuple[int, str]] = {}  # name -> (level, tooltip) shown
        self._shown: dict[str, tuple[str, ...]] = {}  # name -> statistics texts shown
        self._depth: dict[str, int] = {}
        self._feeders: dict[str, tuple[str, ...]] = {}
        self._flagged_only = False
        self._filter = ""
        self._selecting = False
        self.cursor_layer: str | None = None
        self.itemSelectionChanged.connect(self._on_selection_changed)
        self.frozen = _FrozenNames(self)

    # ---- slots -----------------------------------------------------------------------------
    def set_network(self, network) -> None:
        """Rows for ``network``'s layers (its architecture; statistics come with snapshots)."""
        if network is None:
            self._set_rows([])
            return
        self._depth, self._feeders = neuron_depths(network)
        self._set_rows([(layer.name, layer.kind, tuple(layer.output_shape), layer.is_neuron_layer, "", False)
                        for layer in network.layers])

    @pyqtSlot(object)
    def set_snapshot(self, snapshot) -> None:
        if snapshot is None:  # nothing runs: keep the architecture, drop the statistics
            self._show_stats({}, 0, None)
            return
        names = [ls.name for ls in snapshot.layers]
        if names != self._names:
            self._set_rows([(ls.name, ls.kind, tuple(ls.shape), ls.is_neuron, ls.model, ls.signed)
                            for ls in snapshot.layers])
        for ls in snapshot.layers:  # the conversion plan may give a layer another model after Apply
            if self._models.get(ls.name) != (ls.model, ls.signed, ls.conversion):
                self._set_model(ls.name, ls.kind, ls.is_neuron, ls.model, ls.signed, ls.conversion)
        self._show_stats({s.name: s for s in snapshot.stats}, snapshot.t, snapshot.cursor_layer)

    @pyqtSlot(str)
    def set_selected_layer(self, name: str) -> None:
        if name in self._items and self.selected_layer() != name:
            self._selecting = True
            self.selectRow(self.row_of(name))
            self._selecting = False

    def set_flagged_only(self, on: bool) -> None:
        self._flagged_only = bool(on)
        self._apply_hidden()

    def set_filter(self, text: str) -> None:
        """Show only layers whose name contains ``text`` (case-insensitive); select the first."""
        self._filter = text.strip().lower()
        self._apply_hidden()
        shown = [n for n in self.names_in_order() if not self.isRowHidden(self.row_of(n))]
        if self._filter and shown:
            self.set_selected_layer(shown[0])
            self.scrollToItem(self._items[shown[0]][0])
            if not self._selecting:
                self.layer_selected.emit(shown[0])

    def selected_layer(self) -> str | None:
        rows = self.selectionModel().selectedRows()
        return self.item(rows[0].row(), 0).data(NAME_ROLE) if rows else None

    def row_of(self, name: str) -> int:
        return self._items[name][0].row()

    def cell_text(self, name: str, column: str) -> str:
        return self._items[name][COLUMNS.index(column)].text()

    def names_in_order(self) -> list[str]:
        """Layer names top to bottom as shown (sorted or not, hidden rows included)."""
        return [self.item(row, 0).data(NAME_ROLE) for row in range(self.rowCount())]

    def visible_names(self) -> list[str]:
        return [n for n in self.names_in_order() if not self.isRowHidden(self.row_of(n))]

    def flag_level(self, name: str) -> int:
        return int(self._items[name][0].data(Qt.ItemDataRole.UserRole) or 0)

    def flag_reason(self, name: str) -> str:
        return self._flags.get(name, (0, ""))[1]

    def column_visible(self, column: str) -> bool:
        """The whole of ``column`` is inside the table's viewport (without scrolling)."""
        col = COLUMNS.index(column)
        x = self.columnViewportPosition(col)
        return x >= 0 and x + self.columnWidth(col) <= self.viewport().width()

    # ---- internals -------------------------------------------------------------------------
    def _set_rows(self, rows) -> None:
        selected = self.selected_layer()
        self.setSortingEnabled(False)
        self._names = [r[0] for r in rows]
        self._items = {}
        self._models = {}
        self._flags = {}
        self._shown = {}
        self.setRowCount(len(rows))
        for row, (name, kind, shape, is_neuron, model, signed) in enumerate(rows):
            neurons = int(math.prod(shape)) if is_neuron else 0
            texts = {0: name, 6: str(neurons) if neurons else "–", 7: "×".join(map(str, shape)),
                     8: _kind_text(kind, model, is_neuron)}
            items = []
            for col in range(len(COLUMNS)):
                item = _Item(texts.get(col, "–"))
                item.setData(SORT_ROLE, row if col == 0 else (neurons if col == 6 and neurons else
                                                             (texts[col] if col in (7, 8) else None)))
                if col in STAT_COLUMNS or col == 6:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(row, col, item)
                items.append(item)
            items[0].setData(NAME_ROLE, name)
            self._items[name] = items
            self._set_model(name, kind, is_neuron, model, signed)
        self.cursor_layer = None
        self._fit_name_column()
        self._sort_now()
        self._apply_hidden()
        if selected in self._items:
            self.set_selected_layer(selected)

    def _set_model(self, name: str, kind: str, is_neuron: bool, model: str, signed: bool, conversion: str = "") -> None:
        """The neuron model a layer runs: in its kind cell ("conv2d · if") and the name's and
        kind's tooltips, with what the conversion plan added ("spiking, current x20.5042,
        synapse 5 ms, rate-inverted")."""
        self._models[name] = (model, signed, conversion)
        items = self._items[name]
        items[KIND_COLUMN].setText(_kind_text(kind, model, is_neuron))
        tip = (name + (f"\n{model}" if model else "") + (f"\nconversion: {conversion}" if conversion else "")
               + ("\nsigned: emits negative spikes" if signed else ""))
        items[0].setToolTip(tip)
        items[KIND_COLUMN].setToolTip(tip)

    def _fit_name_column(self) -> None:
        metrics = self.fontMetrics()
        widest = max((metrics.horizontalAdvance(CURSOR_MARK + n) for n in self._names), default=0) + 16
        self.setColumnWidth(0, max(NAME_WIDTH[0], min(NAME_WIDTH[1], widest)))
        self.frozen.place()

    def _show_stats(self, stats: dict, t: int, cursor_layer) -> None:
        changed = False
        model = self.model()
        model.blockSignals(True)  # one dataChanged for all cells below, not one per cell: each
        try:  # made the header re-measure every row of its ResizeToContents columns
            for name, items in self._items.items():
                s = stats.get(name)
                if s is None:
                    values, keys = ("–",) * 5, (None,) * 5
                else:
                    values = (_fmt(s.r), _fmt(s.mean_rate), _fmt(s.max_rate), _fmt(s.silent, 100, 1),
                              _fmt(s.saturated, 100, 1))
                    keys = tuple(None if v is None or math.isnan(v) else float(v)
                                 for v in (s.r, s.mean_rate, s.max_rate, s.silent, s.saturated))
                if values == self._shown.get(name, ("–",) * 5):
                    continue
                self._shown[name] = values
                changed = True
                for col, text, key in zip(STAT_COLUMNS, values, keys):
                    items[col].setText(text)
                    items[col].setData(SORT_ROLE, key)
        finally:
            model.blockSignals(False)
        if changed and self.rowCount():
            model.dataChanged.emit(model.index(0, 1), model.index(self.rowCount() - 1, 5))
        last = self._names[-1] if self._names else None
        spiked = {n for n, s in stats.items() if s.mean_rate and not math.isnan(s.mean_rate) and s.mean_rate != 0}
        for name in self._names:
            self._flag(name, stats.get(name), name == last, t, spiked)
        self._mark_cursor(cursor_layer)
        if changed and self._sort[0] != 0:
            self._sort_now()
        if self._flagged_only:
            self._apply_hidden()

    def judged_from(self, name: str) -> int:
        """The step from which a layer is judged (input can reach it, plus JUDGE_AFTER)."""
        return self._depth.get(name, 1) + JUDGE_AFTER

    def _flag(self, name: str, stats, is_output: bool, t: int, spiked: set) -> None:
        level, reasons = 0, []
        if stats is not None and t > 0:
            waiting = [f for f in self._feeders.get(name, ()) if f not in spiked]
            if t < self.judged_from(name):
                reasons = [f"not judged before step {self.judged_from(name)} (input reaches this layer "
                           f"after {self._depth.get(name, 1)} step(s), then give it {JUDGE_AFTER})"]
            elif waiting:
                reasons = [f"not judged: {', '.join(waiting[:3])} feeding it {'has' if len(waiting) == 1 else 'have'}"
                           " not spiked yet"]
            else:
                level, reasons = diagnose(stats, is_output)
        tip = "\n".join(reasons)
        if self._flags.get(name) == (level, tip):
            return
        self._flags[name] = (level, tip)
        brush = QBrush() if level == 0 else QBrush(AMBER if level == 1 else RED)
        items = self._items[name]
        for col, item in enumerate(items):
            item.setBackground(brush)
            if col and col != KIND_COLUMN:  # the kind cell's tooltip says what the layer runs (_set_model)
                item.setToolTip(tip)
        items[0].setData(Qt.ItemDataRole.UserRole, level)

    def _mark_cursor(self, name: str | None) -> None:
        if name == self.cursor_layer:
            return
        for layer, bold in ((self.cursor_layer, False), (name, True)):
            if layer in self._items:
                item = self._items[layer][0]
                font = QFont(item.font())
                font.setBold(bold)
                item.setFont(font)
                item.setText((CURSOR_MARK if bold else "") + layer)
        self.cursor_layer = name

    def _on_header_clicked(self, col: int) -> None:
        was_col, was_order = self._sort
        if col == 0:
            order = Qt.SortOrder.AscendingOrder
        elif col == was_col:
            order = Qt.SortOrder.DescendingOrder if was_order == Qt.SortOrder.AscendingOrder else Qt.SortOrder.AscendingOrder
        else:  # rates, silent, saturated: the largest first; r: the lowest first
            order = Qt.SortOrder.AscendingOrder if col in (5, 7, 8) else Qt.SortOrder.DescendingOrder
        self._sort = (col, order)
        self.horizontalHeader().setSortIndicator(col, order)
        self._sort_now()

    def _sort_now(self) -> None:
        col, order = self._sort
        selected = self.selected_layer()
        self._selecting = True
        self.sortItems(col, order)
        if selected:
            self.selectRow(self.row_of(selected))
        self._selecting = False
        self.horizontalHeader().setSortIndicator(col, order)
        self._apply_hidden()

    def _apply_hidden(self) -> None:
        for name, items in self._items.items():
            hide = (self._flagged_only and not self._flags.get(name, (0, ""))[0]) or (
                bool(self._filter) and self._filter not in name.lower())
            row = items[0].row()
            if self.isRowHidden(row) != hide:
                self.setRowHidden(row, hide)
        self.frozen.place()

    def resizeEvent(self, event):  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self.frozen.place()

    def _on_selection_changed(self) -> None:
        name = self.selected_layer()
        if name is not None and not self._selecting:
            self.layer_selected.emit(name)


class QtTablePanel(QWidget):
    """The layer table with its bar (flagged only, find by name) and a notice line that says
    what is missing (no data open, nothing runs)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QtNetworkTable()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #4a3b00; color: #ffe9a0; padding: 4px;")
        self.notice.hide()
        self.flagged_only = QCheckBox("flagged only")
        self.flagged_only.setToolTip("Show only the layers flagged amber or red")
        self.flagged_only.toggled.connect(self.table.set_flagged_only)
        self.find = QLineEdit()
        self.find.setPlaceholderText("find layer…")
        self.find.setClearButtonEnabled(True)
        self.find.setMinimumWidth(110)
        self.find.setMaximumWidth(200)
        self.find.textChanged.connect(self.table.set_filter)
        self.count = QLabel()
        self.count.setStyleSheet("color: gray")
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.addWidget(self.flagged_only)
        bar.addWidget(self.find)
        bar.addStretch(1)
        bar.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.notice)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def set_counts(self, layers: int, neuron_layers: int, neurons: int) -> None:
        self.count.setText(f"{neuron_layers}/{layers} neuron layers" if layers else "")
        self.count.setToolTip(f"{layers} layers, {neuron_layers} of them neuron layers, {neurons:,} neurons" if layers else "")
