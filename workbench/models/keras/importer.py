"""Import a trained Keras model file (``.keras`` or legacy ``.h5``) as a framework-free ``Network``.

Keras and TensorFlow are imported inside ``load_keras`` only: importing them costs seconds, and
nothing else in the workbench needs them. Files are opened in Keras safe mode, so a model file
never runs code on load (a Lambda layer is refused, not executed). Every failure is a
``ModelImportError`` naming the file; unsupported layers are all listed in one
``UnsupportedLayerError``.

Beyond the kind-specific fields documented in ``network.py``, imported layers carry:
``config['folded']`` — the Keras layers (BatchNormalization, activations) merged into this one,
in order; ``config['removed']`` — inference no-ops (Dropout, ...) dropped after it; and ``config['input_scales']`` — ones, for avg-pool/global-avg-pool/
activation/add layers, which normalization later replaces.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from workbench.errors import ModelImportError, UnsupportedLayerError
from workbench.hdf5_check import check_hdf5, probe_hdf5
from workbench.models import network as nw
from workbench.models.graph.fold import fold
from workbench.models.keras import import_keras
from workbench.models.keras.convert import reasons, translate
from workbench.models.keras.graph import extract

FORMATS = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_file(path: Path) -> str:
    """The format of ``path``, after cheap checks that give a clear message for common mistakes."""
    label = path.name
    if not path.exists():
        raise ModelImportError(f"{label}: no such file ({path})")
    if not path.is_file():
        raise ModelImportError(f"{label}: not a file ({path})")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ModelImportError(f"{label}: expected a Keras model file ending in .keras or .h5")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelImportError(f"{label}: cannot read the file ({exc.strerror})") from None
    if fmt == "keras" and not zipfile.is_zipfile(path):
        raise ModelImportError(f"{label}: not a Keras 3 model archive (the file is not a zip; corrupt or truncated?)")
    if fmt == "h5" and head != _HDF5_SIGNATURE:
        raise ModelImportError(f"{label}: not an HDF5 file (corrupt or truncated?)")
    if fmt == "h5":
        problem = check_hdf5(path)  # libhdf5 can hang on a truncated file: refuse it first
        if problem:
            raise ModelImportError(f"{label}: {problem}")
    return fmt


def _model_config(path: Path):
    """The model's architecture as JSON data, read without Keras (None when unreadable)."""
    import json

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return json.loads(zf.read("config.json"))
        import h5py

        with h5py.File(path, "r") as fh:
            text = fh.attrs.get("model_config")
        return json.loads(text) if text is not None else None
    except (OSError, KeyError, ValueError):
        return None


def _lambda_layers(path: Path) -> list[str]:
    """Names of the Lambda layers in the file's model config, nested models included."""
    found = []

    def walk(obj):
        if isinstance(obj, dict):
            if obj.get("class_name") == "Lambda" and isinstance(obj.get("config"), dict):
                found.append(str(obj["config"].get("name", "?")))
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(_model_config(path))
    return found


def load_model_safely(path: str | os.PathLike):
    """The Keras model in ``path``, loaded with ``compile=False`` and ``safe_mode=True``."""
    path = Path(path)
    if _check_file(path) == "h5":
        problem = probe_hdf5(path)  # a corrupt .h5 can make libhdf5 loop forever
        if problem:
            raise ModelImportError(f"{path.name}: {problem}")
    keras = import_keras()

    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # the boundary to a third-party loader: any failure is the file's
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        lambdas = _lambda_layers(path)
        if lambdas or ("lambda" in str(exc).lower() and "safe" in str(exc).lower()):
            named = f" ({', '.join(repr(n) for n in lambdas)})" if lambdas else ""
            raise ModelImportError(
                f"{path.name}: refused: Lambda layer{named}: its Python code would run on load, and "
                "it has no spiking equivalent. Rebuild the model without Lambda layers."
            ) from None
        raise ModelImportError(f"{path.name}: Keras cannot load this model: {text}") from None


