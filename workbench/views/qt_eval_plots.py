"""Plots of evaluations and sweeps: one widget each, used live by the window and rendered to PNG
by the command line (``save_png``, offscreen, no display needed).

- ``QtEvalCurve``: SNN accuracy after each timestep (top-1 and top-k) with the ANN's accuracy
  and the chance level as dashed reference lines. ``set_result(EvalResult)`` as often as results
  come in; curve items are created once and fed with ``setData``.
- ``QtSweepPlot``: accuracy against synaptic operations per sample (log axis), every point of a
  sweep, and the trade-off curve (the points no other point beats on both) joined and labelled.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QVBoxLayout, QWidget

TOPK_COLORS = ("#50d050", "#4fa3ff", "#c49bff", "#40e0f0")
LIGHT = {"background": "w", "foreground": "#202020", "ann": "#c06000", "chance": "#707070",
         "curves": ("#1a8a1a", "#1f5fbf", "#7a3fbf", "#0f8f9f"), "points": "#1f5fbf", "front": "#c03030"}
DARK = {"background": "k", "foreground": "#d0d0d0", "ann": "#ffb040", "chance": "#a0a0a0",
        "curves": TOPK_COLORS, "points": "#4fa3ff", "front": "#ff6060"}


def _plot(title: str, x: str, y: str, style: dict) -> pg.PlotWidget:
    w = pg.PlotWidget(background=style["background"])
    item = w.getPlotItem()
    item.setTitle(title, size="10pt", color=style["foreground"])
    for side, text in (("bottom", x), ("left", y)):
        axis = item.getAxis(side)
        axis.setLabel(text, color=style["foreground"])
        axis.setPen(style["foreground"])
        axis.setTextPen(style["foreground"])
        axis.enableAutoSIPrefix(False)
    item.showGrid(x=True, y=True, alpha=0.25)
    item.setMenuEnabled(True)  # right-click: Export… (PNG, SVG, CSV)
    return w


def _ref_line(text: str, pen_color: str) -> pg.InfiniteLine:
    """A dashed horizontal reference line, labelled at the right just below the line."""
    return pg.InfiniteLine(0, angle=0, movable=False,
                           pen=pg.mkPen(pen_color, width=1.5, style=Qt.PenStyle.DashLine),
                           label=text, labelOpts={"position": 0.98, "color": pen_color,
                                                  "anchors": [(1, 0), (1, 0)]})


class QtEvalCurve(QWidget):
    def __init__(self, parent=None, light: bool = False):
        super().__init__(parent)
        self.style = LIGHT if light else DARK
        self.plot = _plot("SNN accuracy over time", "timestep", "accuracy (%)", self.style)
        item = self.plot.getPlotItem()
        self.legend = item.addLegend(offset=(-10, 150), labelTextColor=self.style["foreground"])
        self.curves: dict[int, pg.PlotDataItem] = {}
        self.ann_line = _ref_line("ANN", self.style["ann"])
        self.chance_line = _ref_line("chance", self.style["chance"])
        for line in (self.ann_line, self.chance_line):
            line.hide()
            item.addItem(line)
        item.setYRange(0, 100, padding=0.02)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def set_result(self, result) -> None:
        """An ``EvalResult`` (partial or final)."""
        steps = np.arange(1, result.steps + 1)
        for i, k in enumerate(result.top_k):
            if k not in self.curves:
                pen = pg.mkPen(self.style["curves"][i % len(self.style["curves"])], width=2)
                self.curves[k] = self.plot.getPlotItem().plot(pen=pen, name=f"SNN top-{k}")
            acc = result.snn_topk.get(k, result.snn_accuracy if k == 1 else None)
            if acc is not None and result.samples:
                self.curves[k].setData(steps, 100 * np.asarray(acc))
            else:
                self.curves[k].setData([], [])
        ann = result.ann_accuracy
        self.ann_line.setVisible(result.samples > 0 and not math.isnan(ann))
        if self.ann_line.isVisible():
            self.ann_line.setValue(100 * ann)
            self.ann_line.label.setFormat(f"ANN {100 * ann:.1f}%")
        self.chance_line.setVisible(result.n_classes > 0)
        if result.n_classes:
            self.chance_line.setValue(100 * result.chance)
            self.chance_line.label.setFormat(f"chance {100 * result.chance:.0f}%")
        done = f"{result.samples} of {result.total} samples" if result.total else f"{result.samples} samples"
        self.plot.getPlotItem().setTitle(f"SNN accuracy over time ({done})", size="10pt",
                                         color=self.style["foreground"])
        self.plot.getPlotItem().setXRange(1, max(result.steps, 2), padding=0.01)

    def curve_data(self, k: int = 1):
        return self.curves[k].getData() if k in self.curves else (None, None)


class QtSweepPlot(QWidget):
    def __init__(self, parent=None, light: bool = False):
        super().__init__(parent)
        self.style = LIGHT if light else DARK
        self.plot = _plot("Accuracy vs synaptic operations", "synaptic operations per sample (log)",
                          "SNN accuracy (%)", self.style)
        item = self.plot.getPlotItem()
        item.setLogMode(x=True, y=False)
        item.addLegend(offset=(-10, -10), labelTextColor=self.style["foreground"])
        self.points = pg.ScatterPlotItem(name="sweep point", size=8, pen=pg.mkPen(self.style["points"]),
                                         brush=pg.mkBrush(self.style["points"] + "80"))
        self.front = pg.PlotDataItem(name="trade-off curve", pen=pg.mkPen(self.style["front"], width=2), symbol="o", symbolSize=9,
                                     symbolBrush=self.style["front"], symbolPen=None)
        self.ann_line = _ref_line("ANN", self.style["ann"])
        self.ann_line.hide()
        for it in (self.points, self.front, self.ann_line):
            item.addItem(it)
        self.labels: list[pg.TextItem] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def set_rows(self, rows, keys) -> None:
        from workbench.analysis.sweep import pareto

        rows = [r for r in rows if r is not None]
        for label in self.labels:
            self.plot.getPlotItem().removeItem(label)
        self.labels = []
        if not rows:
            self.points.setData([], [])
            self.front.setData([], [])
            return
        ops = np.array([max(r["synops_per_sample"], 1.0) for r in rows])
        acc = np.array([100 * r["snn_accuracy"] for r in rows])
        self.points.setData(np.log10(ops), acc)
        front = pareto(rows)
        fx = np.array([max(r["synops_per_sample"], 1.0) for r in front])
        fy = np.array([100 * r["snn_accuracy"] for r in front])
        self.front.setData(fx, fy)
        for r, x, y in zip(front, fx, fy):
            text = ", ".join(f"{k}={r[k]}" for k in keys if k in r)
            label = pg.TextItem(text, color=self.style["foreground"], anchor=(0, 1))
            label.setPos(math.log10(x), y)
            self.plot.getPlotItem().addItem(label)
            self.labels.append(label)
        ann = [100 * r["ann_accuracy"] for r in rows if not math.isnan(r.get("ann_accuracy", math.nan))]
        self.ann_line.setVisible(bool(ann))
        if ann:
            self.ann_line.setValue(max(ann))
            self.ann_line.label.setFormat(f"ANN {max(ann):.1f}%")
        lo, hi = max(0.0, min(acc.min(), *ann) - 3), min(100.0, max(acc.max(), *ann) + 2)
        self.plot.getPlotItem().setYRange(lo, hi, padding=0.05)
        x0, x1 = np.log10(ops.min()), np.log10(ops.max())
        pad = max(0.1, 0.3 * (x1 - x0))
        self.plot.getPlotItem().setXRange(x0 - 0.3 * pad, x1 + pad, padding=0)


_APP = []  # the QApplication made here, kept alive for the process


def _app():
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication(["snn-workbench"])
        _APP.append(app)
    return app


def _quiet_offscreen() -> None:
    """The offscreen platform warns about size hints on every shown widget; drop that line only."""
    from PyQt6.QtCore import qInstallMessageHandler

    if _APP and not getattr(_quiet_offscreen, "done", False):
        previous = [None]

        def handler(mode, context, message):
            if "propagateSizeHints" in message:
                return
            if previous[0] is not None:
                previous[0](mode, context, message)
            else:
                sys.stderr.write(message + "\n")

        previous[0] = qInstallMessageHandler(handler)
        _quiet_offscreen.done = True


def save_png(widget: QWidget, path, size=(900, 560)) -> None:
    """Render ``widget`` into a PNG file, atomically, without showing it on screen."""
    from workbench.atomic import atomic_path
    from workbench.errors import OutputFileError

    _quiet_offscreen()
    widget.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    widget.resize(*size)
    widget.show()
    _app().processEvents()
    image = widget.grab()
    widget.hide()
    with atomic_path(path) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise OutputFileError(f"{path}: the image could not be written")


def evaluation_png(result, path) -> None:
    _app()
    widget = QtEvalCurve(light=True)
    widget.set_result(result)
    save_png(widget, path)


def sweep_png(rows, keys, path) -> None:
    _app()
    widget = QtSweepPlot(light=True)
    widget.set_rows(rows, keys)
    save_png(widget, path)
