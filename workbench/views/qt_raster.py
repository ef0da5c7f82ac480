"""QtRasterView: spike raster of the selected layer, or of every recorded layer stacked.

One ``ImageItem`` over a C-contiguous ``uint8`` (rows = neurons, columns = timesteps) code
array with a small LUT and explicit levels; the array is reused between frames. Codes at full
resolution (``codes()``): 0 nothing, 1 cursor-layer background, 2 background of a neuron that
diverges from a compared trace (``set_divergence``; up to the shown step), 3 background of the
step in progress, 4 separator between stacked layers, ``POSITIVE`` a spike, ``NEGATIVE`` a
negative spike (signed models). A red ring marks where each divergent neuron first differs
(visible at any zoom), a dashed red line the step of the first divergence.

Zoomed out (more rows or steps than screen pixels) the codes are pooled to the pixel grid and a
pooled cell is shaded by its spike density, the fraction of its neuron-steps that spiked, on a
graded LUT (``DENSITY_LEVELS`` shades from dim to full; one spike in a cell is still the dim
shade, never dropped); negative spikes keep their own colour ramp, separators stay visible.
So a busy layer reads as a grey-to-yellow texture instead of a solid yellow block.

Stepping by layer (``Snapshot.cursor`` > 0) the step in progress is the last column, on its own
background: the spikes of the layers already advanced (``LayerSnapshot.spikes``), nothing yet
for the others. x is the real timestep number (``history.steps``, then ``t + 1``), y the neuron
index (row-major, channels-last flat index), neuron 0 at the top. A left click on a row emits
``neuron_clicked(layer, index)``.

Stacked, a layer much smaller than the others (fc1 and the output under conv layers) is drawn
with each neuron repeated on ``rows_per_neuron(layer)`` rows, so that every layer has a band of
at least ``MIN_BAND_SHARE`` of all rows (with many layers, half their
equal share) and gets its name on the axis. The key above the plot
names the colours (yellow: a spike, cyan: a negative spike of a signed model).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout

from workbench.views.raster_codes import (
    CURSOR, DIVERGENT, EMPTY, LEVELS, LUT, NEGATIVE, NOW, POSITIVE, SEPARATOR, pool_codes, pool_spikes,
)
from workbench.views.qt_snapshot_view import (QtSnapshotView, clear_data, make_plot, set_axis_label, set_label_format, set_ticks,
                                              set_title)

MIN_BAND_SHARE = 1 / 12  # stacked: the least share of the rows a layer's band gets (at most half of 1/layers)


class QtRasterView(QtSnapshotView):
    neuron_clicked = pyqtSignal(str, int)
    stacked_changed = pyqtSignal(bool)  # the window asks the session for every layer's history

    def __init__(self, parent=None):
        super().__init__(parent)
        self._stacked = False
        self._buf = np.zeros((0, 0), dtype=np.uint8)
        self._shape = (0, 0)  # (rows, columns) of the full-resolution codes shown
        self._lazy = None  # (snapshot, layer, sample, neurons) when codes() must build _buf first
        self._blocks: list[tuple[str, int, int]] = []  # (layer, first row, neurons)
        self._repeat: dict[str, int] = {}  # layer -> rows per neuron (stacked small layers)
        self._pool = (1, 1)
        self._last_step = 0  # timestep of the last column shown
        self._divergence = None  # DivergenceOverlay of a comparison, or None
        self._codes: dict[str, tuple] = {}  # layer -> (key, first step, last step, (n, T) codes)
        self._spare_codes: dict[str, np.ndarray] = {}  # the frame before's, to write into
        self._frame = None  # (key, first step, last step) of a frame of plain codes, else None
        self._pooled = None  # ((key, py), first step, last step, pooled image) of the last frame

        self._all = QCheckBox("All layers")
        self._all.setToolTip("Stack every recorded layer, separated by grey rows")
        self._all.toggled.connect(self._on_all_toggled)
        self._status = QLabel()
        self._status.setStyleSheet("color: gray")
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(self._all)
        self.key = QLabel("<span style='color:#ffe13c'>■</span> spike &nbsp;<span style='color:#00d7ff'>■</span> "
                          "negative spike (signed models)")
        self.key.setStyleSheet("color: gray")
        bar.addWidget(self.key)
        bar.addStretch(1)
        bar.addWidget(self._status)

        self.plot = make_plot("Spikes", "timestep", "neuron")
        self.plot.setDefaultPadding(0)
        self.plot.showGrid(False, False)  # grid lines over the image cost more than the image
        self.plot.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(LUT)
        self.image.setLevels(LEVELS)
        self.plot.addItem(self.image)
        self.first_line = pg.InfiniteLine(angle=90, movable=False,
                                          pen=pg.mkPen("#ff5050", width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.first_line.hide()
        self.plot.addItem(self.first_line)
        self.now_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#40d0a0", width=2),
                                        label="", labelOpts={"position": 0.06, "color": "#60f0c0",
                                                             "fill": (0, 0, 0, 190), "anchors": [(1, 1), (1, 1)]})
        self.now_line.hide()  # the left edge of the step-in-progress column, visible at any zoom
        self.plot.addItem(self.now_line)
        self.div_marks = pg.ScatterPlotItem(symbol="o", size=9, pen=pg.mkPen("#ff3030", width=2), brush=None)
        self.plot.addItem(self.div_marks)  # where each divergent neuron first differs: visible at any zoom
        self.plot_widget = pg.PlotWidget(plotItem=self.plot)
        self.plot_widget.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.plot.vb.sigRangeChanged.connect(self._on_range_changed)
        self.plot.vb.sigResized.connect(self._on_range_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.plot_widget, 1)

    # ---- slots -----------------------------------------------------------------------------
    @pyqtSlot(bool)
    def set_stacked(self, stacked: bool) -> None:
        """Show every recorded layer stacked (True) or the selected layer only."""
        changed = self._stacked != bool(stacked)
        self._stacked = bool(stacked)
        if self._all.isChecked() != self._stacked:
            self._all.setChecked(self._stacked)
        if changed:
            self.stacked_changed.emit(self._stacked)
        self._schedule()

    @pyqtSlot(object)
    def set_divergence(self, overlay) -> None:
        """Mark the neurons that differ from a compared trace (a DivergenceOverlay; None clears)."""
        self._divergence = overlay
        first = None if overlay is None else overlay.first
        self.first_line.setVisible(first is not None)
        if first is not None:
            self.first_line.setValue(first.step)
        self._schedule()

    def _on_all_toggled(self, checked: bool) -> None:
        self.set_stacked(checked)

    def _on_range_changed(self, *args) -> None:
        if self._stacked and self._blocks:
            set_ticks(self.plot.getAxis("left"), [self._layer_ticks(), []])
        if self._snapshot is not None and self._pooling() != self._pool:
            self._schedule()

    def _forget(self) -> None:
        self._codes, self._spare_codes = {}, {}
        self._frame = self._pooled = self._lazy = None
        self._blocks = []
        self._divergence = None
        self.first_line.hide()

    def _clear(self) -> None:
        super()._clear()
        self._blocks = []
        self._repeat = {}
        self._shape = (0, 0)
        self._buf = np.zeros((0, 0), dtype=np.uint8)
        self._frame = self._lazy = None
        self.now_line.hide()
        set_ticks(self.plot.getAxis("left"), None)
        set_axis_label(self.plot.getAxis("left"), "neuron (flat index)")
        set_title(self.plot, "Spikes: nothing runs")
        self._status.setText("")

    # ---- what is shown ---------------------------------------------------------------------
    @property
    def blocks(self) -> list[tuple[str, int, int]]:
        """(layer, first row, neurons) of each layer shown, top to bottom."""
        return list(self._blocks)

    def codes(self) -> np.ndarray:
        """The full-resolution code array of the last paint (rows = neurons, columns = steps).
        A pooled frame of plain spikes is drawn from the spikes directly; its codes are built
        here, when asked for."""
        if self._lazy is not None:
            snapshot, name, b, n = self._lazy
            self._lazy = None
            self._buf = np.array(self._spike_codes(snapshot, name, b, n))
        return self._buf

    def rows_per_neuron(self, layer: str) -> int:
        return self._repeat.get(layer, 1)

    def row_to_neuron(self, row: int) -> tuple[str, int] | None:
        for name, first, n in self._blocks:
            r = self._repeat.get(name, 1)
            if first <= row < first + n * r:
                return name, (row - first) // r
        return None

    def _shown_layers(self, snapshot) -> list[str]:
        recorded = snapshot.history.layers
        if self._stacked:
            return [ls.name for ls in snapshot.layers if ls.name in recorded]
        name = self._selected if self._selected else self.layer_name(snapshot, recorded)
        return [name] if name in recorded else []

    def _pooling(self) -> tuple[int, int]:
        """Rows and columns per screen pixel (>= 1): pooling factors for the image."""
        rows, cols = self._shape
        if rows == 0 or cols == 0:
            return (1, 1)
        px = self.plot.vb.viewPixelSize()  # data units per pixel, (x, y)
        return max(1, int(px[1])), max(1, int(px[0]))

    # ---- painting --------------------------------------------------------------------------
    def _render(self, snapshot) -> None:
        history = snapshot.history
        names = self._shown_layers(snapshot)
        b = self.sample(snapshot)
        T = history.n_steps
        now = snapshot.cursor > 0 and bool(names)  # a step in progress: one more column
        cols = T + int(now)
        clear_data(self.div_marks)
        self._lazy = None
        if not names or cols == 0:
            self._frame = None
            self._shape = (0, 0)
            self.now_line.hide()
            self._blocks = []
            self._buf = np.zeros((0, 0), dtype=np.uint8)
            self.image.clear()
            if names:
                self._status.setText("no steps yet")
            elif self._selected and not any(ls.name == self._selected and ls.is_neuron for ls in snapshot.layers):
                self._status.setText(f"{self._selected}: no neurons, no spikes")
            else:
                self._status.setText(f"{self._selected or 'no layer'}: not recorded")
            set_title(self.plot, "Spikes")
            return
        sizes = [int(np.prod(history[n].shape)) for n in names]
        share = min(MIN_BAND_SHARE, 0.5 / len(names))
        least = int(np.ceil(sum(sizes) * share)) if len(names) > 1 else 0
        self._repeat = {n: -(-least // k) for n, k in zip(names, sizes) if 0 < k < least}
        rows = sum(k * self._repeat.get(n, 1) for n, k in zip(names, sizes)) + len(names) - 1
        self._shape = (rows, cols)
        epoch = getattr(snapshot, "history_epoch", 0)
        steps = history.steps
        spikes_only = not now and T and self._divergence is None and snapshot.cursor_layer not in names
        plain = spikes_only and epoch and int(steps[-1]) - int(steps[0]) + 1 == T  # and one recording's steps
        self._frame = ((epoch, tuple(names), b, rows), int(steps[0]), int(steps[-1])) if plain else None
        py, px = self._pooling()
        if spikes_only and len(names) == 1 and py > 1 and px == 1:  # zoomed out over neurons: pool the spikes
            self._blocks = [(names[0], 0, sizes[0])]
            self._lazy = (snapshot, names[0], b, sizes[0])
            self._last_step = int(steps[-1])
            self.now_line.setVisible(False)
            self._show(self._pooled_spikes(snapshot, names[0], b, sizes[0], py), py, px, self._last_step)
            self._update_axes(snapshot, names, b)
            return
        if self._buf.shape != (rows, cols):
            self._buf = np.empty((rows, cols), dtype=np.uint8)
        buf = self._buf
        self._blocks = []
        row = 0
        marks = ([], [])
        for name, n in zip(names, sizes):
            r = self._repeat.get(name, 1)
            block = buf[row:row + n] if r == 1 else np.empty((n, cols), dtype=np.uint8)
            done = block[:, :T]
            np.copyto(done, self._spike_codes(snapshot, name, b, n))
            if now:
                self._fill_in_progress(block[:, T], snapshot.layer(name), snapshot.cursor, b)
            if name == snapshot.cursor_layer:
                block[block == EMPTY] = CURSOR
            if self._divergence is not None:
                mask = self._divergence.mask(name, b, snapshot.t)
                self._mark_divergent(block, mask)
                if mask is not None and mask.any():
                    first = self._divergence.first_step[name][min(b, self._divergence.first_step[name].shape[0] - 1)]
                    marks[0].append(first[mask])
                    marks[1].append(row + np.flatnonzero(mask) * r + (r - 1) / 2)
            if r > 1:
                buf[row:row + n * r] = np.repeat(block, r, axis=0)
            self._blocks.append((name, row, n))
            row += n * r
            if row < rows:
                buf[row] = SEPARATOR
                row += 1
        self._last_step = snapshot.t + 1 if now else int(history.steps[-1])
        self.now_line.setVisible(now)
        if now:
            self.now_line.setValue(snapshot.t + 0.5)
            set_label_format(self.now_line.label, f"step {snapshot.t + 1} ▶")
        self._push_image(self._last_step)
        self._update_axes(snapshot, names, b)
        if marks[0]:
            self.div_marks.setData(np.concatenate(marks[0]).astype(float), np.concatenate(marks[1]).astype(float))

    def _spike_codes(self, snapshot, name: str, b: int, n: int) -> np.ndarray:
        """(n, T) codes (POSITIVE, NEGATIVE, EMPTY) of a layer's recorded spikes of sample ``b``.
        Kept per layer: while snapshots continue one recording (the same ``history_epoch``)
        the steps both histories hold are taken from the last frame's codes and only the new
        steps are transposed (the whole window was ~4 ms a frame for a 2048-neuron layer)."""
        history = snapshot.history
        steps = history.steps
        T = len(steps)
        s = history[name].spikes.reshape(T, history.batch, n)[:, b, :]  # (T, n) view
        signed = snapshot.layer(name).signed
        key = (getattr(snapshot, "history_epoch", 0), b, n, signed)
        first, last = (int(steps[0]), int(steps[-1])) if T else (0, -1)
        old = self._codes.get(name)
        keep = 0
        if (old is not None and key[0] and old[0] == key and T and last - first + 1 == T
                and old[1] <= first <= old[2] + 1 and last >= old[2]):
            keep = old[2] - first + 1
        spare = self._spare_codes.pop(name, None)
        out = spare if spare is not None and spare.shape == (n, T) else np.empty((n, T), dtype=np.uint8)
        if keep:
            out[:, :keep] = old[3][:, first - old[1]:]
        new = s[keep:]
        fresh = out[:, keep:]
        np.copyto(fresh, np.greater(new, 0).view(np.uint8).T)  # one transposing copy (fast)
        fresh *= POSITIVE
        if signed:
            fresh[new.T < 0] = NEGATIVE
        if old is not None:
            self._spare_codes[name] = old[3]
        self._codes[name] = (key, first, last, out)
        return out

    @staticmethod
    def _fill_in_progress(column, ls, cursor: int, b: int) -> None:
        """The step in progress: this step's spikes of a layer already advanced (its index is
        below the cursor) on the NOW background; a layer still to advance shows nothing yet."""
        if ls.index >= cursor or ls.spikes is None:
            column[:] = EMPTY
            return
        s = ls.spikes[b].reshape(-1)
        column[:] = NOW
        column[s > 0] = POSITIVE
        column[s < 0] = NEGATIVE

    @staticmethod
    def _mark_divergent(block, mask) -> None:
        if mask is None or not mask.any():
            return
        rows = block[mask]
        rows[rows < DIVERGENT] = DIVERGENT
        block[mask] = rows

    def _push_image(self, last_step: int) -> None:
        buf = self._buf
        self._pool = py, px = self._pooling()
        img = buf
        if py > 1 or px > 1:  # shaded by spike density
            img = self._pooled_image(buf, py, px)
        else:
            self._pooled = None
        self._show(img, py, px, last_step)

    def _show(self, img, py: int, px: int, last_step: int) -> None:
        self._pool = (py, px)
        self.image.setImage(img, autoLevels=False, levels=LEVELS)
        x0 = float(last_step) + 0.5 - img.shape[1] * px
        self.image.setRect(QRectF(x0, -0.5, float(img.shape[1] * px), float(img.shape[0] * py)))

    def _pooled_spikes(self, snapshot, name: str, b: int, n: int, py: int) -> np.ndarray:
        """``pool_codes`` of the frame's codes (py rows, 1 column a cell), from the spikes (of
        the steps the last frame did not pool, while frames continue one recording: see
        ``_pooled_image``; the same cache)."""
        old, self._pooled = self._pooled, None
        history = snapshot.history
        T = history.n_steps
        keep = 0
        if self._frame is not None:
            key, first, last = self._frame
            if old is not None and old[0] == (key, py) and old[1] <= first <= old[2] + 1 and last >= old[2]:
                keep = old[2] - first + 1
        img = np.empty((-(-n // py), T), dtype=np.uint8)
        if keep:
            img[:, :keep] = old[3][:, first - old[1]:]
        if keep < T:
            spikes = history[name].spikes.reshape(T, history.batch, n)[keep:, b, :]
            img[:, keep:] = pool_spikes(spikes, py, snapshot.layer(name).signed)
        if self._frame is not None:
            self._pooled = ((key, py), first, last, img)
        return img

    def _pooled_image(self, buf, py: int, px: int) -> np.ndarray:
        """``pool_codes(buf, py, px)``. With one column per step (px 1) each pooled column
        depends on its step alone, so while frames show nothing but the codes of one recording
        (``self._frame``) the columns of steps the last frame pooled are taken from it."""
        frame, old = self._frame, self._pooled
        self._pooled = None
        if px != 1 or frame is None:
            return pool_codes(buf, py, px)
        key, first, last = frame
        if old is not None and old[0] == (key, py) and old[1] <= first <= old[2] + 1 and last >= old[2]:
            keep = old[2] - first + 1
            img = np.empty((old[3].shape[0], buf.shape[1]), dtype=np.uint8)
            img[:, :keep] = old[3][:, first - old[1]:]
            if keep < buf.shape[1]:
                img[:, keep:] = pool_codes(buf[:, keep:], py, 1)
        else:
            img = pool_codes(buf, py, px)
        self._pooled = ((key, py), first, last, img)
        return img

    def _update_axes(self, snapshot, names, b) -> None:
        left = self.plot.getAxis("left")
        if self._stacked:
            set_ticks(left, [self._layer_ticks(), []])
            set_axis_label(left, "layer")
            title = "Spikes — all recorded layers"
        else:
            set_ticks(left, None)
            set_axis_label(left, "neuron (flat index)")
            title = f"Spikes — {names[0]}"
        if snapshot.batch > 1:
            title += f", sample {b}"
        if snapshot.cursor_layer:
            title += f"  ▶ next: {snapshot.cursor_layer}"
        set_title(self.plot, title)
        steps = snapshot.history.steps
        first = int(steps[0]) if len(steps) else self._last_step
        text = f"steps {first}–{self._last_step}"
        if snapshot.cursor:
            text += f"  ·  step {snapshot.t + 1} in progress (last column)"
        if self._divergence is not None:
            n = sum(int(np.sum(m)) for m in (self._divergence.mask(x, b, snapshot.t) for x in names) if m is not None)
            text += f"  ·  {n} divergent neuron{'s' if n != 1 else ''} (red rows)"
        self._status.setText(text)

    def _layer_ticks(self) -> list[tuple[float, str]]:
        """A name at the middle of each layer's block, leaving out names that would overlap
        the one above (small layers under a big one); zoom in to see them."""
        rows_per_px = max(self.plot.vb.viewPixelSize()[1], 1e-9)
        ticks, last = [], -np.inf
        for name, first, n in self._blocks:
            mid = first + n * self._repeat.get(name, 1) / 2
            if (mid - last) / rows_per_px >= 14:
                ticks.append((mid, name))
                last = mid
        return ticks

    # ---- input -----------------------------------------------------------------------------
    def _on_scene_clicked(self, event) -> None:
        if event.button() != pg.QtCore.Qt.MouseButton.LeftButton or not self._blocks:
            return
        vb = self.plot.vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        point = vb.mapSceneToView(event.scenePos())
        hit = self.row_to_neuron(int(np.floor(point.y() + 0.5)))
        if hit is not None:
            self.neuron_clicked.emit(*hit)
