"""QtHeatmapView: firing rate of every neuron of the selected layer, in the layer's own shape.

Rates are ``counts / t`` (spikes per step) of the shown sample, from the LayerSnapshot. An
(H, W, C) layer is drawn as C tiles of H x W, tile c at row ``c // cols``, column ``c % cols``
with ``cols = ceil(sqrt(C))`` and a one-cell transparent gap; a vector layer (N,) is wrapped
row-major into a near-square grid. Colour range: 0 to the model's maximum rate (or, with
"auto", to the highest rate shown). Hover tells the neuron (h, w, c) and its rate; a click emits
``neuron_clicked(layer, flat index)`` with the channels-last row-major flat index.
A layer with many channels or neurons (more than ``ALL_CHANNELS_MAX`` neurons, e.g. 64 x 112 x 112)
opens on one channel at a time, chosen in the "channel" box (its first entry, "all", tiles them).
After a comparison (``set_divergence``) the cells of neurons that differ from the compared trace
(up to the shown step) are outlined in red.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout

from workbench.views.qt_snapshot_view import QtSnapshotView, clear_data, finite, make_plot, set_title

GAP = 1
ALL_CHANNELS_MAX = 200_000  # a bigger layer opens on one channel (the channel box), not all tiled


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



def _finite_abs_max(a: np.ndarray) -> float:
    """The largest |value| of ``a`` among its finite values (0 when none): two passes without
    temporaries when every value is finite (an ImageNet layer's 800,000 counts, every frame)."""
    if not a.size:
        return 0.0
    top = max(float(a.max()), -float(a.min()))
    if math.isfinite(top):
        return top
    finite = np.abs(a[np.isfinite(a)])
    return float(finite.max()) if finite.size else 0.0

class QtHeatmapView(QtSnapshotView):
    neuron_clicked = pyqtSignal(str, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = None  # (name, shape) the grid was built for
        self._grid = np.zeros((0, 0), dtype=np.float32)
        self._counts, self._t = np.zeros(0), 0  # the shown sample's counts (the snapshot's), its step
        self._name = None

        self._auto = QCheckBox("auto range")
        self._auto.setToolTip("Colour range 0 .. highest rate shown (else 0 .. the model's maximum rate)")
        self._auto.toggled.connect(lambda _: self._schedule())
        self.channel = QSpinBox(minimum=-1, maximum=0)
        self.channel.setSpecialValueText("all")
        self.channel.setPrefix("channel ")
        self.channel.setToolTip("One channel of the layer (H x W), or all tiled")
        self.channel.valueChanged.connect(lambda _: self._schedule())
        self.channel.hide()
        self._channel_layer = None  # the layer the channel box was set up for
        self._hover = QLabel(" ")
        self._hover.setStyleSheet("color: gray")
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(self._hover, 1)
        bar.addWidget(self.channel)
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
        self._counts, self._t = np.zeros(0), 0  # the shown sample's counts (the snapshot's), its step
        self._divergence = None
        self._hover.setText(" ")

    def _clear(self) -> None:
        super()._clear()
        self._rect = None
        self._counts, self._t = np.zeros(0), 0  # the shown sample's counts (the snapshot's), its step
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
        if ls.counts is None:  # a big network's newly selected layer: its arrays come with the next snapshot
            set_title(self.plot, f"Firing rate — {name}: waiting for its first snapshot")
            return
        b = self.sample(snapshot)
        shown = self._shown_shape(name, ls.shape)
        h, w, c, rows, cols = tiling(shown)
        if self._layout != (name, shown):
            self._layout = (name, shown)
            self._grid = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP), np.nan, dtype=np.float32)
            self.plot.vb.enableAutoRange()
        counts = ls.counts[b].reshape(-1)
        self._counts, self._t = counts, snapshot.t
        ch = self.shown_channel()
        shown = counts if ch is None else counts.reshape(-1, ls.shape[-1])[:, ch]  # one channel: only its rates
        self._fill(shown / snapshot.t if snapshot.t > 0 else np.zeros(shown.shape), h, w, c, rows, cols)
        highest = _finite_abs_max(counts) / snapshot.t if snapshot.t > 0 else 0.0  # the layer's: one colour scale
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
        part = "" if ch is None else f", channel {ch} of {ls.shape[-1]}"
        set_title(self.plot, f"Firing rate — {name} ({shape}){part}{sample}, t = {snapshot.t}")

    def _rate(self, flat: int) -> float:
        return float(self._counts[flat]) / self._t if self._t > 0 else 0.0

    def shown_channel(self) -> int | None:
        """The one channel shown, or None (all channels tiled, or a layer without channels)."""
        if self.channel.isHidden():
            return None
        return None if self.channel.value() < 0 else self.channel.value()

    def _shown_shape(self, name: str, shape) -> tuple[int, ...]:
        """The shape drawn: (H, W, 1) with one channel chosen, else the layer's. A new layer
        sets up the channel box: all channels up to ALL_CHANNELS_MAX neurons, else channel 0."""
        if name != self._channel_layer:
            self._channel_layer = name
            self.channel.blockSignals(True)
            if len(shape) == 3 and shape[2] > 1:
                self.channel.setMaximum(shape[2] - 1)
                self.channel.setValue(0 if int(np.prod(shape)) > ALL_CHANNELS_MAX else -1)
                self.channel.setHidden(False)
            else:
                self.channel.setValue(-1)
                self.channel.setHidden(True)
            self.channel.blockSignals(False)
        ch = self.shown_channel()
        return tuple(shape) if ch is None else (shape[0], shape[1], 1)

    def _outline(self, mask, shape) -> None:
        self._outlined = np.zeros(0, dtype=np.int64) if mask is None else np.flatnonzero(mask)
        if not self._outlined.size:
            clear_data(self.outlines)
            return
        ch1 = self.shown_channel()
        flat = self._outlined
        if ch1 is not None:  # one channel shown: its neurons, as if the layer had one channel
            flat = flat[flat % shape[-1] == ch1] // shape[-1]
            shape = (shape[0], shape[1], 1)
        h, w, c, rows, cols = tiling(shape)
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
        one = self.shown_channel()
        if one is not None:  # (H, W, 1) drawn: the neuron of the chosen channel
            layer_c = self._counts.size // max(h * w, 1)
            flat, ch = (r * w + q) * layer_c + one, one
        if flat >= self._counts.size:
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
        self._hover.setText(f"{self._name}[{flat}] {where}  rate {self._rate(flat):.3f} spikes/step")

    def _on_scene_clicked(self, event) -> None:
        if event.button() != pg.QtCore.Qt.MouseButton.LeftButton:
            return
        self._on_mouse_moved(event.scenePos())  # the hover line names what was clicked
        hit = self._hit(event.scenePos())
        if hit is not None:
            self.neuron_clicked.emit(self._name, hit[0])
