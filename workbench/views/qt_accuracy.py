"""QtAccuracyView: how the output layer's vote builds up, and accuracy against time.

Left: cumulative output spike count of each class for the shown sample over the recorded
steps. The history holds only the newest steps, so the count at step s is the snapshot's
``output_counts`` minus the spikes recorded after s (exact even when the ring has wrapped).
The sample's true class, when known, is drawn thicker.

Right (batch > 1 with labels): top-1 accuracy after each recorded step (``snapshot.accuracy``
against ``history.steps``), in percent, with the ANN's accuracy (``set_ann_accuracy``) and the
chance level (100 / classes) as reference lines. Hidden otherwise.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSlot
from PyQt6.QtWidgets import QVBoxLayout

from workbench.views.qt_snapshot_view import QtSnapshotView, color, make_plot, set_label_format, set_title

LEGEND_CLASSES = 12  # more classes (ImageNet's 1000) are drawn unnamed; the true class is thicker


class QtAccuracyView(QtSnapshotView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._ann_accuracy: float | None = None
        self.plot_widget = pg.GraphicsLayoutWidget()
        self.count_plot = make_plot("Output spike counts", "timestep", "cumulative spikes")
        self.count_legend = self.count_plot.addLegend(offset=(5, 5), labelTextSize="8pt", colCount=3,
                                                      verSpacing=-6)
        self._count_curves: list[pg.PlotDataItem] = []

        self.acc_plot = make_plot("Accuracy", "timestep", "accuracy (%)")
        self.acc_curve = self.acc_plot.plot(pen=pg.mkPen("#50d050", width=2))
        dash = Qt.PenStyle.DashLine
        self.ann_line = pg.InfiniteLine(0, angle=0, movable=False, pen=pg.mkPen("#ffb040", width=1, style=dash),
                                        label="ANN", labelOpts={"position": 0.95, "color": "#ffb040",
                                                                "anchors": [(1, 0), (1, 0)]})
        self.chance_line = pg.InfiniteLine(0, angle=0, movable=False, pen=pg.mkPen("#a0a0a0", width=1, style=dash),
                                           label="chance", labelOpts={"position": 0.95, "color": "#a0a0a0",
                                                                      "anchors": [(1, 1), (1, 1)]})
        self.ann_line.hide()
        for item in (self.ann_line, self.chance_line):
            self.acc_plot.addItem(item)
        self.acc_plot.setYRange(0, 100, padding=0.02)
        self.acc_plot.setMouseEnabled(y=False)

        self.plot_widget.addItem(self.count_plot, 0, 0)
        self.plot_widget.addItem(self.acc_plot, 0, 1)
        for col in (0, 1):
            self.plot_widget.ci.layout.setColumnStretchFactor(col, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

    @pyqtSlot(float)
    def set_ann_accuracy(self, accuracy: float) -> None:
        """The ANN's top-1 accuracy on the same samples, as a fraction in [0, 1] (NaN hides it)."""
        self._ann_accuracy = None if accuracy is None or np.isnan(accuracy) else float(accuracy)
        self._schedule()

    def count_curves(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [c.getData() for c in self._count_curves]

    def accuracy_curve(self) -> tuple[np.ndarray, np.ndarray]:
        return self.acc_curve.getData()

    def accuracy_visible(self) -> bool:
        return self.acc_plot.isVisible()

    # ---- painting --------------------------------------------------------------------------
    def _forget(self) -> None:
        self._set_classes(0)
        self._ann_accuracy = None

    def _clear(self) -> None:
        super()._clear()
        set_title(self.count_plot, "Output spike counts: nothing runs")
        set_title(self.acc_plot, "Accuracy")
        self.ann_line.hide()

    def _set_classes(self, classes: int) -> None:
        """One curve per class of the output; named in the legend only up to LEGEND_CLASSES."""
        if len(self._count_curves) == classes:
            return
        for curve in self._count_curves:
            self.count_plot.removeItem(curve)
        self._count_curves = [self.count_plot.plot(pen=pg.mkPen(color(i), width=1.2),
                                                   name=str(i) if classes <= LEGEND_CLASSES else None)
                              for i in range(classes)]

    def legend_names(self) -> list[str]:
        return [label.text for _sample, label in self.count_legend.items]

    def _render(self, snapshot) -> None:
        self._render_counts(snapshot)
        self._render_accuracy(snapshot)

    def _render_counts(self, snapshot) -> None:
        history = snapshot.history
        out = snapshot.layers[-1]
        b = self.sample(snapshot)
        classes = int(np.prod(out.shape))
        self._set_classes(classes)
        label = None if snapshot.labels is None else int(snapshot.labels[b])
        title = "Output spike counts" if snapshot.batch == 1 else f"Output counts, sample {b}"
        if label is not None:
            pred = int(snapshot.predictions[b])
            title = f"Sample {b}: label {label}, predicted {pred if pred >= 0 else '–'}"
        set_title(self.count_plot, title)
        lt = history.layers.get(out.name)
        if lt is None or history.n_steps == 0:
            for c in self._count_curves:
                c.setData([], [])
            if lt is None:
                set_title(self.count_plot, f"{out.name}: not recorded")
            return
        spikes = lt.spikes.reshape(history.n_steps, history.batch, classes)[:, b, :].astype(np.float64)
        after = spikes[::-1].cumsum(axis=0)[::-1]  # spikes recorded at or after each row
        total = np.asarray(snapshot.output_counts, dtype=np.float64).reshape(snapshot.batch, -1)[b]
        cumulative = total - after + spikes  # counts after each recorded step
        for k, curve in enumerate(self._count_curves):
            if k < classes:
                curve.setData(history.steps, cumulative[:, k])
                curve.setPen(pg.mkPen(color(k), width=3 if k == label else 1.2))
            else:
                curve.setData([], [])

    def _render_accuracy(self, snapshot) -> None:
        show = snapshot.batch > 1 and snapshot.labels is not None
        if self.acc_plot.isVisible() != show:
            self.acc_plot.setVisible(show)
            if show:
                self.plot_widget.addItem(self.acc_plot, 0, 1)
            else:
                self.plot_widget.removeItem(self.acc_plot)
        if not show:
            return
        steps = snapshot.history.steps
        acc = np.asarray(snapshot.accuracy, dtype=float)
        n = min(len(steps), len(acc))
        self.acc_curve.setData(steps[len(steps) - n:], 100.0 * acc[len(acc) - n:])
        classes = int(np.prod(snapshot.layers[-1].shape))
        self.chance_line.setValue(100.0 / max(classes, 1))
        if self._ann_accuracy is not None:
            self.ann_line.setValue(100.0 * self._ann_accuracy)
            set_label_format(self.ann_line.label, f"ANN {100 * self._ann_accuracy:.1f}%")
        self.ann_line.setVisible(self._ann_accuracy is not None)
        now = f"{100 * acc[-1]:.1f}%" if n else "–"
        set_title(self.acc_plot, f"Accuracy, {snapshot.batch} samples: {now}")
