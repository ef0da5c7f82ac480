"""Check the imported network's numpy forward pass against Keras itself, layer by layer.

A layer that absorbed BatchNormalization or an activation is compared with the last Keras layer
folded into it (``config['folded']``), the point where both compute the same thing. For a
normalized network our outputs are multiplied back by lambda; layers whose activation is not
scale-equivariant (softmax, tanh, sigmoid) are then skipped rather than reported as wrong.
Keras is only touched through ``models.keras``, which import it lazily.
``checks_against_reference`` is the comparison itself, for any reference (ONNX: onnxruntime's
activations from ``models.onnx.verify``).

A layer passes when its largest difference is within *both* tolerances: the absolute one
(``tol``, default 1e-4) and the relative one (``rtol`` times the layer's largest reference value,
default 1e-3). The relative bound is what catches a layer whose values are tiny (deep random
networks reach 1e-17, where any absolute tolerance passes anything); float32 rounding of a deep
network stays near 1e-6 of the layer's scale (docs/models.md lists each stock model's largest).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from workbench.models import network as nw
from workbench.models.forward import forward
from workbench.models.keras.graph import layer_names, layer_outputs

DEFAULT_TOL = 1e-4
DEFAULT_RTOL = 1e-3
_EQUIVARIANT = frozenset({"linear", "relu"})


@dataclass(frozen=True)
class LayerCheck:
    """One row of the comparison. ``max_abs_diff`` is None when the layer was skipped."""

    name: str
    keras_name: str
    kind: str
    shape: tuple
    max_abs_diff: float | None
    max_abs_ref: float
    tol: float
    note: str = ""
    rtol: float = DEFAULT_RTOL

    @property
    def rel_diff(self) -> float | None:
        """``max|diff| / max|reference|`` (0 when both are 0, inf when only the reference is 0)."""
        if self.max_abs_diff is None:
            return None
        if self.max_abs_ref > 0:
            return self.max_abs_diff / self.max_abs_ref
        return 0.0 if self.max_abs_diff == 0 else float("inf")

    @property
    def ok(self) -> bool:
        if self.max_abs_diff is None:
            return True
        return self.max_abs_diff <= self.tol and self.max_abs_diff <= self.rtol * self.max_abs_ref


def fused_point(layer: nw.Layer) -> str:
    """The Keras layer whose output this layer's output equals."""
    folded = layer.config.get("folded") or []
    return folded[-1] if folded else layer.name


def verify_against_keras(network: nw.Network, keras_model_or_path, x, tol: float = DEFAULT_TOL,
                         rtol: float = DEFAULT_RTOL) -> list[LayerCheck]:
    """Per-layer max |ours - Keras| on the batch ``x``; ``tol`` absolute, ``rtol`` relative to
    the layer's largest Keras value (both must hold)."""
    model = keras_model_or_path
    if isinstance(model, (str, os.PathLike)):
        from workbench.models.keras.importer import load_model_safely

        model = load_model_safely(model)
    names = [fused_point(layer) for layer in network.layers]
    present = set(layer_names(model))
    wanted = [n for n in names if n in present]
    ref = layer_outputs(model, wanted, x) if wanted else {}
    reference = {layer.name: (n, ref.get(n)) for layer, n in zip(network.layers, names)}
    return checks_against_reference(network, x, reference, tol, "Keras", rtol)


def checks_against_reference(network: nw.Network, x, reference: dict, tol: float = DEFAULT_TOL,
                             against: str = "Keras", rtol: float = DEFAULT_RTOL) -> list[LayerCheck]:
    """Per-layer max |ours - reference| on ``x``. ``reference`` maps each layer name to
    ``(reference name, activations or None)``, activations in our (channels-last) layout."""
    ours = forward(network, x)
    checks = []
    for layer in network.layers:
        ref_name, theirs = reference.get(layer.name, (layer.name, None))
        base = dict(name=layer.name, keras_name=ref_name, kind=layer.kind, shape=layer.output_shape, tol=tol, rtol=rtol)
        if theirs is None:
            checks.append(LayerCheck(**base, max_abs_diff=None, max_abs_ref=0.0, note=f"not in the {against} model"))
            continue
        mine, theirs = ours[layer.name].astype(np.float64), np.asarray(theirs, np.float64)
        if network.scales:
            if layer.activation not in _EQUIVARIANT:
                checks.append(LayerCheck(**base, max_abs_diff=None, max_abs_ref=float(np.abs(theirs).max(initial=0)),
                                         note=f"skipped: {layer.activation} is not scale-equivariant"))
                continue
            mine = mine * network.scales[layer.name]
        if mine.shape != theirs.shape:
            checks.append(LayerCheck(**base, max_abs_diff=float("inf"), max_abs_ref=0.0,
                                     note=f"shape {mine.shape[1:]} vs {against} {theirs.shape[1:]}"))
            continue
        diff = float(np.abs(mine - theirs).max(initial=0))
        checks.append(LayerCheck(**base, max_abs_diff=diff, max_abs_ref=float(np.abs(theirs).max(initial=0))))
    return checks


def format_checks(checks: list[LayerCheck], against: str = "Keras") -> str:
    """A fixed-width table, one row per layer, for the terminal."""
    head = ("layer", f"{against.lower()} layer", "kind", "shape", "max|diff|", f"max|{against.lower()}|", "rel", "")
    rows = [head]
    for c in checks:
        diff = "-" if c.max_abs_diff is None else f"{c.max_abs_diff:.3g}"
        rel = "-" if c.rel_diff is None else f"{c.rel_diff:.2g}"
        verdict = c.note or ("ok" if c.ok else f"FAIL (tol {c.tol:g}, rtol {c.rtol:g})")
        if c.note and not c.ok:
            verdict = f"FAIL: {c.note}"
        shape = "x".join(map(str, c.shape))
        rows.append((c.name, c.keras_name, c.kind, shape, diff, f"{c.max_abs_ref:.3g}", rel, verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def largest_rel_diff(checks: list[LayerCheck]) -> float:
    """The largest relative difference over the compared layers (0 when none was compared)."""
    return max((c.rel_diff for c in checks if c.rel_diff is not None), default=0.0)


def report_checks(checks: list[LayerCheck], n_samples: int, tol: float, against: str = "Keras",
                  rtol: float | None = None) -> tuple[bool, str]:
    """``(all layers within tol and rtol, table + one summary line)``."""
    rtol = checks[0].rtol if rtol is None and checks else DEFAULT_RTOL if rtol is None else rtol
    failed = [c.name for c in checks if not c.ok]
    compared = sum(c.max_abs_diff is not None for c in checks)
    bounds = f"{tol:g} absolute and {rtol:g} relative"
    summary = (f"OK: {compared} layers match {against} within {bounds} on {n_samples} samples "
               f"(largest relative difference {largest_rel_diff(checks):.2g})" if not failed
               else f"FAILED: {len(failed)} of {compared} layers differ from {against} by more than {bounds}: "
                    + ", ".join(failed))
    return not failed, format_checks(checks, against) + "\n" + summary


def verify_report(network: nw.Network, keras_model_or_path, x, tol: float = DEFAULT_TOL,
                  rtol: float = DEFAULT_RTOL) -> tuple[bool, str]:
    """``(all layers within tol and rtol, table + one summary line)`` for ``snn-workbench verify``."""
    return report_checks(verify_against_keras(network, keras_model_or_path, x, tol, rtol), len(x), tol, rtol=rtol)
