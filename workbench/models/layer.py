"""One layer record of the framework-free graph, and the layer kinds and activations it may hold.

Split from ``network.py`` so that the shape rules (``shape_check``) can read layers without
importing the ``Network`` that calls them. ``network`` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Layer kinds. "Neuron" kinds hold spiking neurons in the SNN; the others move spikes around.
INPUT = "input"
DENSE = "dense"
CONV2D = "conv2d"
DEPTHWISE_CONV2D = "depthwise_conv2d"
AVG_POOL2D = "avg_pool2d"
GLOBAL_AVG_POOL2D = "global_avg_pool2d"
MAX_POOL2D = "max_pool2d"
FLATTEN = "flatten"
RESHAPE = "reshape"
ZERO_PAD2D = "zero_pad2d"
ADD = "add"
CONCATENATE = "concatenate"
ACTIVATION = "activation"  # a standalone activation that could not be folded into its producer

NEURON_KINDS = frozenset(
    {DENSE, CONV2D, DEPTHWISE_CONV2D, AVG_POOL2D, GLOBAL_AVG_POOL2D, ADD, ACTIVATION}
)
WEIGHTED_KINDS = frozenset({DENSE, CONV2D, DEPTHWISE_CONV2D})
ALL_KINDS = frozenset(
    {INPUT, MAX_POOL2D, FLATTEN, RESHAPE, ZERO_PAD2D, CONCATENATE} | NEURON_KINDS
)
ACTIVATIONS = frozenset({"linear", "relu", "softmax", "tanh", "sigmoid"})


@dataclass
class Layer:
    """One node of the graph. ``config`` holds kind-specific settings (strides, padding, ...)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    inbound: tuple[str, ...] = ()
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    activation: str = "linear"
    activation_params: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    source_type: str = ""  # the Keras class name it came from, for messages and the UI

    def __post_init__(self):
        if self.kind not in ALL_KINDS:
            raise ValueError(f"layer '{self.name}': unknown kind '{self.kind}'")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"layer '{self.name}': unknown activation '{self.activation}'")
        self.output_shape = tuple(int(d) for d in self.output_shape)
        self.inbound = tuple(self.inbound)
        if self.weights is not None:
            self.weights = np.ascontiguousarray(self.weights, dtype=np.float32)
        if self.bias is not None:
            self.bias = np.ascontiguousarray(self.bias, dtype=np.float32)

    @property
    def is_neuron_layer(self) -> bool:
        return self.kind in NEURON_KINDS

    @property
    def size(self) -> int:
        return int(np.prod(self.output_shape))
