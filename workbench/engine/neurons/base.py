"""What every neuron model provides, so the simulator can run any of them the same way.

A model is a frozen dataclass of its parameters (validated on construction, errors name the
field) plus:
- ``state_vars``: names of its per-neuron state arrays (``init_state`` makes them: float32 by
  default, as IF; float64 for Nengo's models (LIF, the Loihi-quantized rates, the spiking
  wrappers); int32 for LoihiCUBA), ``membrane_var`` the one that is recorded as "membrane
  potential";
- ``step(J, dt, state, spikes, rng)``: advance one timestep in place given the input current ``J``
  (flat array: float32 from the simulator, float64 with ``SimConfig(float64=True)``; Nengo's
  order is ``step(dt, J, output, **state)``, docs/neurons.md shows the mapping); writes the spike count of each neuron into ``spikes`` (float32; negative
  for signed models). Implemented by a ``numba.njit(nogil=True, cache=True)`` kernel;
- ``output_scale(dt)``: the value one spike carries to the next layer (rate units), so that the
  next layer's current is ``J = W @ (spikes * output_scale) + b``;
- ``rate(J, dt)``: the steady-state output (same units as ``spikes * output_scale / 1 step``
  averaged) for a constant current: the model's rate function for the ANN side;
- ``max_rate(dt)``: the highest output rate, in spikes per step, used to call a neuron saturated.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from workbench.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class NeuronModel:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    reference: ClassVar[str] = ""  # whose definition we follow: project, file, version
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    membrane_var: ClassVar[str] = "v"
    signed: ClassVar[bool] = False  # may emit negative spikes (not possible on most hardware)
    stochastic: ClassVar[bool] = False
    spiking: ClassVar[bool] = True  # False: passes values on instead of spikes (``current.Current``)
    default_dt: ClassVar[float] = 1.0

    # ---- validation helpers for subclasses ------------------------------------------------
    def _require(self, field: str, ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(field, message)

    def _finite(self, field: str) -> float:
        value = getattr(self, field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(field, f"must be a finite number, got {value!r}")
        return float(value)

    def validate_dt(self, dt: float) -> None:
        """Raise ConfigError('dt', ...) when dt does not suit this model (e.g. dt > tau)."""

    # ---- the interface -------------------------------------------------------------------
    def init_state(self, n: int) -> dict[str, np.ndarray]:
        return {name: np.zeros(n, dtype=np.float32) for name in self.state_vars}

    def step(self, J, dt, state, spikes, rng) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_scale(self, dt: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def rate(self, J: np.ndarray, dt: float) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def max_rate(self, dt: float) -> float:
        """Highest spike count per step (1 for models that fire at most once a step)."""
        return 1.0

    @property
    def membrane_threshold(self) -> float | None:
        """Where the membrane variable (``membrane_var``, in its own units) makes a spike, for
        the threshold line of membrane plots; None when it has no such level (a rate)."""
        return float(getattr(self, "threshold", 1.0))

    def params(self) -> dict:
        """Every parameter, for trace metadata and the settings form."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{self.name}({args})"
