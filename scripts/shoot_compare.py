"""Screenshot of comparing traces in the window: ``xvfb-run -a python scripts/shoot_compare.py``.

Runs the demo for 60 steps, takes the live run's trace as A, plants one flipped spike in conv2
at step 25 (sample 0, neuron 37) and a membrane drift of that neuron from then on to make B, opens A as a trace (read-only) and compares it with
B. Writes docs/screenshots/compare.png. Layout settings go to a temporary file.
"""

import sys
import tempfile
from pathlib import Path

from PyQt6.QtCore import QSettings, QTimer
from PyQt6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.test_trace_playback import planted  # noqa: E402
from workbench.exchange.trace_io import save_trace  # noqa: E402
from workbench.views.app import build_window  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
TMP = Path(tempfile.mkdtemp())


def drifting(trace):
    """B: one flipped spike in conv2[37] at step 25 (sample 0), and that neuron's membrane off
    by 0.25 from then on, as a re-implementation with a bug in one place would be."""
    from workbench.engine.trace import LayerTrace, Trace

    b = planted(trace, "conv2", 25, 0, 37)
    lt = b["conv2"]
    membrane = lt.membrane.copy()
    flat = membrane.reshape(membrane.shape[0], membrane.shape[1], -1)
    flat[24:, 0, 37] += 0.25
    layers = dict(b.layers, conv2=LayerTrace("conv2", lt.shape, lt.spikes, membrane, lt.current))
    return Trace(layers, b.steps, b.predictions, b.labels, dict(b.ann), dict(b.metadata))


def main() -> int:
    app = QApplication(sys.argv[:1])
    settings = QSettings(str(TMP / "layout.ini"), QSettings.Format.IniFormat)
    session, win = build_window(settings=settings, error_handler=lambda m, d: print("error:", m, file=sys.stderr))
    win.resize(1600, 1000)
    win.show()

    def when(condition, then):
        QTimer.singleShot(400, then) if condition() else QTimer.singleShot(100, lambda: when(condition, then))

    def start():
        session.run_to(60)
        when(lambda: session.snapshot is not None and session.snapshot.t == 60 and not session.running,
             lambda: (session.trace_ready.connect(got_trace), session.request_trace()))

    def got_trace(trace):
        save_trace(trace, TMP / "ours.npz")
        save_trace(drifting(trace), TMP / "theirs.npz")
        win.trace_mode.entered.connect(lambda on: on and win.trace_mode.compare(TMP / "theirs.npz"))
        win.trace_mode.compared.connect(lambda _: when(lambda: True, shoot))
        win.trace_mode.open_trace(TMP / "ours.npz")

    def shoot():
        win.trace_mode.trace_session.seek(40)  # a few steps past the divergence: B's drift shows
        win.views["membrane"].add_neuron("fc1", 5)
        QTimer.singleShot(500, lambda: (win.grab().save(str(OUT / "compare.png")), win.close(), app.quit()))

    when(lambda: session.network is not None and session.snapshot is not None, start)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
