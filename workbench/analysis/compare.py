"""Compare two traces (ours or an external implementation's) and find where they first diverge.

Layers are aligned by name, or by an explicit mapping {name in A: name in B}; timesteps by their
step numbers (the steps both traces hold). A cell differs when its spike counts differ, or when
both sides recorded membranes and ``|ma - mb| > membrane_atol + membrane_rtol * |mb|`` (NaN on
one side differs). The first divergence is the earliest step; within a step, the earliest layer
in A's order (topological for our traces), then sample, then neuron (row-major, channels-last).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from workbench.engine.trace import Trace
from workbench.errors import TraceFileError

_CHUNK_CELLS = 1 << 22  # cells per block when scanning long traces


@dataclasses.dataclass(frozen=True)
class Divergence:
    step: int
    layer: str  # name in A
    layer_b: str  # name in B
    sample: int
    neuron: int  # flat row-major index
    coords: tuple[int, ...]
    field: str  # 'spikes' or 'membrane' (what differed; spikes win when both do)
    spike_a: int
    spike_b: int
    membrane_a: float | None = None
    membrane_b: float | None = None
    membrane_before_a: float | None = None  # after the previous step (0 before step 1)
    membrane_before_b: float | None = None
    current_a: float | None = None
    current_b: float | None = None


@dataclasses.dataclass(frozen=True)
class LayerComparison:
    layer: str
    layer_b: str
    shape: tuple[int, ...]
    spike_mismatches: int  # cells (step, sample, neuron) whose spike counts differ
    spikes_a: int  # total |spikes| over compared steps
    spikes_b: int
    membrane_compared: bool
    membrane_mismatches: int = 0
    membrane_max_abs_diff: float = 0.0
    membrane_max_abs_diff_by_step: tuple[float, ...] = ()
    first_step: int | None = None  # first step with any mismatch in this layer

    @property
    def equal(self) -> bool:
        return self.spike_mismatches == 0 and self.membrane_mismatches == 0


@dataclasses.dataclass(frozen=True)
class Comparison:
    source_a: str
    source_b: str
    layers: tuple[LayerComparison, ...]
    first: Divergence | None
    first_spike: Divergence | None
    steps: tuple[int, int, int]  # first, last, count of the compared steps
    only_a: tuple[str, ...] = ()
    only_b: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    membrane_atol: float = 1e-5
    membrane_rtol: float = 0.0

    @property
    def equal(self) -> bool:
        return all(lc.equal for lc in self.layers)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["equal"] = self.equal
        return _clean(d)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _clean(obj):
    """JSON-safe: tuples to lists, non-finite floats to strings."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def _align_layers(a: Trace, b: Trace, mapping, names):
    if mapping:
        pairs = []
        for la, lb in dict(mapping).items():
            if la not in a.layers:
                raise TraceFileError(f"{names[0]}: field 'layers': no layer '{la}' (mapping {la}={lb}); "
                                     f"it has {', '.join(a.layers) or 'none'}")
            if lb not in b.layers:
                raise TraceFileError(f"{names[1]}: field 'layers': no layer '{lb}' (mapping {la}={lb}); "
                                     f"it has {', '.join(b.layers) or 'none'}")
            pairs.append((la, lb))
        order = {n: i for i, n in enumerate(a.layers)}
        pairs.sort(key=lambda p: order[p[0]])
    else:
        pairs = [(n, n) for n in a.layers if n in b.layers]
    used_a = {p[0] for p in pairs}
    used_b = {p[1] for p in pairs}
    if not pairs:
        raise TraceFileError(f"{names[0]}, {names[1]}: field 'layers': no layer in common "
                             f"(A: {', '.join(a.layers) or 'none'}; B: {', '.join(b.layers) or 'none'}); "
                             "give a mapping A=B")
    return pairs, tuple(n for n in a.layers if n not in used_a), tuple(n for n in b.layers if n not in used_b)


