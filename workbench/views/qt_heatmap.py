"""QtHeatmapView: firing rate of every neuron of the selected layer, in the layer's own shape.

Rates are ``counts / t`` (spikes per step) of the shown sample, from the LayerSnapshot. An
(H, W, C) layer is drawn as C tiles of H x W, tile c at row ``c // cols``, column ``c % cols``
with ``cols = ceil(sqrt(C))`` and a one-cell transparent gap; a vector layer (N,) is wrapped
row-major into a near-square grid. Colour range: 0 to the model's maximum rate (or, with
"auto", to the highest rate shown). Hover tells the neuron (h, w, c) and its rate; a click emits
``neuron_clicked(layer, flat index)`` with the channels-last row-major flat index.
After a comparison (``set_divergence``) the cells of neurons that differ from the compared trace
(up to the shown step) are outlined in red.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout

from workbench.views.qt_snapshot_view import QtSnapshotView, clear_data, finite, make_plot, set_title

GAP = 1


def tiling(shape: tuple[int, ...]) -> tuple[int, int, int, int, int]:
    """(H, W, C, tile rows, tile cols) for a layer shape."""
    if len(shape) == 3:
        h, w, c = shape
    elif len(shape) == 2:
        (h, w), c = shape, 1
    else:
        n = int(np.prod(shape))
        w = max(1, math.ceil(math.sqrt(n)))
        h, c = max(1, math.ceil(n / w)), 1
    cols = max(1, math.ceil(math.sqrt(c)))
    return h, w, c, math.ceil(c / cols), cols


class QtHeatmapView(QtSnapshotView):
    neuron_clicked = pyqtSignal(str, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = None  # (name, shape) the grid was built for
        self._grid = np.zeros((0, 0), dtype=np.float32)
        self._rates = np.zeros(0)
        self._name = None

        self._auto = QCheckBox("auto range")
        self._auto.setToolTip("Colour range 0 .. highest rate shown (else 0 .. the model's maximum rate)")
        self._auto.toggled.connect(lambda _: self._schedule())
        self._hover = QLabel(" ")
        self._hover.setStyleSheet("color: gray")
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(self._hover, 1)
        bar.addWidget(self._auto)

        self.plot = make_plot("Firing rate", "", "")
        self.plot.hideAxis("bottom")
        self.plot.hideAxis("left")
        self.plot.showGrid(False, False)
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setDefaultPadding(0.01)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"),
                                        label="spikes / step", interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self._divergence = None
        self._rect = None  # the image's rect and the colour bar's levels as last set
        self._levels = None
        self._outlined = np.zeros(0, dtype=np.int64)
        self.outlines = pg.ScatterPlotItem(symbol="s", size=1.0, pxMode=False, brush=None,
                                           pen=pg.mkPen("#ff3030", width=2))
        self.plot.addItem(self.outlines)
        self.plot_widget = pg.PlotWidget(plotItem=self.plot)
        self.plot_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot_widget.scene().sigMouseClicked.connect(self._on_scene_clicked)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.plot_widget, 1)

    def set_divergence(self, overlay) -> None:
        """Outline the neurons that differ from a compared trace (DivergenceOverlay; None clears)."""
        self._divergence = overlay
        self._schedule()

    def outlined(self) -> np.ndarray:
        """Flat indices of the neurons outlined in the last paint."""
        return self._outlined

    def grid(self) -> np.ndarray:
        """The tiled rate array last shown (NaN in gaps)."""
        return self._grid

    # ---- painting --------------------------------------------------------------------------
    def _forget(self) -> None:
        self._layout = None
        self._name = None
        self._rates = np.zeros(0)
        self._divergence = None
        self._hover.setText(" ")

    def _clear(self) -> None:
        super()._clear()
        self._rect = None
        self._rates = np.zeros(0)
        self._hover.setText(" ")
        set_title(self.plot, "Firing rate: nothing runs")

    def _render(self, snapshot) -> None:
        name = self.layer_name(snapshot)
        self._name = name
        self._outline(None, None)
        if name is None:
            self.image.clear()
            self._rect = None
            set_title(self.plot, "Firing rate: no neuron layer")
            return
        ls = snapshot.layer(name)
        b = self.sample(snapshot)
        h, w, c, rows, cols = tiling(ls.shape)
        if self._layout != (name, ls.shape):
            self._layout = (name, ls.shape)
            self._grid = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP), np.nan, dtype=np.float32)
            self.plot.vb.enableAutoRange()
        counts = ls.counts[b].reshape(-1)
        self._rates = counts / snapshot.t if snapshot.t > 0 else np.zeros(counts.shape)
        self._fill(self._rates, h, w, c, rows, cols)
        shown = np.abs(self._rates[np.isfinite(self._rates)])
        highest = float(shown.max()) if shown.size else 0.0
        top = highest if self._auto.isChecked() else finite(ls.max_rate, highest)
        levels = (0.0, max(top, 1e-6))
        self.image.setImage(self._grid, autoLevels=False, levels=levels)
        rect = QRectF(0, 0, self._grid.shape[1], self._grid.shape[0])
        if rect != self._rect:  # a new rect re-computes the view's bounds and auto-range
            self._rect = rect
            self.image.setRect(rect)
        if levels != self._levels:
            self._levels = levels
            self.colorbar.setLevels(levels)
        if self._divergence is not None:
            self._outline(self._divergence.mask(name, b, snapshot.t), ls.shape)
        shape = " x ".join(map(str, ls.shape))
        sample = f", sample {b}" if snapshot.batch > 1 else ""
        set_title(self.plot, f"Firing rate — {name} ({shape}){sample}, t = {snapshot.t}")

    def _outline(self, mask, shape) -> None:
        self._outlined = np.zeros(0, dtype=np.int64) if mask is None else np.flatnonzero(mask)
        if not self._outlined.size:
            clear_data(self.outlines)
            return
        h, w, c, rows, cols = tiling(shape)
        flat = self._outlined
        r, q, ch = (flat // c) // w, (flat // c) % w, flat % c
        tr, tc = ch // cols, ch % cols
        self.outlines.setData(tc * (w + GAP) + q + 0.5, tr * (h + GAP) + r + 0.5)

    def _fill(self, rates, h, w, c, rows, cols) -> None:
        """Write the rates (row-major over (H, W, C) or (N,)) into the tiled grid."""
        n = h * w * c
        flat = np.full(n, np.nan, dtype=np.float32)
        flat[:rates.size] = np.abs(rates)  # signed models: magnitude
        tiles = np.full((rows * cols, h, w), np.nan, dtype=np.float32)
        tiles[:c] = flat.reshape(h, w, c).transpose(2, 0, 1)
        padded = np.full((rows, h + GAP, cols, w + GAP), np.nan, dtype=np.float32)
        padded[:, :h, :, :w] = tiles.reshape(rows, cols, h, w).transpose(0, 2, 1, 3)
        self._grid[...] = padded.reshape(rows * (h + GAP), cols * (w + GAP))[:self._grid.shape[0], :self._grid.shape[1]]

    # ---- input -----------------------------------------------------------------------------
    def neuron_at(self, x: float, y: float) -> tuple[int, tuple[int, int, int]] | None:
        """(flat index, (h, w, c)) of the cell at view coordinates (x, y), or None in a gap."""
        if self._layout is None or x < 0 or y < 0:
            return None
        h, w, c, rows, cols = tiling(self._layout[1])
        col, row = int(x), int(y)
        tr, r = divmod(row, h + GAP)
        tc, q = divmod(col, w + GAP)
        ch = tr * cols + tc
        if r >= h or q >= w or tr >= rows or tc >= cols or ch >= c:
            return None
        flat = (r * w + q) * c + ch
        if flat >= self._rates.size:
            return None
        return flat, (r, q, ch)

    def _hit(self, scene_pos):
        vb = self.plot.vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = vb.mapSceneToView(scene_pos)
        return self.neuron_at(p.x(), p.y())

    def _on_mouse_moved(self, scene_pos) -> None:
        hit = self._hit(scene_pos)
        if hit is None:
            self._hover.setText(" ")
            return
        flat, (h, w, c) = hit
        where = f"(h={h}, w={w}, c={c})" if len(self._layout[1]) > 1 else ""
        self._hover.setText(f"{self._name}[{flat}] {where}  rate {self._rates[flat]:.3f} spikes/step")

    def _on_scene_clicked(self, event) -> None:
        if event.button() != pg.QtCore.Qt.MouseButton.LeftButton:
            return
        self._on_mouse_moved(event.scenePos())  # the hover line names what was clicked
        hit = self._hit(event.scenePos())
        if hit is not None:
            self.neuron_clicked.emit(self._name, hit[0])
