"""``python -m benchmarks [--only engines|coldstart|memory] [--nets demo,lenet5,vgg_small] [--quick]``

Runs the engine benchmark suite and writes its section of docs/benchmarks.md (other sections of
that file, e.g. the window's paint speed, are kept). ``--no-write`` only prints.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import report  # noqa: E402
from benchmarks.networks import NAMES, build  # noqa: E402

BENCHES = ("engines", "coldstart", "memory")
# timesteps per measurement round: (batch 1, batch 64), per network
STEPS = {"demo": (200, 20), "lenet5": (100, 10), "vgg_small": (50, 4)}


def machine() -> dict:
    import numba
    import numpy

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": numpy.__version__,
            "numba": numba.__version__, "os": platform.platform(), "load": os.getloadavg()}
    try:
        import importlib.metadata as md

        info["tensorflow"] = md.version("tensorflow")
        info["keras"] = md.version("keras")
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--only", choices=BENCHES, action="append", help="run only this bench (repeatable)")
    ap.add_argument("--nets", default=",".join(NAMES), help=f"comma-separated subset of {','.join(NAMES)}")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer steps and rounds (a smoke run)")
    ap.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = ap.parse_args(argv)
    benches = args.only or list(BENCHES)
    nets = [n for n in args.nets.split(",") if n]
    batches = [int(b) for b in args.batches.split(",")]
    rounds = 1 if args.quick else args.rounds
    results = {"machine": machine(), "engines": [], "coldstart": None, "memory": []}
    print("machine:", results["machine"], flush=True)
    if "coldstart" in benches:
        from benchmarks import coldstart

        results["coldstart"] = coldstart.measure(2 if args.quick else 3)
        print("coldstart:", results["coldstart"], flush=True)
    with tempfile.TemporaryDirectory(prefix="snn-bench-") as tmp:
        _networks(results, benches, nets, batches, rounds, args.quick, Path(tmp))
    text = report.markdown(results, " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]))
    print(text)
    if not args.no_write:
        report.write_section(Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md", text)
    return 0


def _networks(results, benches, nets, batches, rounds, quick, work: Path) -> None:
    """The per-network benches (engines, memory); the Keras files live in ``work``."""
    for name in nets:
        if not {"engines", "memory"} & set(benches):
            break
        bn = build(name, work)
        if "engines" in benches:
            from benchmarks import engines

            for batch in batches:
                steps = STEPS[name][0 if batch == 1 else 1]
                if quick:
                    steps = max(2, steps // 4)
                r = engines.measure(bn, batch, steps, rounds)
                results["engines"].append(r)
                print(report.engine_line(r), flush=True)
        if "memory" in benches:
            from benchmarks import memory

            saved = work / f"{name}.network.npz"
            bn.network.save(saved)
            for batch in batches:
                steps = 5
                row = {"net": name, "batch": batch}
                for engine in ("ours", "numpy"):
                    row[engine] = memory.measure(engine, saved, batch, steps)
                row["keras"] = memory.measure("keras", bn.keras_path, batch, steps)
                results["memory"].append(row)
                print("memory:", row, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