def compare_traces(a: Trace, b: Trace, mapping: dict | None = None, membrane_atol: float = 1e-5,
                   membrane_rtol: float = 0.0, names: tuple[str, str] = ("A", "B")) -> Comparison:
    """Compare ``a`` with ``b``. ``names`` label the two sides in messages (file names).
    Raises TraceFileError when they cannot be compared (no common layers or steps, batch or
    layer sizes that differ)."""
    if not (membrane_atol >= 0 and membrane_rtol >= 0):
        raise ValueError("membrane tolerances must be >= 0")
    pairs, only_a, only_b = _align_layers(a, b, mapping, names)
    notes = []
    if a.batch != b.batch:
        raise TraceFileError(f"{names[1]}: field 'batch': {b.batch} samples, {names[0]} has {a.batch}")
    common, ia, ib = np.intersect1d(a.steps, b.steps, assume_unique=False, return_indices=True)
    if common.size == 0:
        raise TraceFileError(f"{names[0]}, {names[1]}: field 'steps': no timestep in common "
                             f"(A {_span(a.steps)}, B {_span(b.steps)})")
    if common.size != a.n_steps or common.size != b.n_steps:
        notes.append(f"compared the {common.size} steps both hold ({_span(common)}); A has {_span(a.steps)}, "
                     f"B has {_span(b.steps)}")
    layer_results, firsts = [], []
    for rank, (la, lb) in enumerate(pairs):
        ta, tb = a.layers[la], b.layers[lb]
        if ta.shape != tb.shape:
            if int(np.prod(ta.shape)) != int(np.prod(tb.shape)):
                raise TraceFileError(f"{names[1]}: field '{lb}.spikes': layer shape {tb.shape} does not fit "
                                     f"'{la}' {ta.shape} in {names[0]}")
            notes.append(f"layer '{la}': shapes {ta.shape} and {tb.shape} differ; compared flattened row-major")
        lc, first = _compare_layer(ta, tb, ia, ib, common, membrane_atol, membrane_rtol)
        if (ta.membrane is None) != (tb.membrane is None):
            notes.append(f"layer '{la}': membrane recorded on one side only; compared spikes only")
        layer_results.append(lc)
        if first is not None:
            firsts.append((first[0], rank, first, ta, tb))
    first = first_spike = None
    if firsts:
        firsts.sort(key=lambda f: (f[0], f[1]))
        _, _, (t_i, s_i, n_i, spike_diff), ta, tb = firsts[0]
        first = _divergence(ta, tb, ia, ib, t_i, s_i, n_i, "spikes" if spike_diff else "membrane",
                            common, a.steps, b.steps)
        spike_firsts = []
        for _, rank, _, ta, tb in firsts:
            pos = _first_spike_mismatch(ta, tb, ia, ib)
            if pos is not None:
                spike_firsts.append((pos[0], rank, pos, ta, tb))
        if spike_firsts:
            spike_firsts.sort(key=lambda f: (f[0], f[1]))
            _, _, (t_i, s_i, n_i), ta, tb = spike_firsts[0]
            first_spike = _divergence(ta, tb, ia, ib, t_i, s_i, n_i, "spikes", common, a.steps, b.steps)
    return Comparison(
        names[0], names[1], tuple(layer_results), first, first_spike,
        (int(common[0]), int(common[-1]), int(common.size)), only_a, only_b, tuple(notes),
        float(membrane_atol), float(membrane_rtol),
    )


def _span(steps) -> str:
    steps = np.asarray(steps)
    return "no steps" if steps.size == 0 else f"steps {int(steps[0])}..{int(steps[-1])}"


