"""QtSnapshotView: the refresh machinery every plot view shares.

A view receives immutable ``Snapshot`` objects (``set_snapshot``) as fast as the session emits
them, but repaints on its own clock: at most ``MAX_FPS`` times a second (a paint at least
``MIN_GAP`` of a frame after the last: while playing, the worker sends 30 snapshots a second on a
grid that makes up a little lateness, so a snapshot may come up to a tenth of a frame early; a
full frame's gap, with the timer's slack, painted 29.4 of them a second), at once when it has
been idle for longer than that, and never while off screen — hidden, or in a dock tab that is not
the current one (it keeps the newest snapshot and paints it when it comes on screen again). Subclasses implement ``_render(snapshot)``, which pushes arrays into
plot items created once in ``__init__``; they never create items per frame.

``refresh()`` paints synchronously (tests, benchmarks, screenshots); ``repaint_count`` counts
paints, so a test can see that a hidden view skipped its refresh.

A snapshot of ``None`` (nothing runs: no model, or a model without data) empties the view
(``_clear``); ``reset()`` (the window calls it when a model or data set is opened) also drops
what a view keeps about the model (``_forget``: legends, cached layouts, hover texts), so nothing
from before stays on screen. An exception inside ``_render`` does not escape to Qt's event loop
(where it only reached stderr): the view empties itself and emits ``render_failed(message,
details)``, which the window shows in its message log and status bar; ``render_errors`` counts
them.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QElapsedTimer, Qt, QTimer, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QWidget

# Ten distinct colours (matplotlib's tab10, readable on pyqtgraph's dark background).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
BRIGHT = (
    "#4fa3ff", "#ffa040", "#50d050", "#ff5a5a", "#c49bff",
    "#d09070", "#ff90d8", "#c0c0c0", "#e0e040", "#40e0f0",
)
MUTED_PEN = pg.mkPen("#909090", width=1, style=pg.QtCore.Qt.PenStyle.DashLine)


def color(i: int) -> str:
    return BRIGHT[i % len(BRIGHT)]


def make_plot(title: str = "", x: str = "", y: str = "", x_units: str | None = None,
              y_units: str | None = None) -> pg.PlotItem:
    """A PlotItem with labelled axes, small fonts, grid; items are added by the caller once."""
    plot = pg.PlotItem()
    _shrinkable(plot.titleLabel)
    set_title(plot, title)
    plot.setLabel("bottom", x, units=x_units)
    plot.setLabel("left", y, units=y_units)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMenuEnabled(True)  # right-click: View All, axes, and Export… (PNG, SVG, CSV; pyqtgraph's exporters)
    for name in ("left", "bottom", "top", "right"):
        axis = plot.getAxis(name)
        # Also on the hidden top and right axes: with an SI prefix each range change (every
        # frame on plots that follow the steps) re-laid their label out as HTML.
        axis.enableAutoSIPrefix(False)
        # Major and minor ticks only: pyqtgraph's third, finest level (never labelled at our
        # sizes) was ~40 of an axis's ~50 ticks, and axes that follow the steps regenerate
        # every frame (1.3 -> 0.8 ms an axis).
        axis.setStyle(maxTickLevel=1, maxTextLevel=1)
    return plot


def _shrinkable(label: pg.LabelItem) -> None:
    """Stop a LabelItem's text width from dictating the layout: pyqtgraph makes a title's width
    the plot's minimum width (on every setText and resize), which pushes a neighbouring plot out
    of a narrow dock. The text stays centred; keep titles short."""
    original = label.updateMin

    def update_min():
        original()
        height = label.minimumHeight()
        label.setMinimumWidth(0)
        label._sizeHint[pg.QtCore.Qt.SizeHint.MinimumSize] = (0, height)
        label._sizeHint[pg.QtCore.Qt.SizeHint.PreferredSize] = (0, height)
        label.updateGeometry()

    label.updateMin = update_min
    update_min()


def set_title(plot: pg.PlotItem, text: str) -> None:
    """Set a plot's title, unless it already shows ``text``: pyqtgraph re-lays the label out
    (HTML, size hints) on every call, even for the same text."""
    if getattr(plot, "_shown_title", None) == text:
        return
    plot._shown_title = text
    plot.setTitle(text, size="9pt")


_UNSET = object()


def clear_data(item) -> None:
    """``item.setData([], [])`` unless the item is empty already: even empty data makes
    pyqtgraph recompute bounds and auto-ranges and repaint, every frame."""
    if isinstance(item, pg.ScatterPlotItem):
        empty = len(item.data) == 0
    else:
        x = item.getOriginalDataset()[0]
        empty = x is None or len(x) == 0
    if not empty:
        item.setData([], [])


def set_ticks(axis: pg.AxisItem, ticks) -> None:
    """``axis.setTicks(ticks)`` unless those ticks are set already: each call throws the axis's
    cached picture away, so it regenerates its ticks and texts at the next paint."""
    if getattr(axis, "_shown_ticks", _UNSET) == ticks:
        return
    axis._shown_ticks = ticks
    axis.setTicks(ticks)


def set_axis_label(axis: pg.AxisItem, text: str) -> None:
    """``axis.setLabel(text)`` unless it shows that text (same reason as ``set_ticks``)."""
    if getattr(axis, "_shown_label", None) == text:
        return
    axis._shown_label = text
    axis.setLabel(text)


def set_label_format(label, text: str) -> None:
    """An InfiniteLine label's ``setFormat`` unless it is the current one (each call re-renders)."""
    if getattr(label, "_shown_format", None) == text:
        return
    label._shown_format = text
    label.setFormat(text)


