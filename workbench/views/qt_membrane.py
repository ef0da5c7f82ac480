"""QtMembraneView: membrane traces of watched neurons over the recorded history.

Each watched neuron gets one curve and one spike-mark scatter, created when it is added and
reused every frame. The recorded membrane is the value AFTER the step's reset (so it never shows
the threshold crossing itself); spikes are marked with ticks in one row per neuron just above the
threshold line (mirrored below zero for negative spikes of signed models). The coloured entries
above the plot are the legend; clicking one stops watching that neuron.

The session must record the layers of ``watched()`` (it learns them from ``watched_changed``).
After a comparison (``set_reference``) each watched neuron's membrane in the compared trace B is
drawn dashed in the same colour next to A's solid curve, and a red dashed line marks the step of
the first divergence.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QLabel, QVBoxLayout

from workbench.views.qt_snapshot_view import clear_data, set_title, BRIGHT, QtSnapshotView, color, make_plot

MAX_WATCHED = len(BRIGHT)  # distinct colours; adding one more drops the oldest
MEMBRANE_LABEL = "membrane v, after reset"
RATE_LABEL = "rate r, Hz (stochastic/Poisson wrappers)"  # their membrane variable: no threshold


class _Watched:
    """The plot items of one watched neuron."""

    def __init__(self, layer: str, index: int, colour_index: int, plot: pg.PlotItem):
        self.layer, self.index, self.colour_index = layer, index, colour_index
        self.note = ""  # why nothing is drawn, if so
        col = color(colour_index)
        self.curve = plot.plot(pen=pg.mkPen(col, width=1), name=f"{layer}[{index}]")
        self.ref = plot.plot(pen=pg.mkPen(col, width=1.5, style=Qt.PenStyle.DashLine))  # compared trace B
        self.marks = pg.ScatterPlotItem(symbol="|", size=9, pen=pg.mkPen(col, width=1), brush=None)
        plot.addItem(self.marks)

    def remove_from(self, plot: pg.PlotItem) -> None:
        plot.removeItem(self.curve)
        plot.removeItem(self.marks)
        plot.removeItem(self.ref)


class QtMembraneView(QtSnapshotView):
    watched_changed = pyqtSignal(list)  # [(layer, index), ...]

    def __init__(self, parent=None):
        super().__init__(parent)
        self._watched: list[_Watched] = []
        self._thresholds: dict[float, pg.InfiniteLine] = {}
        self._reference = None  # DivergenceOverlay of a comparison, or None

        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setContentsMargins(6, 2, 6, 2)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.linkActivated.connect(self._on_legend_link_activated)
        self.legend.setToolTip("Click a neuron to stop watching it")
        self._update_legend()

        self.plot = make_plot("Membrane", "timestep", MEMBRANE_LABEL)
        self.plot.showGrid(False, False)  # alpha-blended grid lines double the paint time
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot_widget = pg.PlotWidget(plotItem=self.plot)
        self.first_line = pg.InfiniteLine(angle=90, movable=False,
                                          pen=pg.mkPen("#ff5050", width=1, style=Qt.PenStyle.DashLine))
        self.first_line.hide()
        self.plot.addItem(self.first_line)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot_widget, 1)

    # ---- watching --------------------------------------------------------------------------
    def watched(self) -> list[tuple[str, int]]:
        return [(w.layer, w.index) for w in self._watched]

    def colour_of(self, layer: str, index: int) -> str | None:
        for w in self._watched:
            if (w.layer, w.index) == (layer, index):
                return color(w.colour_index)
        return None

    @pyqtSlot(object)
    def set_reference(self, overlay) -> None:
        """Draw the compared trace's membranes dashed (a DivergenceOverlay; None clears)."""
        self._reference = overlay
        first = None if overlay is None else overlay.first
        self.first_line.setVisible(first is not None)
        if first is not None:
            self.first_line.setValue(first.step)
        self._update_legend()
        self._schedule()

    def reference_data(self, layer: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the dashed curve of the compared trace for a watched neuron."""
        for w in self._watched:
            if (w.layer, w.index) == (layer, index):
                x, y = w.ref.getOriginalDataset()
                return (np.zeros(0) if x is None else x), (np.zeros(0) if y is None else y)
        raise KeyError((layer, index))

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
        self._watched.append(_Watched(layer, index, colour_index, self.plot))
        self._update_legend()
        self.watched_changed.emit(self.watched())
        self._schedule()

    @pyqtSlot(str, int)
    def remove_neuron(self, layer: str, index: int) -> None:
        for w in self._watched:
            if (w.layer, w.index) == (layer, int(index)):
                self._drop(w)
                self._update_legend()
                self.watched_changed.emit(self.watched())
                self._schedule()
                return

    def clear_neurons(self) -> None:
        for w in list(self._watched):
            self._drop(w)
        self._update_legend()
        self.watched_changed.emit([])
        self._schedule()

    def keep_layers(self, names) -> None:
        """Stop watching neurons of layers not in ``names`` (another model was opened)."""
        names = set(names)
        gone = [w for w in self._watched if w.layer not in names]
        for w in gone:
            self._drop(w)
        if gone:
            self._update_legend()
            self.watched_changed.emit(self.watched())
            self._schedule()

    def _clear(self) -> None:
        super()._clear()
        self._show_thresholds(set())
        set_title(self.plot, "Membrane: nothing runs")

    def _drop(self, w: _Watched) -> None:
        w.remove_from(self.plot)
        self._watched.remove(w)

    def _update_legend(self) -> None:
        """The legend: one coloured link per watched neuron; clicking it stops watching."""
        if not self._watched:
            self.legend.setText("<span style='color: gray'>Click a neuron in the raster or heat map "
                                "to watch its membrane</span>")
            return
        entries = []
        for w in self._watched:
            label = f"{html.escape(w.layer)}[{w.index}]"
            note = f" <i>({w.note})</i>" if w.note else ""
            entries.append(f"<a href='{html.escape(w.layer)}:{w.index}' style='color: {color(w.colour_index)}; "
                           f"text-decoration: none'><b>●&nbsp;{label}</b>{note}&nbsp;✕</a>")
        if self._reference is not None:
            entries.append("<span style='color: gray'>solid: shown run (A), dashed: compared trace (B)</span>")
        self.legend.setText("&nbsp;&nbsp; ".join(entries))

    def _on_legend_link_activated(self, href: str) -> None:
        layer, _, index = href.rpartition(":")
        self.remove_neuron(html.unescape(layer), int(index))

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
        kinds = set()  # what the watched curves show: a membrane with a threshold, or a rate
        notes = [w.note for w in self._watched]
        for k, w in enumerate(self._watched):
            lt = history.layers.get(w.layer)
            size = 0 if lt is None else int(np.prod(lt.shape))
            ref = (None if self._reference is None or not len(steps)
                   else self._reference.reference(w.layer, b, w.index, int(steps[0]), int(steps[-1])))
            if ref is not None:
                w.ref.setData(*ref)
            else:
                clear_data(w.ref)
            single = getattr(snapshot, "neuron_membranes", {}).get((w.layer, w.index))
            if lt is None or (single is None and lt.membrane is None) or w.index >= size:
                clear_data(w.curve)
                clear_data(w.marks)
                w.note = "not in layer" if lt is not None and w.index >= size else "not recorded"
                continue
            w.note = self._values_note(snapshot, w, b)
            if single is not None:  # the window's snapshots: the watched neurons' membranes alone
                v = single[:, b]
            else:
                v = lt.membrane.reshape(len(steps), history.batch, size)[:, b, w.index]
            s = lt.spikes.reshape(len(steps), history.batch, size)[:, b, w.index]
            if np.isfinite(v).any():
                w.curve.setData(steps, v)
            else:
                clear_data(w.curve)
                w.note = "not finite"
            thr = snapshot.layer(w.layer).threshold
            if thr is not None and not np.isfinite(thr):
                thr = None
            fired = s != 0
            finite_v = np.abs(v[np.isfinite(v)])
            base = thr if thr is not None else float(np.max(finite_v, initial=0.0)) or 1.0  # a rate: above it
            w.marks.setData(steps[fired], np.where(s[fired] > 0, 1.0, -1.0) * self.mark_level(k, base))
            if thr is not None:
                used_thresholds.add(thr)
            kinds.add(MEMBRANE_LABEL if thr is not None else RATE_LABEL)
        self._show_thresholds(used_thresholds)
        label = "; ".join(k for k in (MEMBRANE_LABEL, RATE_LABEL) if k in kinds) or MEMBRANE_LABEL
        if self.plot.getAxis("left").labelText != label:
            self.plot.setLabel("left", label)
        if notes != [w.note for w in self._watched]:
            self._update_legend()
        title = "Membrane" if snapshot.batch == 1 else f"Membrane — sample {b}"
        set_title(self.plot, title)

    @staticmethod
    def _values_note(snapshot, w, b: int) -> str:
        """'ANN a, SNN x': the neuron's ANN activation and what the SNN passed on per step so far
        (counts x spike value / t), in the same normalized units (as in the ANN vs SNN plot)."""
        try:
            ls = snapshot.layer(w.layer)
        except KeyError:
            return ""
        parts = []
        if ls.ann is not None and w.index < ls.ann[b].size:
            parts.append(f"ANN {float(ls.ann[b].reshape(-1)[w.index]):.3g}")
        if ls.counts is not None and snapshot.t > 0 and w.index < ls.counts[b].size:
            value = float(ls.counts[b].reshape(-1)[w.index]) * ls.output_scale / snapshot.t
            parts.append(f"SNN {value:.3g}")
        return ", ".join(parts)

    @staticmethod
    def mark_level(k: int, threshold: float) -> float:
        """Height of the k-th watched neuron's row of spike ticks: one row each above the
        threshold line, so that the ticks of several neurons do not pile up."""
        return threshold * (1.15 + 0.1 * k)

    def _show_thresholds(self, values) -> None:
        for thr in values:
            if thr not in self._thresholds:
                line = pg.InfiniteLine(thr, angle=0, movable=False,
                                       pen=pg.mkPen("#d0d0d0", width=1, style=Qt.PenStyle.DashLine),
                                       label=f"threshold {thr:g}",
                                       labelOpts={"position": 0.02, "color": "#d0d0d0", "anchors": [(0, 0), (0, 0)]})
                self.plot.addItem(line)
                self._thresholds[thr] = line
        for thr, line in self._thresholds.items():
            line.setVisible(thr in values)
