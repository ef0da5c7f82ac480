"""The framework-free network: an ordered DAG of layer records over plain numpy arrays.

A ``Network`` is what every other part of the workbench reads: the engine simulates it, the
analysis compares against its ANN forward pass, the window lists its layers. It is saved as one
``.npz`` file holding a JSON header and float32 arrays (no pickle), so opening a saved network
never imports TensorFlow and never runs code from the file.

Layout conventions (same as Keras, channels-last):
- shapes are per sample, without the batch axis: ``(H, W, C)`` for images, ``(N,)`` for vectors;
- dense weights are ``(in, out)``; conv weights ``(kh, kw, cin, cout)``; depthwise weights
  ``(kh, kw, cin, multiplier)``;
- flattening is row-major over ``(H, W, C)`` (channels-last), as Keras' ``Flatten`` does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.errors import NetworkFileError
from workbench.models.shape_check import shape_problems
from workbench.models.layer import (  # noqa: F401  (re-exported: nw.DENSE, nw.Layer, ...)
    INPUT,
    DENSE,
    CONV2D,
    DEPTHWISE_CONV2D,
    AVG_POOL2D,
    GLOBAL_AVG_POOL2D,
    MAX_POOL2D,
    FLATTEN,
    RESHAPE,
    ZERO_PAD2D,
    ADD,
    CONCATENATE,
    ACTIVATION,
    NEURON_KINDS,
    WEIGHTED_KINDS,
    ALL_KINDS,
    ACTIVATIONS,
    Layer,
)

SCHEMA = "snn-workbench.network/1"

@dataclass
class Network:
    """An ordered DAG of layers (topological order; the first is the input, the last the output).

    ``scales`` holds the per-layer normalization factors (lambda) when the network was
    normalized, and ``normalization`` how they were obtained; both are empty otherwise.
    """

    name: str
    layers: list[Layer]
    scales: dict[str, float] = field(default_factory=dict)
    normalization: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)  # file name and sha256 of the model it came from

    def __post_init__(self):
        seen = set()
        for layer in self.layers:
            if layer.name in seen:
                raise ValueError(f"duplicate layer name '{layer.name}'")
            for src in layer.inbound:
                if src not in seen:
                    raise ValueError(f"layer '{layer.name}': inbound '{src}' is not an earlier layer")
            seen.add(layer.name)
        if not self.layers or self.layers[0].kind != INPUT:
            raise ValueError("a network starts with exactly one input layer")

    # ---- lookups -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def index(self, name: str) -> int:
        for i, layer in enumerate(self.layers):
            if layer.name == name:
                return i
        raise KeyError(name)

    @property
    def input_layer(self) -> Layer:
        return self.layers[0]

    @property
    def output_layer(self) -> Layer:
        return self.layers[-1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.layers[0].output_shape

    @property
    def neuron_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.is_neuron_layer]

    def consumers(self, name: str) -> list[Layer]:
        return [layer for layer in self.layers if name in layer.inbound]

    def copy(self, arrays: bool = True) -> "Network":
        """A deep copy: arrays copied, so normalizing the copy never touches the original.
        ``arrays=False`` shares the weight and bias arrays (for a caller that replaces them
        instead of changing them in place, as ``normalize`` does)."""
        layers = [
            dataclasses.replace(
                layer,
                weights=layer.weights if layer.weights is None or not arrays else layer.weights.copy(),
                bias=layer.bias if layer.bias is None or not arrays else layer.bias.copy(),
                activation_params=dict(layer.activation_params),
                config=json.loads(json.dumps(layer.config)),
            )
            for layer in self.layers
        ]
        return Network(self.name, layers, dict(self.scales), dict(self.normalization), dict(self.source))

    def fingerprint(self) -> str:
        """sha256 over structure and parameters: names a network exactly in trace metadata."""
        h = hashlib.sha256(json.dumps(self._header(), sort_keys=True).encode())
        for layer in self.layers:
            for arr in (layer.weights, layer.bias):
                if arr is not None:
                    h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    # ---- persistence ---------------------------------------------------------------------
    def _header(self) -> dict:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "scales": self.scales,
            "normalization": self.normalization,
            "source": self.source,
            "layers": [
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "output_shape": list(layer.output_shape),
                    "inbound": list(layer.inbound),
                    "activation": layer.activation,
                    "activation_params": layer.activation_params,
                    "config": layer.config,
                    "source_type": layer.source_type,
                    "has_weights": layer.weights is not None,
                    "has_bias": layer.bias is not None,
                }
                for layer in self.layers
            ],
        }

    def save(self, path: str | Path) -> None:
        """Write atomically: a temporary file is renamed over ``path`` only once complete."""
        from workbench.atomic import atomic_path

        arrays = {"header": np.frombuffer(json.dumps(self._header()).encode(), dtype=np.uint8)}
        for i, layer in enumerate(self.layers):
            if layer.weights is not None:
                arrays[f"w{i}"] = layer.weights
            if layer.bias is not None:
                arrays[f"b{i}"] = layer.bias
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Network":
        path = Path(path)
        if path.is_file() and not zipfile.is_zipfile(path):
            raise NetworkFileError(f"{path}: not a saved network (not an .npz archive; corrupt or truncated?)")
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
                arrays = {k: data[k] for k in data.files if k != "header"}
        except FileNotFoundError:
            raise NetworkFileError(f"{path}: no such file") from None
        except (OSError, ValueError, KeyError, UnicodeDecodeError, EOFError, zipfile.BadZipFile,
                NotImplementedError, RuntimeError, SyntaxError, tokenize.TokenError, zlib.error) as exc:
            # numpy and zipfile report a corrupt archive or .npy header with any of these
            raise NetworkFileError(f"{path}: not a saved network ({exc})") from None
        if not isinstance(header, dict) or header.get("schema") != SCHEMA:
            raise NetworkFileError(f"{path}: schema is not '{SCHEMA}'")
        try:
            layers = []
            for i, rec in enumerate(header["layers"]):
                layers.append(
                    Layer(
                        name=rec["name"],
                        kind=rec["kind"],
                        output_shape=tuple(rec["output_shape"]),
                        inbound=tuple(rec["inbound"]),
                        weights=arrays[f"w{i}"] if rec["has_weights"] else None,
                        bias=arrays[f"b{i}"] if rec["has_bias"] else None,
                        activation=rec["activation"],
                        activation_params=rec["activation_params"],
                        config=rec["config"],
                        source_type=rec.get("source_type", ""),
                    )
                )
            network = cls(
                header["name"],
                layers,
                {k: float(v) for k, v in header.get("scales", {}).items()},
                header.get("normalization", {}),
                header.get("source", {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise NetworkFileError(f"{path}: malformed network header ({exc!r})") from None
        bad = network.nonfinite()
        if bad:
            raise NetworkFileError(f"{path}: NaN or Inf values in {', '.join(bad)}")
        problems = shape_problems(network)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise NetworkFileError(f"{path}: {problems[0]}{more}")
        return network

    def nonfinite(self) -> list[str]:
        """What holds NaN or Inf: "layer 'x' weights", "scale of 'y'" (empty when all is finite)."""
        bad = []
        for layer in self.layers:
            for what, arr in (("weights", layer.weights), ("bias", layer.bias)):
                if arr is not None and not np.isfinite(arr).all():
                    bad.append(f"layer '{layer.name}' {what}")
        bad += [f"scale of '{k}'" for k, v in self.scales.items() if not np.isfinite(v)]
        return bad


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
