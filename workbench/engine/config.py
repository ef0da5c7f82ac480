"""SimConfig: everything that decides what a run does, frozen and validated.

Validation raises ``ConfigError`` naming the field, so the window can mark the right input and
the CLI can print one clear line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType

from workbench.engine.neurons import IF, NeuronModel
from workbench.errors import ConfigError

ENCODERS = ("constant", "poisson", "recorded")
SOFTMAX_OUTPUTS = ("if", "sampled")
READOUTS = ("auto", "membrane", "spikes")
MAX_STEPS = 100_000_000
DEFAULT_MAX_RECORD_BYTES = 2 * 1024**3  # what a Simulator may allocate for its recording


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """How to run a network.

    - ``neuron``: the model used by every neuron layer; ``overrides`` maps layer name -> model.
    - ``encoder``: 'constant' (the input value as a constant current every step, INIsim) or
      'poisson' (a spike with probability clip(x, 0, 1) each step, value 1, seeded) or
      'recorded' (replays a recorded input spike train step by step: ``Simulator.set_input_spikes``,
      read from a trace by ``encoders.input_train``).
    - ``dt``: timestep; None takes the neuron model's default (1.0 for IF, 0.001 s for Nengo's).
    - ``steps``: the default run length; ``batch``: samples simulated together; ``seed``: RNG.
    - ``rate_scale``: NengoDL's ``scale_firing_rates``: every neuron layer's current is
      multiplied by it and each spike carries ``1/rate_scale`` of its usual value, so the
      network computes the same function at higher rates (needed for LIF, whose rate is 0 for
      J <= 1). Not defined for the integer Loihi model.
    - ``record``: layer names to record (None = every neuron layer), with ``record_membrane``
      and ``record_current`` choosing what besides spikes.
    - ``float64``: currents, outputs and float state in float64 instead of float32 (Nengo steps
      in float64: for an exact comparison). Generic path only.
    - ``synaptic_delay``: 0 (a layer sees the spikes its inputs made in the same step, INIsim)
      or 1 (the spikes of the previous step, as Lava's Dense delivers them). Generic path only.
    - ``softmax_output``: 'if' (a softmax layer runs the network's neuron model) or 'sampled'
      (SNN Toolbox INIsim: spikes drawn from softmax(membrane), ``neurons.SampledSoftmax``).
    - ``max_record_bytes``: the most memory the recording may take (estimated before a run from
      layers x recorded steps x batch); above it the Simulator refuses with ConfigError naming
      this field (record fewer layers or steps, or stream to HDF5). None: no limit.
    - ``readout``: how the output layer gives class scores: 'membrane' (no spikes: the
      accumulated current, i.e. the logits), 'spikes' (spike counts) or 'auto' (membrane for a
      linear or softmax output, else spikes).
    - ``auto_neurons``: each layer gets the neuron its activation calls for (tanh/sigmoid: the
      spiking wrapper; linear: signed; LIF and wrappers fitted to the rate units) — see
      ``engine.conversion``. Linear layers feeding linear layers carry current either way.
    - ``synapse``: time constant (seconds) of the synaptic low-pass filter the conversion plan
      puts on the input current of fitted LIF / Loihi LIF layers fed by spikes; None: the
      plan's default (``conversion.LIF_SYNAPSE``, 5 ms); 0: no filter.
    - ``rate_inversion``: the conversion plan replaces the current of a fitted LIF / Loihi LIF
      layer under a constant current by the one whose long-run rate is the ANN value (the
      inverse of its rate curve; ``neurons.lif.rate_invert``); False: the current as it is.
    """

    neuron: NeuronModel = dataclasses.field(default_factory=IF)
    overrides: Mapping[str, NeuronModel] = dataclasses.field(default_factory=dict)
    encoder: str = "constant"
    dt: float | None = None
    steps: int = 100
    batch: int = 1
    seed: int = 0
    rate_scale: float = 1.0
    record: tuple[str, ...] | None = None
    record_membrane: bool = True
    record_current: bool = False
    max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES
    readout: str = "auto"
    auto_neurons: bool = True
    float64: bool = False
    synaptic_delay: int = 0
    softmax_output: str = "if"
    synapse: float | None = None
    rate_inversion: bool = True

    def __post_init__(self):
        if not isinstance(self.neuron, NeuronModel):
            raise ConfigError("neuron", f"must be a neuron model, got {type(self.neuron).__name__}")
        for name, model in dict(self.overrides).items():
            if not isinstance(model, NeuronModel):
                raise ConfigError(f"overrides[{name}]", "must be a neuron model")
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))
        if self.encoder not in ENCODERS:
            raise ConfigError("encoder", f"must be one of {', '.join(ENCODERS)}, got '{self.encoder}'")
        if self.dt is not None:
            if isinstance(self.dt, bool) or not isinstance(self.dt, (int, float)) or not math.isfinite(self.dt) or self.dt <= 0:
                raise ConfigError("dt", f"must be a positive number, got {self.dt!r}")
            for model in [self.neuron, *self.overrides.values()]:
                model.validate_dt(float(self.dt))
        mrb = self.max_record_bytes
        if mrb is not None and (isinstance(mrb, bool) or not isinstance(mrb, int) or mrb < 1):
            raise ConfigError("max_record_bytes", f"must be a whole number of bytes >= 1 or None, got {mrb!r}")
        for field, lo, hi in (("steps", 1, MAX_STEPS), ("batch", 1, 1_000_000)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(field, f"must be a whole number from {lo} to {hi}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("seed", f"must be a whole number >= 0, got {self.seed!r}")
        rs = self.rate_scale
        if isinstance(rs, bool) or not isinstance(rs, (int, float)) or not math.isfinite(rs) or rs <= 0:
            raise ConfigError("rate_scale", f"must be a positive number, got {rs!r}")
        if rs != 1 and any(m.name == "loihi_cuba" for m in [self.neuron, *self.overrides.values()]):
            raise ConfigError("rate_scale", "must be 1 for the integer Loihi model (its units are chip units)")
        if self.readout not in READOUTS:
            raise ConfigError("readout", f"must be one of {', '.join(READOUTS)}, got '{self.readout}'")
        if self.record is not None:
            object.__setattr__(self, "record", tuple(self.record))
        if not isinstance(self.float64, bool):
            raise ConfigError("float64", f"must be true or false, got {self.float64!r}")
        if isinstance(self.synaptic_delay, bool) or self.synaptic_delay not in (0, 1):
            raise ConfigError("synaptic_delay", f"must be 0 or 1 (steps), got {self.synaptic_delay!r}")
        syn = self.synapse
        if syn is not None and (isinstance(syn, bool) or not isinstance(syn, (int, float))
                                or not math.isfinite(syn) or syn < 0):
            raise ConfigError("synapse", f"must be a time constant >= 0 in seconds (0: no filter), got {syn!r}")
        if not isinstance(self.rate_inversion, bool):
            raise ConfigError("rate_inversion", f"must be true or false, got {self.rate_inversion!r}")
        if self.softmax_output not in SOFTMAX_OUTPUTS:
            raise ConfigError("softmax_output", f"must be one of {', '.join(SOFTMAX_OUTPUTS)}, "
                              f"got {self.softmax_output!r}")

    @property
    def effective_dt(self) -> float:
        return float(self.dt) if self.dt is not None else float(self.neuron.default_dt)

    def model_for(self, layer_name: str) -> NeuronModel:
        return self.overrides.get(layer_name, self.neuron)

    def replace(self, **changes) -> "SimConfig":
        return dataclasses.replace(self, **changes)

    def check_against(self, network) -> None:
        """Layer names in overrides and record must exist in the network."""
        names = {layer.name for layer in network.layers}
        for field, wanted in (("overrides", self.overrides.keys()), ("record", self.record or ())):
            missing = [n for n in wanted if n not in names]
            if missing:
                raise ConfigError(field, f"no layer named {', '.join(map(repr, missing))} in network '{network.name}'")

    def metadata(self) -> dict:
        """Everything that decided the run, for trace files."""
        return {
            "neuron": {"name": self.neuron.name, "params": self.neuron.params()},
            "overrides": {k: {"name": m.name, "params": m.params()} for k, m in self.overrides.items()},
            "encoder": self.encoder,
            "dt": self.effective_dt,
            "seed": self.seed,
            "rate_scale": self.rate_scale,
            "batch": self.batch,
            "readout": self.readout,
            "auto_neurons": self.auto_neurons,
            "float64": self.float64,
            "synaptic_delay": self.synaptic_delay,
            "softmax_output": self.softmax_output,
            "synapse": self.synapse,
            "rate_inversion": self.rate_inversion,
        }
