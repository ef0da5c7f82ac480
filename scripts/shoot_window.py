"""Screenshots of the whole window with the demo running: ``xvfb-run -a python scripts/shoot_window.py``.

Writes docs/screenshots/window_running.png (while playing) and window_step_layer.png (paused
mid-timestep, stepping by layer, the ANN-vs-SNN tab raised). Layout settings go to a temporary
file so a person's saved layout is neither used nor changed.
"""

import sys
import tempfile
from pathlib import Path

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
        if session.network is None:
            QTimer.singleShot(200, start)
            return
        session.select_layer("conv2")
        membrane = win.views.get("membrane")
        if membrane is not None:
            membrane.add_neuron("conv2", 37)
            membrane.add_neuron("fc1", 5)
        session.play()
        when(lambda: session.snapshot is not None and session.snapshot.t >= 400, shoot_running)

    def when(condition, then):
        """Call ``then`` once ``condition()`` holds and the views have had time to repaint."""
        QTimer.singleShot(400, then) if condition() else QTimer.singleShot(100, lambda: when(condition, then))

    def shoot_running():
        win.grab().save(str(OUT / "window_running.png"))
        session.pause()
        for _ in range(3):
            session.step_layer()
        if "ann_vs_snn" in win.docks:
            win.docks["ann_vs_snn"].raise_()
        when(lambda: session.snapshot.cursor == 3 and not session.running, shoot_paused)

    def shoot_paused():
        win.grab().save(str(OUT / "window_step_layer.png"))
        win.close()
        app.quit()

    QTimer.singleShot(300, start)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
