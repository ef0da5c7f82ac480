"""The whole window at a given size, on the demo or on any model and data:

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/shoot_window_sizes.py --size 1280x800 \
        [--model M.keras --data D.npz] [--steps 60] [--batch 8] --out docs/screenshots/window_1280_demo

Plays the first batch to ``--steps`` (Play: T steps per sample; "next sample" off), then saves
``OUT_<tab>.png`` with each right-hand tab raised (heat map, ANN vs SNN, rates, accuracy) and
``OUT_flagged.png`` with "flagged only" on. With ``--model`` and no ``--data``: ``OUT.png``, the
architecture and the notice saying what is missing. Layout settings go to a temporary file.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from workbench.views.app import build_window


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--model")
    ap.add_argument("--data")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--layer", help="layer to select (default: a middle neuron layer)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    app = QApplication(sys.argv[:1])
    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
    session, win = build_window(model=args.model, data=args.data, demo=args.model is None, settings=settings,
                                error_handler=lambda m, d: print("error:", m, file=sys.stderr))
    win.resize(w, h)
    win.show()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shots = [k for k in ("heatmap", "ann_vs_snn", "rates", "accuracy") if k in win.docks]

    def when(condition, then, wait=600):
        QTimer.singleShot(wait, then) if condition() else QTimer.singleShot(150, lambda: when(condition, then, wait))

    def start():
        if args.model and not args.data:
            if session.network is None:
                QTimer.singleShot(200, start)
                return
            QTimer.singleShot(800, lambda: (win.grab().save(f"{out}.png"), finish()))
            return
        if session.network is None or session.snapshot is None:
            QTimer.singleShot(200, start)
            return
        session.select_batch(0, min(args.batch, len(session.samples)))
        when(lambda: session.snapshot is not None and session.snapshot.batch == min(args.batch, len(session.samples)),
             configure, 200)

    def configure():
        neuron = [layer.name for layer in session.network.neuron_layers]
        layer = args.layer or neuron[len(neuron) // 2]
        session.select_layer(layer)
        membrane = win.views.get("membrane")
        if membrane is not None:
            ann = session.snapshot.layer(layer).ann[0].reshape(-1)
            membrane.add_neuron(layer, int(np.argsort(ann)[int(0.9 * (len(ann) - 1))]))
        win.controls.through.setChecked(False)
        win.controls.target.setValue(args.steps)
        session.play()
        when(lambda: session.snapshot.t >= args.steps and not session.running, lambda: shoot(0), 1200)

    def shoot(i):
        if i < len(shots):
            win.docks[shots[i]].raise_()
            QTimer.singleShot(700, lambda: (win.grab().save(f"{out}_{shots[i]}.png"), shoot(i + 1)))
            return
        win.table_panel.flagged_only.setChecked(True)
        win.docks["heatmap"].raise_()
        QTimer.singleShot(500, lambda: (win.grab().save(f"{out}_flagged.png"), finish()))

    def finish():
        print(f"t = {session.snapshot and session.snapshot.t}, {len(session.network.layers)} layers, messages:", *win.messages, sep="\n  ")
        win.close()
        app.quit()

    QTimer.singleShot(300, start)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