def _output_last(layers: list, output_name: str) -> list:
    """Folding keeps topological order; make sure the model output is the last layer."""
    out = [layer for layer in layers if layer.name == output_name]
    return [layer for layer in layers if layer.name != output_name] + out


def _check_input(node, label: str) -> None:
    """The input must be something we feed: an image (H, W, C) or (H, W), or a vector (N,),
    of floating-point values."""
    shape = tuple(node.output_shape)
    if not 1 <= len(shape) <= 3:
        raise ModelImportError(
            f"{label}: input '{node.name}' has shape {shape}; only images (H, W, C) or (H, W) "
            "and vectors (N,) can be fed"
        )
    dtype = node.config.get("dtype")
    if isinstance(dtype, dict):  # a serialized DTypePolicy
        dtype = dtype.get("config", {}).get("name", dtype.get("name"))
    if dtype is not None and not str(dtype).startswith(("float", "bfloat", "mixed")):
        raise ModelImportError(
            f"{label}: input '{node.name}' has dtype {dtype}; the workbench feeds float32 "
            "values (token ids, strings and booleans are not simulated)"
        )


def _nonfinite(arrays) -> int:
    return sum(int(np.count_nonzero(~np.isfinite(np.asarray(a, dtype=np.float64)))) for a in arrays)


def _check_finite_nodes(nodes, label: str) -> None:
    """Every Keras layer whose weights hold NaN or Inf, listed by name in one error."""
    bad = [(n.name, n.type_name, c) for n in nodes if n.weights and (c := _nonfinite(n.weights))]
    if bad:
        listing = ", ".join(f"'{name}' ({t}: {c} value(s))" for name, t, c in bad)
        raise ModelImportError(f"{label}: NaN or Inf weights in layer(s) {listing}")


def _check_finite_layers(layers, label: str) -> None:
    """After folding (a negative BatchNormalization variance becomes NaN here)."""
    bad = []
    for layer in layers:
        count = _nonfinite(a for a in (layer.weights, layer.bias) if a is not None)
        if count:
            folded = layer.config.get("folded", [])
            via = f", with folded {', '.join(map(repr, folded))}" if folded else ""
            bad.append(f"'{layer.name}' ({count} value(s){via})")
    if bad:
        raise ModelImportError(
            f"{label}: NaN or Inf weights after folding in layer(s) {', '.join(bad)} "
            "(a BatchNormalization with a negative moving variance?)"
        )


def network_from_keras(model, label: str, source: dict | None = None) -> nw.Network:
    """Convert an already loaded Keras model (exposed for tests and for in-memory models)."""
    nodes = extract(model, label)
    _check_input(next((n for n in nodes if n.type_name == "InputLayer"), nodes[0]), label)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        items, unsupported = fold([item for node in nodes for item in translate(node)])
    if unsupported:
        raise UnsupportedLayerError(label, unsupported, reasons(items))
    _check_finite_nodes(nodes, label)
    _check_finite_layers([i for i in items if isinstance(i, nw.Layer)], label)
    folded_into = {m: layer.name for layer in items
                   for m in layer.config.get("folded", []) + layer.config.get("removed", [])}
    output_name = folded_into.get(nodes[-1].name, nodes[-1].name)
    layers = _output_last(items, output_name)
    try:
        return nw.Network(model.name, layers, source=dict(source or {}))
    except ValueError as exc:
        raise ModelImportError(f"{label}: cannot build the network: {exc}") from None


def load_keras(path: str | os.PathLike) -> nw.Network:
    """Read a ``.keras`` or ``.h5`` model file as a ``Network`` (float32, Keras weight layout)."""
    path = Path(path)
    fmt = _check_file(path)
    model = load_model_safely(path)
    source = {"file": path.name, "sha256": nw.file_sha256(path), "format": fmt}
    return network_from_keras(model, path.name, source)
