"""Formatting of benchmark results: one console line per measurement, and the markdown section
of docs/benchmarks.md between the engine markers (the rest of the file is left as it is)."""

from __future__ import annotations

from pathlib import Path

from workbench.atomic import atomic_path

START = "<!-- engine-benchmarks:start (written by `make bench`; edit benchmarks/report.py) -->"
END = "<!-- engine-benchmarks:end -->"

TARGET_NUMPY = {1: 10.0, 64: 3.0}  # ours must be this many times faster than the numpy baseline
TARGET_KERAS = 1.0  # ours/keras cost at batch 64 must be at most this
TARGET_COLD = 2.0  # seconds to the first demo step with a warm numba cache


def _sps(sec: float) -> str:
    return f"{1.0 / sec:,.0f}" if sec > 0 else "-"


def engine_line(r: dict) -> str:
    s = r["sec_per_step"]
    k = f" keras {_sps(s['keras'])}/s ours:keras cost {s['ours_if'] / s['keras']:.2f}" if "keras" in s else ""
    return (f"{r['net']:>9} b{r['batch']:<3} ours {_sps(s['ours_if'])}/s (1 thread {_sps(s['ours_if_1t'])}, "
            f"all threads {_sps(s['ours_if_all'])}, auto serial {r['auto_serial']}) "
            f"lif {_sps(s['ours_lif'])}/s numpy {_sps(s['numpy_if'])}/s  x{s['numpy_if'] / s['ours_if']:.1f} vs numpy"
            f"{k}  same spikes {r['same_spikes']}  paths {r['paths']}")


