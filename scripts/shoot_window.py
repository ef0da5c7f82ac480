"""Screenshots of the whole window with the demo running: ``xvfb-run -a python scripts/shoot_window.py``.

A batch of 8 test samples, the views showing sample 3 of it, conv2 selected, two neurons
watched. Writes to docs/screenshots/:
- window_running.png   while playing, the heat map tab raised;
- window_accuracy.png  while playing, the accuracy tab raised (batch accuracy and the ANN line);
- window_rates.png     while playing, the firing-rates tab raised;
- window_step_layer.png paused mid-timestep (stepping by layer), every layer stacked in the
  raster with the step in progress as its last column, the ANN-vs-SNN tab raised.
Layout settings go to a temporary file so a person's saved layout is neither used nor changed.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from workbench.views.app import build_window

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def main() -> int:
    app = QApplication(sys.argv[:1])
    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
    session, win = build_window(settings=settings, error_handler=lambda m, d: print("error:", m, file=sys.stderr))
    win.resize(1600, 1000)
    win.show()
    OUT.mkdir(parents=True, exist_ok=True)

    def start():
        if session.network is None or session.snapshot is None:
            QTimer.singleShot(200, start)
            return
        session.select_batch(0, 8)
        when(lambda: session.snapshot is not None and session.snapshot.batch == 8, configure)

    def configure():
        session.select_layer("conv2")
        win.input_view.shown.setValue(3)
        membrane = win.views.get("membrane")
        if membrane is not None:  # two neurons that fire for sample 3 (by the ANN's activation)
            for layer, q in (("conv2", 0.6), ("fc1", 0.9)):
                ann = session.snapshot.layer(layer).ann[3].reshape(-1)
                order = np.argsort(ann)
                membrane.add_neuron(layer, int(order[int(q * (len(order) - 1))]))
        win.controls.target.setValue(100_000)  # Play runs a sample to T: far beyond the shots
        session.play()
        when(lambda: session.snapshot.t >= 300, lambda: shoot("heatmap", "window_running.png", accuracy))

    def when(condition, then):
        """Call ``then`` once ``condition()`` holds and the views have had time to repaint."""
        QTimer.singleShot(500, then) if condition() else QTimer.singleShot(100, lambda: when(condition, then))

    def shoot(dock, name, then):
        if dock in win.docks:
            win.docks[dock].raise_()
        QTimer.singleShot(600, lambda: (win.grab().save(str(OUT / name)), then()))

    def accuracy():
        shoot("accuracy", "window_accuracy.png", rates)

    def rates():
        shoot("rates", "window_rates.png", step_layer)

    def step_layer():
        session.pause()
        raster = win.views.get("raster")
        if raster is not None:
            raster.set_stacked(True)
        for _ in range(4):
            session.step_layer()
        if "ann_vs_snn" in win.docks:
            win.docks["ann_vs_snn"].raise_()
        when(lambda: session.snapshot.cursor == 4 and not session.running, shoot_paused)

    def shoot_paused():
        win.grab().save(str(OUT / "window_step_layer.png"))
        win.close()
        app.quit()

    QTimer.singleShot(300, start)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
