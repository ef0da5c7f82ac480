"""What an importer hands the shared clean-up for a source layer that is not a ``Layer`` of its own.

Every importer (Keras, ONNX) lowers its format into a list of ``Layer`` records and ``Pending``
markers in topological order; ``graph.fold`` then removes the no-ops, folds BatchNorm and turns
what is left over into one refusal that names every unsupported layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Pending:
    """A source layer that is not a ``Layer`` of its own: ``role`` is noop, batchnorm or unsupported."""

    name: str
    role: str
    inbound: tuple
    type_name: str
    scale: np.ndarray | None = None  # batchnorm: y = x * scale + shift along the last axis
    shift: np.ndarray | None = None
    config: dict = field(default_factory=dict)
