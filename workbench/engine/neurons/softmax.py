"""INIsim's softmax output layer: spikes drawn at random from softmax(membrane).

Definition followed: SNN Toolbox 0.6 (NeuromorphicProcessorProject/snn_toolbox),
``snntoolbox/simulation/backends/inisim/temporal_mean_rate_tensorflow.py``: ``SpikeLayer``'s
``get_new_mem``, ``softmax_activation`` and ``set_reset_mem`` for a layer whose activation is
softmax. Per step, for each sample (the softmax runs over the layer's neurons of one sample):

    v += dt * J                                  (as the IF neuron; float32, as INIsim)
    p  = softmax(v)
    spike where U <= p,  U ~ Uniform[0, 1) per neuron and step (seeded), value ``threshold``
    reset: v = 0 where it spiked (INIsim's softmax branch of ``set_reset_mem``; its
           "turn off reset" alternative is commented out in 0.6)

Several neurons of one sample may spike in the same step (independent draws). This is not a
threshold model: the spike count of a neuron follows its softmax probability, so the output's
argmax converges to the ANN's as the run gets longer. Not something to choose as the network's
neuron model: ``SimConfig(softmax_output='sampled')`` puts it on softmax layers. Runs the
generic path (the fused kernel does not know it). Random numbers come from the simulator's
``numpy.random.Generator`` (``Generator.random``, float64), not TensorFlow's: same seed, same
spikes here, but not INIsim's individual draws.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from workbench.engine.neurons.base import NeuronModel


@dataclasses.dataclass(frozen=True)
class SampledSoftmax(NeuronModel):
    """SNN Toolbox INIsim's softmax output: see the module docstring."""

    name: ClassVar[str] = "inisim_softmax"
    description: ClassVar[str] = (
        "SNN Toolbox INIsim's softmax output layer: v += dt*J, spike where U <= softmax(v) "
        "(U uniform, seeded), v = 0 where it spiked."
    )
    reference: ClassVar[str] = (
        "SNN Toolbox 0.6, snntoolbox/simulation/backends/inisim/temporal_mean_rate_tensorflow.py "
        "(softmax_activation, set_reset_mem)"
    )
    stochastic: ClassVar[bool] = True
    default_dt: ClassVar[float] = 1.0

    threshold: float = 1.0

    def __post_init__(self):
        self._require("threshold", self._finite("threshold") > 0, "must be > 0")

    @property
    def membrane_threshold(self) -> float | None:
        return None  # spikes come from softmax(v), not from a level

    def prepare_layer(self, ls) -> None:
        """Remember how many neurons one sample has (the softmax's extent)."""
        ls.state["group"] = np.array([int(np.prod(ls.shape[1:]))], dtype=np.int64)

    def step(self, J, dt, state, spikes, rng) -> None:
        v = state["v"]
        group = int(state["group"][0]) if "group" in state else v.size
        v += np.float32(dt) * J.astype(np.float32, copy=False)
        z = v.reshape(-1, group).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        fired = rng.random(v.size) <= p.reshape(-1)
        spikes[...] = fired
        v[fired] = 0.0

    def output_scale(self, dt: float) -> float:
        return self.threshold / dt

    def rate(self, J, dt: float) -> np.ndarray:
        """Expected output per step for a constant J: threshold/dt times the spike probability,
        which depends on the whole layer; as a per-neuron stand-in, J clipped like IF."""
        return np.clip(np.asarray(J, dtype=np.float32), 0.0, self.threshold / dt)
