"""Arguments shared by several sub-commands, and the default that remembers it was not typed."""

from __future__ import annotations

import argparse


class _Default(int):
    """An int default that remembers it was not typed: ``--batch`` larger than the data is an
    error when given, and quietly becomes the data size when it is only the default."""


class _DefaultFloat(float):
    """The same for a float: ``--normalize`` not typed runs an already normalized network as saved."""


DEFAULT_BATCH = _Default(64)
DEFAULT_PERCENTILE = _DefaultFloat(99.9)


def is_default(value) -> bool:
    return isinstance(value, (_Default, _DefaultFloat))


def add_model_args(p: argparse.ArgumentParser, model_required: bool = False) -> None:
    p.add_argument("model", nargs=None if model_required else "?", help="a .keras/.h5/.onnx model or a saved network (.npz)")
    p.add_argument("--demo", action="store_true", help="use the bundled digits CNN and its test set")
    p.add_argument("--data", help="sample data: .npz with x (and y), .npy, or an image")
    p.add_argument("--calibration", help="data to normalize with (default: the demo's calibration set, or --data)")
    p.add_argument("--normalize", type=float, default=DEFAULT_PERCENTILE, metavar="P",
                   help="percentile of ANN activations for data-based normalization (100 = max; default "
                        "99.9); 0 = off. A network saved normalized runs as saved unless P is given")
    p.add_argument("--normalize-rule", choices=["workbench", "snntoolbox"], default="workbench",
                   help="which layers get a factor: ours, or SNN Toolbox 0.6's (pooling passes its input's "
                        "factor, softmax gets 1.0)")
    p.add_argument("--normalization-file", metavar="JSON",
                   help="SNN Toolbox's normalization file (<percentile>.json: layer -> factor) instead of "
                        "computing factors (SNN Toolbox's rule)")


def add_sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--neuron", default="if", help="neuron model (see 'snn-workbench neurons')")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="neuron parameter (repeatable)")
    p.add_argument("--reset", choices=["subtract", "zero", "modulo"], help="IF reset mode (default subtract)")
    p.add_argument("--input", choices=["constant", "poisson", "recorded"], default="constant",
                   help="input encoding (recorded: replay --input-spikes)")
    p.add_argument("--input-spikes", metavar="TRACE",
                   help="a trace whose input layer holds the spike train to replay (--input recorded)")
    p.add_argument("--float64", action="store_true", help="currents and state in float64, as Nengo (slower)")
    p.add_argument("--synaptic-delay", type=int, choices=[0, 1], default=0,
                   help="1: a layer sees its inputs' spikes one step late, as Lava's Dense")
    p.add_argument("--softmax-output", choices=["if", "sampled"], default="if",
                   help="sampled: a softmax output spikes where U <= softmax(v), as SNN Toolbox INIsim")
    p.add_argument("--synapse", type=float, metavar="SECONDS",
                   help="time constant of the synaptic low-pass on the input current of fitted LIF / Loihi LIF "
                        "layers fed by spikes (default 0.005; 0: no filter; docs/conversion.md)")
    p.add_argument("--no-rate-inversion", action="store_true",
                   help="keep the current of fitted LIF / Loihi LIF layers under a constant input as it is "
                        "(default: the inverse of their rate curve, so that the rate is the ANN value; "
                        "docs/conversion.md)")
    p.add_argument("--steps", type=int, default=100, help="timesteps per sample")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help="samples simulated together (default 64, or all samples when fewer)")
    p.add_argument("--samples", type=int, help="use only the first N samples")
    p.add_argument("--dt", type=float, help="timestep (default: the neuron model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--remedies", metavar="SPEC", default="",
                   help="low-latency conversion remedies joined by '+': half, channel, burstN, balance, calibN, "
                        "lateral (docs/conversion.md, 'Remedies'); default none")
    p.add_argument("--rate-scale", type=float, default=1.0, metavar="S",
                   help="multiply currents by S, divide spike values by S (NengoDL scale_firing_rates)")
    p.add_argument("--readout", choices=["auto", "membrane", "spikes"], default="auto",
                   help="class scores from the output layer's accumulated membrane (no spikes) or its spike "
                        "counts (default auto: membrane for a linear/softmax output)")
    p.add_argument("--uniform", action="store_true",
                   help="run every layer on --neuron as given (no activation-matched neurons, linear layers "
                        "spike): the conversion without the plan of docs/conversion.md")
    p.add_argument("--layer", action="append", default=[], metavar="LAYER=NEURON[:K=V,...]",
                   help="run one layer on its own neuron model, e.g. --layer fc1=signed_if or "
                        "--layer h=regular_spiking:rate_fn=tanh (repeatable)")
