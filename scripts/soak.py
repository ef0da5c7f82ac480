"""Soak test: run the demo as the window does, for a very long time, and report memory.

Drives the window's own worker (``SimLoop``, the code behind ``Session``; Qt-free) with the
window's recording settings: a ring buffer of ``Session``'s default window (500 steps), batch 1,
snapshots taken as fast as a GUI would take them (``frame_done`` after each), the R-history kept
for the selected layer. Prints the resident set size (RSS) at the start, every ``--every`` steps
and at the end, and exits 1 when RSS grew by more than ``--max-growth-mb`` after warm-up.

    .venv/bin/python scripts/soak.py                 # 1,000,000 timesteps
    .venv/bin/python scripts/soak.py --steps 100000  # shorter
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--every", type=int, default=100_000, help="report every N steps")
    ap.add_argument("--window", type=int, default=None, help="ring buffer (default: Session's)")
    ap.add_argument("--max-growth-mb", type=float, default=50.0)
    args = ap.parse_args(argv)

    import inspect

    from workbench.engine.config import SimConfig
    from workbench.views import loaders
    from workbench.views.session import Session
    from workbench.views.sim_loop import SimLoop

    window = args.window or inspect.signature(Session.__init__).parameters["window"].default
    state = {"t": 0, "snapshots": 0, "errors": [], "running": None}
    done = threading.Event()

    def emit(kind, payload):  # what Session._on_message does, minus the views
        if kind == "snapshot":
            state["snapshots"] += 1
            if payload is not None:
                state["t"] = payload.t
            loop.frame_done()
        elif kind == "error":
            state["errors"].append(payload)
            done.set()
        elif kind == "running":
            state["running"] = payload
            if not payload and state["t"] > 0:
                done.set()
        elif kind == "result":
            state["loaded"] = payload[1]
            done.set()
        elif kind == "cancelled":
            done.set()

    loop = SimLoop(emit, window)
    worker = threading.Thread(target=loop.run, name="soak-sim", daemon=True)
    worker.start()
    start_rss = rss_mb()
    print(f"start     rss {start_rss:8.1f} MB   (window {window} steps, before loading)", flush=True)
    loop.post("job", "model", "demo", loaders.open_demo, (99.9,), loop.job_token())
    done.wait()
    done.clear()
    if state["errors"] or "loaded" not in state:
        loop.quit()
        worker.join(10)
        what = state["errors"][0][0] if state["errors"] else "the demo did not load (cancelled)"
        print(f"error: {what}", file=sys.stderr)
        return 2
    loaded = state["loaded"]
    net = loaded.network
    config = SimConfig(batch=1)  # the Session's default settings
    x = loaded.samples.batch(0, 1)
    first = net.neuron_layers[0].name
    loop.post("history", (first,))  # the selected layer, as the window does
    loop.post("setup", net, config, x.x, x.y)
    t0 = time.perf_counter()
    loop.play(args.steps)
    rows = []
    next_report = args.every
    while not done.wait(0.5):
        if state["t"] >= next_report:
            rows.append((state["t"], rss_mb(), time.perf_counter() - t0))
            print(f"t={rows[-1][0]:>9}  rss {rows[-1][1]:8.1f} MB   {rows[-1][2]:7.1f} s  "
                  f"({rows[-1][0] / rows[-1][2]:.0f} steps/s)", flush=True)
            next_report = (state["t"] // args.every + 1) * args.every
    elapsed = time.perf_counter() - t0
    loop.quit()
    worker.join(10)
    if state["errors"]:
        print("error:", state["errors"][0][0], file=sys.stderr)
        return 2
    end_rss = rss_mb()
    warm = rows[0][1] if rows else end_rss
    print(f"end       t={state['t']}  rss {end_rss:8.1f} MB   {elapsed:.1f} s  "
          f"({state['t'] / elapsed:.0f} steps/s, {state['snapshots']} snapshots)")
    growth = end_rss - warm
    print(f"growth after the first report: {growth:+.1f} MB (limit {args.max_growth_mb} MB)")
    return 0 if state["t"] >= args.steps and growth <= args.max_growth_mb else 1


if __name__ == "__main__":
    raise SystemExit(main())