def _engine_table(rows: list[dict]) -> list[str]:
    out = [
        "| network | batch | ours IF steps/s (default / 1 thread / all threads) | ours LIF steps/s | numpy IF steps/s | "
        "Keras forward/s (eager / graph) | ours vs numpy | ours : Keras cost | synaptic ops/s | same spikes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for r in rows:
        s = r["sec_per_step"]
        ours = s["ours_if"]
        keras = (f"{_sps(s['keras_eager'])} / {_sps(s['keras_graph'])}" if "keras" in s else "-")
        cost = f"{ours / s['keras']:.2f}" if "keras" in s else "-"
        out.append(
            f"| {r['net']} | {r['batch']} | {_sps(ours)} / {_sps(s['ours_if_1t'])} / {_sps(s['ours_if_all'])} | "
            f"{_sps(s['ours_lif'])} | "
            f"{_sps(s['numpy_if'])} | {keras} | {s['numpy_if'] / ours:.1f}x | {cost} | "
            f"{r['synops_per_step'] / ours:,.3g} | {'yes' if r['same_spikes'] else '**no**'} |"
        )
    return out


def _paths_table(rows: list[dict]) -> list[str]:
    out = ["| network | batch | IF: path per layer, default (all threads where it differs) | IF spike rate per layer | "
           "LIF spike rate per layer |", "|---|---:|---|---|---|"]
    for r in rows:
        paths = ", ".join(f"{k} {v}" + (f" ({r['all_paths'][k]})" if r["all_paths"].get(k, v) != v else "")
                          for k, v in r["paths"].items())
        if r["auto_serial"]:
            paths += " — *default ran serial: machine oversubscribed*"
        rates = ", ".join(f"{v:.2f}" for v in r["rates"].values())
        lif = ", ".join(f"{v:.2f}" for v in r["lif_rates"].values())
        out.append(f"| {r['net']} | {r['batch']} | {paths} | {rates} | {lif} |")
    return out


def _targets(results: dict) -> list[str]:
    out = ["| target | measured | met |", "|---|---|:-:|"]
    for r in results["engines"]:
        s = r["sec_per_step"]
        want = TARGET_NUMPY.get(r["batch"])
        if want:
            got = s["numpy_if"] / s["ours_if"]
            out.append(f"| {r['net']} b{r['batch']}: >= {want:g}x numpy | {got:.1f}x | {'yes' if got >= want else 'no'} |")
        if "keras" in s:
            cost = s["ours_if"] / s["keras"]
            if r["batch"] >= 64:
                out.append(f"| {r['net']} b{r['batch']}: T steps <= {TARGET_KERAS:g}x T Keras passes | {cost:.2f}x | "
                           f"{'yes' if cost <= TARGET_KERAS else 'no'} |")
            else:
                out.append(f"| {r['net']} b{r['batch']}: T steps well below T Keras passes | {cost:.2f}x | "
                           f"{'yes' if cost <= 0.5 else 'no'} |")
    cs = results.get("coldstart")
    if cs:
        hit = cs["hit"]
        out.append(f"| demo cold start to first step, warm cache: <= {TARGET_COLD:g} s, no TensorFlow | "
                   f"{hit['wall']:.2f} s, tensorflow imported: {hit['tensorflow']} | "
                   f"{'yes' if hit['wall'] <= TARGET_COLD and not hit['tensorflow'] else 'no'} |")
    return out


def markdown(results: dict, command: str) -> str:
    m = results["machine"]
    lines = [START, "## Engine speed", "",
             f"Measured with `{command}` (`make bench`), all engines in one process, interleaved rounds, "
             "best round each (the machine is shared; ratios between engines are what counts).", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, "
             f"TensorFlow {m.get('tensorflow', '?')}, Keras {m.get('keras', '?')}; {m['os']}; "
             f"load average at start {', '.join(f'{v:.1f}' for v in m['load'])}.", "",
             "Engines: **ours** = `Simulator` (IF, INIsim semantics; constant input; no recording): by "
             "default (thread pool on all cores, serial while the 1-minute load average exceeds the cores), "
             "forced serial, and forced onto all cores; **LIF** = Nengo LIF (`rate_scale` "
             "10); **numpy IF** = `benchmarks/numpy_if.py`, im2col + BLAS matmul, the same equations; "
             "**Keras** = T forward passes of the same Keras model at the same batch (eager call and "
             "`tf.function`), the dense bound. Weights and inputs are on a dyadic grid, so ours and numpy "
             "must produce identical spikes (column *same spikes*). Synaptic ops = spikes x fan-out "
             "(`workbench.engine.fanout`), counted from the run.", ""]
    if results["engines"]:
        lines += ["### Timesteps per second", "", *_engine_table(results["engines"]), "",
                  "### Which path ran", "", *_paths_table(results["engines"]), ""]
    cs = results.get("coldstart")
    if cs:
        lines += ["### Cold start (fresh process: open the saved demo network, first step)", "",
                  "| numba cache | wall | imports | open | first step | TensorFlow imported |", "|---|---:|---:|---:|---:|:-:|"]
        for k in ("hit", "miss"):
            r = cs[k]
            lines.append(f"| {k} | {r['wall']:.2f} s | {r['import']:.2f} s | {r['open']:.3f} s | {r['first_step']:.2f} s | "
                         f"{'yes' if r['tensorflow'] else 'no'} |")
        lines.append("")
    if results["memory"]:
        lines += ["### Peak memory (one subprocess per cell, 5 steps)", "",
                  "Peak RSS of the whole process (Python + numpy + numba, or + TensorFlow), and in brackets the "
                  "peak of array allocations during set-up and run (tracemalloc).", "",
                  "| network | batch | ours | numpy IF | Keras |", "|---|---:|---:|---:|---:|"]
        for r in results["memory"]:
            lines.append(f"| {r['net']} | {r['batch']} | {r['ours']['rss_mb']:.0f} MB ({r['ours']['traced_mb']:.1f} MB) | "
                         f"{r['numpy']['rss_mb']:.0f} MB ({r['numpy']['traced_mb']:.1f} MB) | {r['keras']['rss_mb']:.0f} MB |")
        lines.append("")
    if results["engines"] or cs:
        lines += ["### Targets", "", *_targets(results), ""]
    lines.append(END)
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace the engine section of ``path`` (or put it first); keep everything else."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if START in old and END in old:
        head, rest = old.split(START, 1)
        new = head + text + rest.split(END, 1)[1]
    elif old.startswith("# "):
        title, _, body = old.partition("\n")
        new = f"{title}\n\n{text}\n\n{body.lstrip()}"
    else:
        new = f"# Benchmarks\n\n{text}\n\n{old.lstrip()}"
    with atomic_path(path) as tmp:
        tmp.write_text(new)