def _blocks(T, cells_per_step):
    step = max(1, _CHUNK_CELLS // max(cells_per_step, 1))
    for t0 in range(0, T, step):
        yield t0, min(T, t0 + step)


def _compare_layer(ta, tb, ia, ib, common, atol, rtol):
    """Counts and the first mismatch (t index, sample, neuron, spike_differs) of one layer pair."""
    sa, sb = ta.flat("spikes"), tb.flat("spikes")
    use_mem = ta.membrane is not None and tb.membrane is not None
    ma = ta.flat("membrane") if use_mem else None
    mb = tb.flat("membrane") if use_mem else None
    T = common.size
    spike_mis = mem_mis = 0
    max_by_step = np.zeros(T, dtype=np.float64) if use_mem else None
    first = None
    for t0, t1 in _blocks(T, sa.shape[1] * sa.shape[2]):
        xa, xb = sa[ia[t0:t1]], sb[ib[t0:t1]]
        sdiff = xa != xb
        bad = sdiff
        spike_mis += int(sdiff.sum())
        if use_mem:
            va = ma[ia[t0:t1]].astype(np.float64)
            vb = mb[ib[t0:t1]].astype(np.float64)
            with np.errstate(invalid="ignore"):
                d = np.abs(va - vb)
                nan_one = np.isnan(va) != np.isnan(vb)
                mdiff = (d > atol + rtol * np.abs(vb)) | nan_one
                d = np.where(nan_one, np.inf, np.nan_to_num(d, nan=0.0))
            max_by_step[t0:t1] = d.reshape(t1 - t0, -1).max(axis=1, initial=0.0)
            mem_mis += int(mdiff.sum())
            bad = sdiff | mdiff
        if first is None and bad.any():
            t_rel, s, n = np.unravel_index(int(np.argmax(bad.reshape(-1))), bad.shape)
            first = (t0 + int(t_rel), int(s), int(n), bool(sdiff[t_rel, s, n]))
    lc = LayerComparison(
        ta.name, tb.name, ta.shape, spike_mis,
        int(np.abs(sa[ia]).sum(dtype=np.int64)), int(np.abs(sb[ib]).sum(dtype=np.int64)), use_mem,
        mem_mis,
        float(max_by_step.max(initial=0.0)) if use_mem else 0.0,
        tuple(float(v) for v in max_by_step) if use_mem else (),
        None if first is None else int(common[first[0]]),
    )
    return lc, first


def _first_spike_mismatch(ta, tb, ia, ib):
    sa, sb = ta.flat("spikes"), tb.flat("spikes")
    for t0, t1 in _blocks(ia.size, sa.shape[1] * sa.shape[2]):
        bad = sa[ia[t0:t1]] != sb[ib[t0:t1]]
        if bad.any():
            t_rel, s, n = np.unravel_index(int(np.argmax(bad.reshape(-1))), bad.shape)
            return t0 + int(t_rel), int(s), int(n)
    return None


def _divergence(ta, tb, ia, ib, t_i, s, n, field, common, steps_a, steps_b) -> Divergence:
    def val(lt, idx, arr_name, t):
        if getattr(lt, arr_name) is None:
            return None
        return float(lt.flat(arr_name)[idx[t], s, n])

    step = int(common[t_i])

    def before(lt, idx, steps):
        """Membrane after step-1 on that side: 0 before step 1, None when not recorded."""
        if lt.membrane is None:
            return None
        if step == 1:
            return 0.0
        row = int(idx[t_i]) - 1
        if row < 0 or int(steps[row]) != step - 1:
            return None
        return float(lt.flat("membrane")[row, s, n])

    coords = tuple(int(c) for c in np.unravel_index(n, ta.shape))
    return Divergence(
        step=step, layer=ta.name, layer_b=tb.name, sample=s, neuron=n, coords=coords,
        field=field,
        spike_a=int(ta.flat("spikes")[ia[t_i], s, n]), spike_b=int(tb.flat("spikes")[ib[t_i], s, n]),
        membrane_a=val(ta, ia, "membrane", t_i), membrane_b=val(tb, ib, "membrane", t_i),
        membrane_before_a=before(ta, ia, steps_a), membrane_before_b=before(tb, ib, steps_b),
        current_a=val(ta, ia, "current", t_i), current_b=val(tb, ib, "current", t_i),
    )




def _num(v) -> str:
    return "-" if v is None else f"{v:.9g}"


def format_comparison(c: Comparison, max_layers: int | None = None) -> str:
    """A human-readable report: verdict, first divergence, then one line per layer."""
    lines = [f"A: {c.source_a}", f"B: {c.source_b}",
             f"steps {c.steps[0]}..{c.steps[1]} ({c.steps[2]} compared), membrane tolerance "
             f"atol={c.membrane_atol:g} rtol={c.membrane_rtol:g}"]
    lines += [f"note: {n}" for n in c.notes]
    if c.only_a:
        lines.append(f"only in A (not compared): {', '.join(c.only_a)}")
    if c.only_b:
        lines.append(f"only in B (not compared): {', '.join(c.only_b)}")
    if c.equal:
        lines.append("EQUAL: spikes identical" + (", membranes within tolerance" if any(
            lc.membrane_compared for lc in c.layers) else ""))
    for title, d in (("FIRST DIVERGENCE", c.first), ("first spike difference", c.first_spike)):
        if d is None or (title != "FIRST DIVERGENCE" and d == c.first):
            continue
        name = d.layer if d.layer == d.layer_b else f"{d.layer} (B: {d.layer_b})"
        lines.append(f"{title} ({d.field}): step {d.step}, layer {name}, sample {d.sample}, "
                     f"neuron {d.neuron} at {tuple(d.coords)}")
        lines.append(f"  spikes      A={d.spike_a}  B={d.spike_b}")
        lines.append(f"  membrane    A={_num(d.membrane_a)}  B={_num(d.membrane_b)}")
        lines.append(f"  before step A={_num(d.membrane_before_a)}  B={_num(d.membrane_before_b)}")
        if d.current_a is not None or d.current_b is not None:
            lines.append(f"  current     A={_num(d.current_a)}  B={_num(d.current_b)}")
    lines.append(f"{'layer':<20} {'shape':<14} {'spike diffs':>11} {'spikes A':>9} {'spikes B':>9} "
                 f"{'mem diffs':>9} {'max|dv|':>10} {'first':>6}")
    shown = c.layers if max_layers is None else c.layers[:max_layers]
    for lc in shown:
        name = lc.layer if lc.layer == lc.layer_b else f"{lc.layer}={lc.layer_b}"
        mem = (f"{lc.membrane_mismatches:>9} {lc.membrane_max_abs_diff:>10.3g}" if lc.membrane_compared
               else f"{'-':>9} {'-':>10}")
        first = "-" if lc.first_step is None else str(lc.first_step)
        lines.append(f"{name:<20} {'x'.join(map(str, lc.shape)):<14} {lc.spike_mismatches:>11} "
                     f"{lc.spikes_a:>9} {lc.spikes_b:>9} {mem} {first:>6}")
    if len(shown) < len(c.layers):
        lines.append(f"... {len(c.layers) - len(shown)} more layers")
    lines.append("verdict: " + ("equal" if c.equal else "DIFFER"))
    return "\n".join(lines)
