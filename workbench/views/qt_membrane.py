"""QtMembraneView: membrane traces of watched neurons over the recorded history.

Each watched neuron gets one curve and one spike-mark scatter, created when it is added and
reused every frame. The recorded membrane is the value AFTER the step's reset (so it never shows
the threshold crossing itself); spikes are marked with ticks on the threshold line (below the
negative threshold for negative spikes of signed models). The row of coloured chips above the
plot is the legend; clicking a chip stops watching that neuron.

The session must record the layers of ``watched()`` (it learns them from ``watched_changed``).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from workbench.views.qt_snapshot_view import BRIGHT, QtSnapshotView, color, make_plot

MAX_WATCHED = len(BRIGHT)  # distinct colours; adding one more drops the oldest


class _Watched:
    """The plot items of one watched neuron."""

    def __init__(self, layer: str, index: int, colour_index: int, plot: pg.PlotItem, chip: QToolButton):
        self.layer, self.index, self.colour_index, self.chip = layer, index, colour_index, chip
        col = color(colour_index)
        self.curve = plot.plot(pen=pg.mkPen(col, width=1.5), name=f"{layer}[{index}]")
        self.marks = pg.ScatterPlotItem(symbol="|", size=12, pen=pg.mkPen(col, width=2), brush=None)
        plot.addItem(self.marks)

    def remove_from(self, plot: pg.PlotItem) -> None:
        plot.removeItem(self.curve)
        plot.removeItem(self.marks)
        self.chip.deleteLater()


class QtMembraneView(QtSnapshotView):
    watched_changed = pyqtSignal(list)  # [(layer, index), ...]

    def __init__(self, parent=None):
        super().__init__(parent)
        self._watched: list[_Watched] = []
        self._thresholds: dict[float, pg.InfiniteLine] = {}

        self._chips = QHBoxLayout()
        self._chips.setContentsMargins(4, 2, 4, 2)
        self._chips.setSpacing(4)
        self._hint = QLabel("Click a neuron in the raster or heat map to watch it")
        self._hint.setStyleSheet("color: gray")
        self._chips.addWidget(self._hint)
        self._chips.addStretch(1)
        holder = QWidget()
        holder.setLayout(self._chips)
        scroll = QScrollArea()
        scroll.setWidget(holder)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedHeight(32)

        self.plot = make_plot("Membrane", "timestep", "membrane v, after reset")
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot_widget = pg.PlotWidget(plotItem=self.plot)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(scroll)
        layout.addWidget(self.plot_widget, 1)

    # ---- watching --------------------------------------------------------------------------
    def watched(self) -> list[tuple[str, int]]:
        return [(w.layer, w.index) for w in self._watched]

    def colour_of(self, layer: str, index: int) -> str | None:
        for w in self._watched:
            if (w.layer, w.index) == (layer, index):
                return color(w.colour_index)
        return None

    @pyqtSlot(str, int)
    def add_neuron(self, layer: str, index: int) -> None:
        """Watch ``layer``'s neuron at flat (channels-last) ``index``; no-op when watched."""
        index = int(index)
        if (layer, index) in self.watched() or index < 0:
            return
        if len(self._watched) >= MAX_WATCHED:
            self._drop(self._watched[0])
        used = {w.colour_index for w in self._watched}
        colour_index = min(i for i in range(MAX_WATCHED) if i not in used)
        chip = QToolButton()
        chip.setText(f"● {layer}[{index}]  ✕")
        chip.setToolTip("Click to stop watching this neuron")
        chip.setStyleSheet(f"QToolButton {{ color: {color(colour_index)}; font-weight: bold; }}")
        chip.setAutoRaise(True)
        chip.clicked.connect(lambda _=False, key=(layer, index): self.remove_neuron(*key))
        self._chips.insertWidget(self._chips.count() - 1, chip)
        self._watched.append(_Watched(layer, index, colour_index, self.plot, chip))
        self._hint.hide()
        self.watched_changed.emit(self.watched())
        self._schedule()

    @pyqtSlot(str, int)
    def remove_neuron(self, layer: str, index: int) -> None:
        for w in self._watched:
            if (w.layer, w.index) == (layer, int(index)):
                self._drop(w)
                self._hint.setVisible(not self._watched)
                self.watched_changed.emit(self.watched())
                self._schedule()
                return

    def clear_neurons(self) -> None:
        for w in list(self._watched):
            self._drop(w)
        self._hint.show()
        self.watched_changed.emit([])
        self._schedule()

    def _drop(self, w: _Watched) -> None:
        w.remove_from(self.plot)
        self._watched.remove(w)

    def curve_data(self, layer: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the curve shown for a watched neuron."""
        for w in self._watched:
            if (w.layer, w.index) == (layer, index):
                x, y = w.curve.getOriginalDataset()
                return (np.zeros(0) if x is None else x), (np.zeros(0) if y is None else y)
        raise KeyError((layer, index))

    def spike_marks(self, layer: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        for w in self._watched:
            if (w.layer, w.index) == (layer, index):
                return w.marks.getData()
        raise KeyError((layer, index))

    # ---- painting --------------------------------------------------------------------------
    def _render(self, snapshot) -> None:
        history = snapshot.history
        steps = history.steps
        b = self.sample(snapshot)
        used_thresholds = set()
        missing = []
        for w in self._watched:
            lt = history.layers.get(w.layer)
            size = 0 if lt is None else int(np.prod(lt.shape))
            if lt is None or lt.membrane is None or w.index >= size:
                w.curve.setData([], [])
                w.marks.setData([], [])
                why = "not in this layer" if lt is not None and w.index >= size else "not recorded"
                w.chip.setToolTip(f"{w.layer}[{w.index}]: {why} — click to stop watching")
                missing.append(f"{w.layer}[{w.index}]")
                continue
            w.chip.setToolTip("Click to stop watching this neuron")
            v = lt.membrane.reshape(len(steps), history.batch, size)[:, b, w.index]
            s = lt.spikes.reshape(len(steps), history.batch, size)[:, b, w.index]
            w.curve.setData(steps, v)
            thr = snapshot.layer(w.layer).threshold
            fired = s != 0
            w.marks.setData(steps[fired], np.where(s[fired] > 0, thr, -thr))
            used_thresholds.add(thr)
        self._show_thresholds(used_thresholds)
        title = "Membrane"
        if snapshot.batch > 1:
            title += f" — sample {b}"
        if missing:
            title += f"  (no data: {', '.join(missing)})"
        self.plot.setTitle(title, size="9pt")

    def _show_thresholds(self, values) -> None:
        for thr in values:
            if thr not in self._thresholds:
                line = pg.InfiniteLine(thr, angle=0, movable=False,
                                       pen=pg.mkPen("#d0d0d0", width=1, style=Qt.PenStyle.DashLine),
                                       label=f"threshold {thr:g}",
                                       labelOpts={"position": 0.08, "color": "#d0d0d0", "anchors": [(0, 1), (0, 1)]})
                self.plot.addItem(line)
                self._thresholds[thr] = line
        for thr, line in self._thresholds.items():
            line.setVisible(thr in values)
