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

Right: Pearson r of every layer over time, from ``snapshot.r_history`` ({layer: [(t, r)]}).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QVBoxLayout

from workbench.views.qt_snapshot_view import set_title, QtSnapshotView, color, make_plot

MAX_POINTS = 20_000


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
        self.r_legend = self.r_plot.addLegend(offset=(-5, -5), labelTextSize="8pt", verSpacing=-6)
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

    def _render(self, snapshot) -> None:
        self._render_scatter(snapshot)
        self._render_r(snapshot)

    def _render_scatter(self, snapshot) -> None:
        name = self.layer_name(snapshot)
        ls = None if name is None else snapshot.layer(name)
        if ls is None or ls.ann is None or ls.counts is None or snapshot.t == 0:
            self.scatter.setData([], [])
            why = "no neuron layer" if ls is None else (
                "waiting for its first snapshot" if ls.counts is None and ls.output is None
                else "no ANN activation" if ls.ann is None else "no steps yet")
            set_title(self.scatter_plot, f"{name or 'ANN vs SNN'}: {why}")
            return
        x = ls.ann.reshape(-1)
        steps = snapshot.t + (1 if ls.index < snapshot.cursor else 0)
        y = ls.counts.reshape(-1) * (ls.output_scale / steps)
        stride = max(1, -(-x.size // MAX_POINTS))
        self.scatter.setData(x[::stride], y[::stride])
        top = ls.max_rate * ls.output_scale
        self.saturation.setValue(top)
        st = snapshot.stats_for(name)
        r = "n/a" if st is None or np.isnan(st.r) else f"{st.r:.3f}"
        sat = "" if st is None else f", {100 * st.saturated:.1f}% saturated"
        shown = f" (1/{stride} shown)" if stride > 1 else ""
        set_title(self.scatter_plot, f"{name}: r = {r}{sat}{shown}")
        hi = max(float(np.max(x)), float(np.max(y)), top)
        lo = min(0.0, float(np.min(x)), float(np.min(y)))
        self.scatter_plot.setRange(xRange=(lo, hi), yRange=(lo, hi), padding=0.05)

    def _render_r(self, snapshot) -> None:
        selected = self.layer_name(snapshot)
        order = [ls.name for ls in snapshot.layers if ls.name in snapshot.r_history]
        lowest = 0.0
        for i, name in enumerate(order):
            points = np.asarray(snapshot.r_history[name], dtype=float).reshape(-1, 2)
            curve = self._r_curves.get(name)
            if curve is None:
                curve = self.r_plot.plot(name=name)
                self._r_curves[name] = curve
            curve.setPen(pg.mkPen(color(i), width=2.5 if name == selected else 1.2))
            curve.setData(points[:, 0], points[:, 1])
            finite = points[:, 1][np.isfinite(points[:, 1])]
            if finite.size:
                lowest = min(lowest, float(finite.min()))
        for name, curve in self._r_curves.items():
            curve.setVisible(name in snapshot.r_history)
        self.r_plot.setYRange(lowest, 1.0, padding=0.03)
