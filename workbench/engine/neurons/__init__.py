"""The neuron models by name. ``make_neuron('if', threshold=1.0)`` builds one from settings;
``parse_params('lif', ['tau_rc=0.01'])`` turns command-line ``key=value`` strings into them.

See docs/neurons.md for each model's equations and whose definition it follows.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing

from workbench.engine.neurons.base import NeuronModel
from workbench.engine.neurons.current import Current, SignedIF
from workbench.engine.neurons.if_neuron import IF
from workbench.engine.neurons.lif import LIF
from workbench.engine.neurons.loihi import LoihiLIF, LoihiReLU
from workbench.engine.neurons.loihi_cuba import LoihiCUBA
from workbench.engine.neurons.softmax import SampledSoftmax
from workbench.engine.neurons.spiking import PoissonSpiking, RegularSpiking, SpikingRectifiedLinear, StochasticSpiking
from workbench.errors import ConfigError

MODELS: dict[str, type[NeuronModel]] = {
    cls.name: cls
    for cls in (IF, SignedIF, Current, LIF, LoihiLIF, LoihiReLU, LoihiCUBA, RegularSpiking, StochasticSpiking, PoissonSpiking,
                SpikingRectifiedLinear)
}


def register(cls: type[NeuronModel]) -> type[NeuronModel]:
    MODELS[cls.name] = cls
    return cls


def _model_class(name: str) -> type[NeuronModel]:
    try:
        return MODELS[name] if name in MODELS else EXTRA_MODELS[name]
    except KeyError:
        raise ConfigError("neuron", f"unknown neuron type '{name}' (known: {', '.join(sorted(MODELS))})") from None


def make_neuron(name: str, **params) -> NeuronModel:
    """Build a neuron model by name; unknown names and parameters raise ConfigError naming them."""
    cls = _model_class(name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in params:
        if key not in fields:
            raise ConfigError(key, f"not a parameter of neuron '{name}' (parameters: {', '.join(fields) or 'none'})")
    return cls(**params)


# Not a choice for a whole network (it needs the softmax's extent): SimConfig.softmax_output puts
# it on softmax layers. Listed here so that it can be looked up by name (traces, overrides).
EXTRA_MODELS: dict[str, type[NeuronModel]] = {SampledSoftmax.name: SampledSoftmax}


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(key: str, text: str, kind) -> object:
    """One string to the field's type: int, float, bool, str, or an optional of one of those."""
    args = typing.get_args(kind)
    if type(None) in args and (typing.get_origin(kind) in (typing.Union, types.UnionType)):
        if text.strip().lower() in ("none", ""):
            return None
        kind = next(a for a in args if a is not type(None))
    text = text.strip()
    try:
        if kind is bool:
            low = text.lower()
            if low not in _TRUE | _FALSE:
                raise ValueError
            return low in _TRUE
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        raise ConfigError(key, f"expected {'a whole number' if kind is int else 'true/false' if kind is bool else 'a finite number'}, got '{text}'") from None
    return text


def parse_params(name: str, items) -> dict:
    """``["key=value", ...]`` -> ``{key: value}`` converted to the model's field types.
    Unknown keys, missing '=', duplicates and unconvertible values raise ConfigError naming the key."""
    cls = _model_class(name)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    out: dict = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("param", f"expected key=value, got '{item}'")
        if key not in fields:
            raise ConfigError(key, f"not a parameter of neuron '{name}' (parameters: {', '.join(sorted(fields)) or 'none'})")
        if key in out:
            raise ConfigError(key, "given more than once")
        out[key] = _convert(key, text, hints[key])
    return out


__all__ = [
    "MODELS", "NeuronModel", "IF", "SignedIF", "Current", "LIF", "LoihiLIF", "LoihiReLU", "LoihiCUBA", "RegularSpiking",
    "StochasticSpiking", "PoissonSpiking", "SpikingRectifiedLinear", "SampledSoftmax", "EXTRA_MODELS", "make_neuron", "parse_params", "register",
]