def finite(value, default: float) -> float:
    """``value`` as a float when it is finite, else ``default`` (ranges, levels, lines)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def finite_range(*arrays, default=(0.0, 1.0)) -> tuple[float, float]:
    """(min, max) over the finite values of ``arrays``; ``default`` when there are none."""
    lo, hi = math.inf, -math.inf
    for a in arrays:
        a = np.asarray(a, dtype=np.float64).reshape(-1)
        a = a[np.isfinite(a)]
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    return (lo, hi) if lo <= hi else default


def thinned_ticks(names, pixels: float, min_px: float = 13.0, keep=()) -> list[tuple[int, str]]:
    """Tick labels for ``names`` at 0, 1, ... on an axis ``pixels`` long: every k-th name, k
    chosen so that labels are at least ``min_px`` apart, plus the names in ``keep``."""
    n = len(names)
    step = max(1, math.ceil(n * min_px / max(pixels, 1.0)))
    kept = [i for i, name in enumerate(names) if name in keep]
    return [(i, name) for i, name in enumerate(names)
            if i in kept or (i % step == 0 and all(abs(i - k) >= step for k in kept))]


class QtSnapshotView(QWidget):
    render_failed = pyqtSignal(str, str)  # message, details: an exception inside the view
    MAX_FPS = 30
    MIN_GAP = 0.9  # of a frame (1 / MAX_FPS) between two paints

    def __init__(self, parent=None):
        super().__init__(parent)
        self._snapshot = None
        self._selected: str | None = None
        self._sample = 0
        self._dirty = False
        self._covered = False  # in a dock tab that is not the current one
        self.repaint_count = 0
        self.render_errors = 0
        self._since = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)  # a coarse timer fires up to 5 % late
        self._timer.timeout.connect(self._on_refresh_timer)

    # ---- the contract ----------------------------------------------------------------------
    @pyqtSlot(object)
    def set_snapshot(self, snapshot) -> None:
        self._snapshot = snapshot
        self._schedule()

    @pyqtSlot(str)
    def set_selected_layer(self, name: str) -> None:
        self._selected = name or None
        self._schedule()

    @pyqtSlot(int)
    def set_sample(self, index: int) -> None:
        """Which sample of the batch to show (clamped to the batch)."""
        self._sample = max(0, int(index))
        self._schedule()

    @property
    def snapshot(self):
        return self._snapshot

    @property
    def selected_layer(self) -> str | None:
        return self._selected

    def sample(self, snapshot=None) -> int:
        snapshot = snapshot or self._snapshot
        batch = getattr(snapshot, "batch", 1) or 1
        return min(self._sample, batch - 1)

    def layer_name(self, snapshot, candidates=None) -> str | None:
        """The selected layer if it is a neuron layer of ``snapshot`` (and among ``candidates``
        when given), else the first neuron layer that is."""
        neuron = [ls.name for ls in snapshot.layers if ls.is_neuron]
        if candidates is not None:
            neuron = [n for n in neuron if n in candidates]
        if self._selected in neuron:
            return self._selected
        return neuron[0] if neuron else None

    # ---- refresh clock ---------------------------------------------------------------------
    def _schedule(self) -> None:
        self._dirty = True
        if self._timer.isActive():
            return
        gap_ms = int(self.MIN_GAP * 1000 / self.MAX_FPS)
        wait = 0 if not self._since.isValid() else max(0, gap_ms - self._since.elapsed())
        self._timer.start(int(wait))

    def on_screen(self) -> bool:
        """Shown and not in a dock tab behind another: Qt still calls such a widget visible."""
        return self.isVisible() and not self._covered

    @pyqtSlot(bool)
    def set_on_screen(self, on: bool) -> None:
        """Told by the window from ``QDockWidget.visibilityChanged`` (its tab raised or not)."""
        self._covered = not on
        if on and self._dirty:
            self._schedule()

    def _on_refresh_timer(self) -> None:
        if self._dirty and self.on_screen():
            self.refresh()

    def showEvent(self, event):  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._dirty:
            self._schedule()

    def refresh(self) -> None:
        """Paint the current snapshot now (an empty view without one)."""
        self._dirty = False
        self._since.start()
        self.repaint_count += 1
        try:
            if self._snapshot is None:
                self._clear()
            else:
                self._render(self._snapshot)
            self._settle()
        except Exception as exc:  # shown to the person, never only a traceback on stderr
            from workbench.views.sim_loop import describe_error

            self.render_errors += 1
            message, details = describe_error(exc)
            self.render_failed.emit(f"{type(self).__name__.removeprefix('Qt')}: {message}", details)
            try:
                self._clear()
            except Exception:
                pass

    def reset(self, forget: bool = True) -> None:
        """No snapshot; with ``forget`` also no legends, layouts or texts of the previous model."""
        self._snapshot = None
        if forget:
            self._forget()
        self._schedule()
        if not self.on_screen():
            self.refresh()  # a covered tab must not show the old model when it is raised

    def _forget(self) -> None:
        """Drop what the view keeps about the model (subclasses extend)."""

    def _clear(self) -> None:
        """Empty every plot item (subclasses extend with their titles and labels)."""
        for view in self.findChildren(pg.GraphicsView):
            for item in view.scene().items():
                if isinstance(item, (pg.PlotDataItem, pg.ScatterPlotItem)) and not isinstance(
                        item.parentItem(), pg.PlotDataItem):
                    clear_data(item)
                elif isinstance(item, pg.ImageItem) and item.image is not None:
                    item.clear()

    def _settle(self) -> None:
        """Apply auto-ranging now, not during Qt's paint: pyqtgraph updates a view box's range in
        its paint preparation, and a range that changed there asks for a second paint (every
        frame while the steps advance the x axis)."""
        for view in self.findChildren(pg.GraphicsView):
            view.scene().prepareForPaint()

    def _render(self, snapshot) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
