"""The neuron models by name. ``make_neuron('if', threshold=1.0)`` builds one from settings."""

from __future__ import annotations

import dataclasses

from workbench.engine.neurons.base import NeuronModel
from workbench.engine.neurons.if_neuron import IF
from workbench.errors import ConfigError

MODELS: dict[str, type[NeuronModel]] = {IF.name: IF}


def register(cls: type[NeuronModel]) -> type[NeuronModel]:
    MODELS[cls.name] = cls
    return cls


def make_neuron(name: str, **params) -> NeuronModel:
    """Build a neuron model by name; unknown names and parameters raise ConfigError naming them."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ConfigError("neuron", f"unknown neuron type '{name}' (known: {', '.join(sorted(MODELS))})") from None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in params:
        if key not in fields:
            raise ConfigError(key, f"not a parameter of neuron '{name}' (parameters: {', '.join(fields) or 'none'})")
    return cls(**params)


__all__ = ["MODELS", "NeuronModel", "IF", "make_neuron", "register"]
