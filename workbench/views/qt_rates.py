"""QtRatesView: how the selected layer's firing rates are spread, and mean rate per layer.

Left: histogram of the selected layer's per-neuron rates ``|counts| / t`` over every sample of
the batch, 20 bins from 0 to the model's maximum rate (silent neurons fall in the first bin;
the title gives the silent and saturated percentages from ``snapshot.stats``). Right: one
horizontal bar per neuron layer with its mean rate (``LayerStats.mean_rate``), the selected
layer highlighted. With many layers (ImageNet networks have 100 and more) only every k-th
layer is named, so that the names do not overlap, and always the selected one.
Infinite or NaN rates (a model without a maximum rate, an empty layer) are drawn as 0 and said in
the title, never passed to a range.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QVBoxLayout

from workbench.views.qt_snapshot_view import (QtSnapshotView, finite, finite_range, make_plot, set_ticks, set_title,
                                              thinned_ticks)

BINS = 20
BAR = "#4f8fd0"
BAR_SELECTED = "#ffb040"


class QtRatesView(QtSnapshotView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot_widget = pg.GraphicsLayoutWidget()
        self.hist_plot = make_plot("Rates", "rate", "neurons", x_units=None)
        self.hist_plot.getAxis("bottom").setLabel("rate (spikes / step)")
        self.hist_plot.getAxis("bottom").setTickDensity(0.7)
        self.hist = pg.PlotDataItem(stepMode="center", fillLevel=0, fillOutline=True,
                                    brush=pg.mkBrush(BAR + "c0"), pen=pg.mkPen(BAR, width=1))
        self.hist_plot.addItem(self.hist)
        self.hist_plot.setMouseEnabled(x=False, y=False)

        self.bar_plot = make_plot("Mean rate per layer", "spikes / step", "")
        self.bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.7, brushes=[], pen=None)
        self.bar_plot.addItem(self.bars)
        self.bar_plot.invertY(True)
        self.bar_plot.setMouseEnabled(x=False, y=False)
        self.bar_plot.showGrid(x=True, y=False, alpha=0.2)
        self.bar_plot.getAxis("bottom").setTickDensity(0.4)

        self.plot_widget.addItem(self.hist_plot, 0, 0)
        self.plot_widget.addItem(self.bar_plot, 0, 1)
        self.plot_widget.ci.layout.setColumnStretchFactor(0, 1)
        self.plot_widget.ci.layout.setColumnStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self._bar_names: list[str] = []
        self._bar_values = np.zeros(0)

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """(bin edges, counts) last shown."""
        x, y = self.hist.getOriginalDataset()
        return (np.zeros(0), np.zeros(0)) if x is None else (x, y)

    def bar_values(self) -> tuple[list[str], np.ndarray]:
        """(layer names, mean rates) of the bars, top to bottom."""
        return list(self._bar_names), self._bar_values.copy()

    def _clear(self) -> None:
        super()._clear()
        self._bar_names, self._bar_values = [], np.zeros(0)
        self.bars.setOpts(x0=[], y=[], width=[], height=0.7, brushes=[])
        set_ticks(self.bar_plot.getAxis("left"), [[], []])
        set_title(self.hist_plot, "Rates: nothing runs")

    def _render(self, snapshot) -> None:
        name = self.layer_name(snapshot)
        if name is not None:
            ls = snapshot.layer(name)
            rates = np.abs(ls.counts).reshape(-1) / snapshot.t if snapshot.t > 0 else np.zeros(ls.counts.size)
            bad = int(np.sum(~np.isfinite(rates)))
            rates = np.where(np.isfinite(rates), rates, 0.0)
            top = max(finite(ls.max_rate, 0.0), finite_range(rates, default=(0.0, 0.0))[1]) or 1.0
            counts, edges = np.histogram(rates, bins=BINS, range=(0.0, top))
            self.hist.setData(edges, counts)
            st = snapshot.stats_for(name)
            extra = "" if st is None else f": {100 * finite(st.silent, 0):.0f}% silent, {100 * finite(st.saturated, 0):.0f}% sat."
            if bad:
                extra += f", {bad} not finite (drawn as 0)"
            set_title(self.hist_plot, f"{name}{extra}")
            self.hist_plot.setXRange(0.0, top, padding=0.02)
            self.hist_plot.setYRange(0, max(1, int(counts.max())), padding=0.05)
        else:
            self.hist.setData([], [])
        stats = snapshot.stats
        self._bar_names = [s.name for s in stats]
        self._bar_values = np.array([s.mean_rate for s in stats], dtype=float)
        widths = np.where(np.isfinite(self._bar_values), self._bar_values, 0.0)
        n = len(stats)
        self.bars.setOpts(x0=np.zeros(n), y=np.arange(n), width=widths, height=0.7,
                          brushes=[pg.mkBrush(BAR_SELECTED if s.name == name else BAR) for s in stats])
        pixels = self.bar_plot.vb.height() or 300.0
        set_ticks(self.bar_plot.getAxis("left"), [thinned_ticks(self._bar_names, pixels, keep=(name,)), []])
        set_title(self.bar_plot, "Mean rate per layer" + (f" (1 in {-(-n * 13 // int(pixels))} named)"
                                                          if n * 13 > pixels else ""))
        self.bar_plot.setXRange(0.0, max(0.01, float(widths.max()) if n else 0.0) * 1.1, padding=0)
        self.bar_plot.setYRange(-0.5, max(n, 1) - 0.5, padding=0.02)
