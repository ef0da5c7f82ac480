"""Build every keras.applications model, import it, verify it and step its SNN; write the table.

    PYTHONPATH=. python scripts/model_zoo.py            # all models, rewrites docs/models.md
    PYTHONPATH=. python scripts/model_zoo.py VGG16 ...  # some models, printed only
    PYTHONPATH=. python scripts/model_zoo.py --update VGG16 ...  # and their rows replaced in the doc

Each model is built with weights=None at its smallest allowed input (workbench.models.keras.zoo),
imported, verified per layer against Keras on 2 random inputs (largest relative difference over
the layers), normalized on those inputs and stepped at batch 1 (IF neurons): steps/s is the
median of 3 timings of 5 steps after one warm-up step.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "models.md"
BEGIN, END = "<!-- zoo table: begin (scripts/model_zoo.py) -->", "<!-- zoo table: end -->"


def row(name: str) -> dict:
    from workbench.engine.config import SimConfig
    from workbench.engine.simulator import Simulator
    from workbench.errors import UnsupportedLayerError
    from workbench.models.keras import zoo
    from workbench.models.keras.importer import network_from_keras
    from workbench.models.normalize import normalize
    from workbench.models.verify import largest_rel_diff, verify_against_keras

    side = zoo.input_side(name)
    t0 = time.perf_counter()
    model = zoo.build(name)
    out = {"name": name, "input": side}
    try:
        net = network_from_keras(model, name)
    except UnsupportedLayerError as exc:
        families = sorted({t.split(" ")[0] for _, t in exc.layers})
        out["refused"] = (zoo.expected_refusal(name) or ", ".join(families))
        out["refused_layers"] = len(exc.layers)
        return out
    x = zoo.sample(model)
    checks = verify_against_keras(net, model, x)
    out.update(layers=len(net.layers), neurons=sum(l.size for l in net.neuron_layers),
               rel=largest_rel_diff(checks), ok=all(c.ok for c in checks))
    snn = normalize(net, x, 99.9)
    sim = Simulator(snn, SimConfig(batch=1), x[:1])
    sim.run(1)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        sim.run(5)
        times.append((time.perf_counter() - t) / 5)
    out["steps_s"] = 1 / sorted(times)[1]
    out["seconds"] = time.perf_counter() - t0
    return out


def format_row(r: dict) -> str:
    size = f"{r['input']}x{r['input']}"
    if "refused" in r:
        return f"| {r['name']} | {size} | refused: {r['refused']} | - | - | - | - |"
    verdict = "imports, verifies" if r["ok"] else "imports, **verify fails**"
    return (f"| {r['name']} | {size} | {verdict} | {r['neurons']:,} | {r['layers']} | "
            f"{r['rel']:.1e} | {r['steps_s']:.1f} |")


HEAD = ("| model | input | result | neurons | layers | verify: largest rel. diff | steps/s (batch 1) |\n"
        "|---|---|---|---|---|---|---|")


def main(argv: list[str]) -> int:
    from workbench.models.keras import zoo

    update = "--update" in argv
    argv = [a for a in argv if a != "--update"]
    names = argv or zoo.model_names()
    lines = []
    for name in names:
        r = row(name)
        lines.append(format_row(r))
        print(lines[-1], f"({r.get('seconds', 0):.0f} s)" if "seconds" in r else "", flush=True)
    if not argv:
        table = HEAD + "\n" + "\n".join(lines)
        text = DOC.read_text()
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{table}\n{END}", text, flags=re.DOTALL)
        DOC.write_text(text)
        print(f"wrote {DOC}")
    elif update:
        text = DOC.read_text()
        for name, line in zip(names, lines):
            text = re.sub(rf"^\| {re.escape(name)} \|.*$", line.replace("\\", "\\\\"), text, flags=re.MULTILINE)
        DOC.write_text(text)
        print(f"updated {len(lines)} row(s) of {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
