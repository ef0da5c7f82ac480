"""The stock ``keras.applications`` models: which import, at what (smallest allowed) input size.

Used by the zoo tests and by ``scripts/model_zoo.py``, which writes the table in
docs/models.md. Every model is built with ``weights=None`` (no download) at a small input:
the architecture, and so what imports, does not depend on the input size, and the big models
at their full 224-331 px size take minutes to build and run on a small machine.
"""

from __future__ import annotations

import numpy as np

# name -> smallest input side keras.applications accepts with weights=None
INPUT_SIDE = {"Xception": 71, "InceptionV3": 75, "InceptionResNetV2": 75}

# Families that are refused, and the reason in a few words (the importer's message says more).
REFUSED = {
    "EfficientNet": "silu activations and squeeze-and-excitation Multiply gates",
    "MobileNetV3": "hard_silu activations and squeeze-and-excitation Multiply gates",
    "ConvNeXt": "gelu, LayerNormalization, grouped (non-depthwise) convolutions and LayerScale",
}


def model_names() -> list[str]:
    """Every model class in ``keras.applications``, in alphabetical order."""
    from workbench.models.keras import import_keras

    apps = import_keras().applications
    return sorted(n for n in dir(apps) if n[:1].isupper() and callable(getattr(apps, n)))


def expected_refusal(name: str) -> str | None:
    """Why ``name`` is refused, or None when it imports."""
    return next((why for family, why in REFUSED.items() if name.startswith(family)), None)


def input_side(name: str) -> int:
    return INPUT_SIDE.get(name, 32)


def build(name: str):
    """``keras.applications.<name>(weights=None)`` at its smallest input, 1000 classes."""
    from workbench.models.keras import import_keras

    side = input_side(name)
    return getattr(import_keras().applications, name)(weights=None, input_shape=(side, side, 3))


def sample(model, n: int = 2, seed: int = 0) -> np.ndarray:
    """``n`` random inputs in [0, 1] of the model's input shape (float32)."""
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype(np.float32)
