"""QtAnnSnnView: does each neuron fire as fast as its ANN activation says it should?

Left: one point per neuron and sample of the selected layer, x = the ANN activation of the
normalized network (``LayerSnapshot.ann``), y = the SNN's output value, the mean of what the
layer passed on per step: ``counts * output_scale / t`` (``output_scale``: the value one spike
carries for this model, dt and rate_scale). Both are in the normalized network's activation
units, so a perfect conversion lies on the dashed identity line whatever the neuron model; the
dotted line is the highest value the model can pass on, ``max_rate * output_scale`` (points
there are saturated). Mid-step (stepping by layer) a layer already advanced has counted
``t + 1`` steps. The title gives Pearson r and the saturated percentage from
``snapshot.stats``. At most ``MAX_POINTS`` points are drawn (an even stride through the
neurons beyond that, said in the title).

Right: Pearson r of every layer over time, from ``snapshot.r_history`` ({layer: [(t, r)]}): a
dot where r was measured (one per snapshot: while playing they are a frame apart, so far apart
at high speed), joined only between neighbouring measurements (a gap longer than
``GAP_FACTOR`` times the usual spacing is left open, as after Run to). The selected layer is
drawn bright and named in the title; the others thin and grey, so 100 layers stay readable.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QVBoxLayout

from workbench.views.qt_snapshot_view import (set_title, QtSnapshotView, clear_data, finite, finite_range,
                                              make_plot)

MAX_POINTS = 20_000
GAP_FACTOR = 4.0
SELECTED_PEN = pg.mkPen("#4fa3ff", width=2.5)
OTHER_PEN = pg.mkPen("#808080", width=1)


class QtAnnSnnView(QtSnapshotView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot_widget = pg.GraphicsLayoutWidget()
        self.scatter_plot = make_plot("ANN vs SNN", "ANN activation (normalized units)",
                                      "SNN output: counts × spike value / t")
        self.identity = pg.InfiniteLine((0, 0), angle=45, movable=False,
                                        pen=pg.mkPen("#c0c0c0", width=1, style=Qt.PenStyle.DashLine))
        self.saturation = pg.InfiniteLine(1.0, angle=0, movable=False,
                                          pen=pg.mkPen("#ff7070", width=1, style=Qt.PenStyle.DotLine),
                                          label="max output", labelOpts={"position": 0.05, "color": "#ff9090",
                                                                        "anchors": [(0, 0), (0, 0)]})
        self.scatter = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(80, 170, 255, 140))
        for item in (self.identity, self.saturation, self.scatter):
            self.scatter_plot.addItem(item)

        self.r_plot = make_plot("Pearson r over time", "timestep", "r (ANN vs SNN)")
        self.r_plot.setYRange(0.0, 1.0)
        self._r_curves: dict[str, pg.PlotDataItem] = {}

        self.plot_widget.addItem(self.scatter_plot, 0, 0)
        self.plot_widget.addItem(self.r_plot, 0, 1)
        self.plot_widget.ci.layout.setColumnStretchFactor(0, 3)
        self.plot_widget.ci.layout.setColumnStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

    def scatter_data(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scatter.getData()

    def r_curve(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        return self._r_curves[layer].getData()

    def r_layers(self) -> list[str]:
        """Layers that have an r curve (only layers of the shown network)."""
        return list(self._r_curves)

    def _forget(self) -> None:
        for curve in self._r_curves.values():
            self.r_plot.removeItem(curve)
        self._r_curves = {}

    def _clear(self) -> None:
        super()._clear()
        set_title(self.scatter_plot, "ANN vs SNN: nothing runs")
        set_title(self.r_plot, "Pearson r over time")
        self.saturation.hide()

    def _render(self, snapshot) -> None:
        self._render_scatter(snapshot)
        self._render_r(snapshot)

    def _render_scatter(self, snapshot) -> None:
        name = self.layer_name(snapshot)
        ls = None if name is None else snapshot.layer(name)
        if ls is None or ls.ann is None or snapshot.t == 0:
            self.scatter.setData([], [])
            why = "no neuron layer" if ls is None else ("no ANN activation" if ls.ann is None else "no steps yet")
            set_title(self.scatter_plot, f"{name or 'ANN vs SNN'}: {why}")
            return
        x = ls.ann.reshape(-1)
        steps = snapshot.t + (1 if ls.index < snapshot.cursor else 0)
        y = ls.counts.reshape(-1) * (ls.output_scale / steps)
        ok = np.isfinite(x) & np.isfinite(y)
        bad = int(ok.size - np.count_nonzero(ok))
        if bad:  # NaN or infinite values are not drawn (pyqtgraph cannot bound them); the title counts them
            x, y = x[ok], y[ok]
        stride = max(1, -(-x.size // MAX_POINTS))
        self.scatter.setData(x[::stride], y[::stride])
        top = finite(ls.max_rate * ls.output_scale, np.nan)
        self.saturation.setVisible(not np.isnan(top))
        if not np.isnan(top):
            self.saturation.setValue(top)
        st = snapshot.stats_for(name)
        r = "n/a" if st is None or np.isnan(st.r) else f"{st.r:.3f}"
        sat = "" if st is None else f", {100 * st.saturated:.1f}% saturated"
        shown = f" (1/{stride} shown)" if stride > 1 else ""
        if bad:
            shown += f" ({bad} not finite, not drawn)"
        set_title(self.scatter_plot, f"{name}: r = {r}{sat}{shown}")
        lo, hi = finite_range(x, y, [0.0] if np.isnan(top) else [0.0, top])
        if hi <= lo:
            hi = lo + 1.0
        self.scatter_plot.setRange(xRange=(lo, hi), yRange=(lo, hi), padding=0.05)

    def _render_r(self, snapshot) -> None:
        selected = self.layer_name(snapshot)
        present = {ls.name for ls in snapshot.layers}
        for name in [n for n in self._r_curves if n not in present]:  # another model's layers
            self.r_plot.removeItem(self._r_curves.pop(name))
        order = [ls.name for ls in snapshot.layers if ls.name in snapshot.r_history]
        lowest = 0.0
        for name in order:
            points = np.asarray(snapshot.r_history[name], dtype=float).reshape(-1, 2)
            curve = self._r_curves.get(name)
            if curve is None:
                curve = self.r_plot.plot()
                self._r_curves[name] = curve
            mine = name == selected
            curve.setPen(SELECTED_PEN if mine else OTHER_PEN)
            curve.setSymbol("o" if mine else None)
            curve.setSymbolSize(5)
            curve.setSymbolBrush("#4fa3ff")
            curve.setSymbolPen(None)
            curve.setZValue(10 if mine else 0)
            t, r = points[:, 0], points[:, 1]
            if np.isfinite(r).any():
                curve.setData(t, r, connect=_connected(t, r))
            else:  # r undefined so far (a silent layer): nothing to draw
                clear_data(curve)
            finite_r = r[np.isfinite(r)]
            if finite_r.size:
                lowest = min(lowest, float(finite_r.min()))
        for name, curve in self._r_curves.items():
            if name not in snapshot.r_history:
                clear_data(curve)
        set_title(self.r_plot, f"r over time: {selected or '–'}" + (" (grey: others)" if len(order) > 1 else ""))
        self.r_plot.setYRange(lowest, 1.0, padding=0.03)


def _connected(t: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Which points join the next one: neighbours in time (not across a gap much longer than the
    usual spacing) with finite r on both sides."""
    if t.size < 2:
        return np.zeros(t.size, dtype=bool)
    gaps = np.diff(t)
    usual = float(np.median(gaps))
    ok = np.isfinite(r)
    join = (gaps <= GAP_FACTOR * max(usual, 1.0)) & ok[:-1] & ok[1:]
    return np.append(join, False)
