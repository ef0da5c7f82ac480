"""The long jobs the Session hands to its worker: open a model, open data, (re)normalize.

Plain functions of immutable arguments (no Qt, no session state), so they run on the worker
thread without locks and can be called directly in tests and scripts. Each returns a ``Loaded``
record saying what was read and, in ``message``, anything a person should know about it.
Each takes ``on_progress(done, total)`` for its normalization (``normalize``) and
``on_stage(label)`` told as each stage starts (starting TensorFlow, reading the file, importing,
normalizing); either may raise to cancel the job. Opening a Keras file calls
``on_progress(0, None)`` (busy, no measure) every 0.1 s while its child process imports it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from workbench.models import loading, spill
from workbench.models.data import Samples, load_samples
from workbench.models.network import Network

CALIBRATION_SAMPLES = 500  # samples used to normalize when the data set is the calibration set


@dataclasses.dataclass(frozen=True)
class Loaded:
    original: Network
    network: Network | None  # the network to run (normalized when possible); None: unchanged
    samples: Samples | None
    calibration: np.ndarray | None  # x the network was normalized with, when not the samples
    path: Path | None
    message: str = ""


def n_classes(network: Network) -> int | None:
    shape = network.output_layer.output_shape
    return int(shape[0]) if len(shape) == 1 else None


def normalized(original: Network, calib_x, percentile: float, on_progress=None, on_stage=None,
               rule: str = "workbench") -> Network:
    """The network to run: ``original`` normalized on ``calib_x`` by ``rule``; unchanged when it
    already is normalized (a saved, converted network) or when there is no data to normalize with."""
    from workbench.models.prepare import normalized_network

    if original.scales or original.normalization or calib_x is None:
        return original
    if on_stage is not None:
        on_stage(f"Normalizing on {len(calib_x)} samples ({len(original.layers)} layers)…")
    return normalized_network(original, calib_x, percentile, on_progress, rule=rule)


@dataclasses.dataclass(frozen=True)
class Conversion:
    """How the window converts the open model (the command line's --normalize, --normalize-rule,
    --normalization-file and --remedies): applied by ``converted``."""

    percentile: float = 99.9
    rule: str = "workbench"  # or 'snntoolbox' (models.normalize.RULES)
    factors_file: str | None = None  # SNN Toolbox's <percentile>.json (implies its rule)
    remedies: str = ""  # a remedies spec without the neuron-side parts ('' : baseline)

    @property
    def measures(self) -> bool:
        """Its remedies run the SNN on the calibration data (balance, calib): they depend on the settings."""
        from workbench.analysis.remedies import Remedies

        spec = Remedies.parse(self.remedies)
        return spec.balance or bool(spec.calibrate)

    def describe(self) -> str:
        how = (f"SNN Toolbox's factors from {Path(self.factors_file).name}" if self.factors_file
               else f"the {self.percentile:g}th percentile" + (", SNN Toolbox's rule" if self.rule == "snntoolbox" else ""))
        return how + (f", remedies {self.remedies}" if self.remedies else "")


@dataclasses.dataclass(frozen=True)
class Converted:
    network: Network | None  # None: failed with ``error`` (the network in use stays)
    conversion: Conversion
    error: BaseException | None = None


def converted(original: Network, calib_x, conversion: Conversion, config, on_progress=None, on_stage=None) -> Converted:
    """The network to run for ``conversion``: normalized as the command line's ``prepare`` does
    (``models.prepare.normalized_network``: rule or SNN Toolbox's factors file), then the
    remedies applied as its ``--remedies`` (``analysis.remedies.with_remedies``, measuring with
    ``config``). A bad option comes back as ``error`` (a ConfigError or DataFileError naming it)."""
    from workbench.analysis.remedies import Remedies, with_remedies
    from workbench.errors import ConfigError, WorkbenchError
    from workbench.models.prepare import MAX_CALIBRATION, Prepared, normalized_network

    try:
        spec = Remedies.parse(conversion.remedies)
        saved = bool(original.scales or original.normalization)
        if spec != Remedies() and calib_x is None and not saved:
            raise ConfigError("remedies", f"{spec} measures on sample data: open data first (File > Open data…)")
        if saved:
            network = original  # a saved, converted network runs as saved
            if str(spec) == saved_network_remedies(original):
                spec = Remedies()  # the remedies it was saved with: already in it
        elif conversion.factors_file:
            if on_stage is not None:
                on_stage(f"Normalizing with {Path(conversion.factors_file).name}…")
            network = normalized_network(original, None, conversion.percentile, on_progress,
                                         factors_file=conversion.factors_file)
        elif conversion.rule != "workbench" and calib_x is not None:
            if on_stage is not None:
                on_stage(f"Normalizing on {len(calib_x)} samples by SNN Toolbox's rule…")
            network = normalized_network(original, calib_x, conversion.percentile, on_progress, rule=conversion.rule)
        else:
            network = normalized(original, calib_x, conversion.percentile, on_progress=on_progress)
        if spec != Remedies():
            if on_stage is not None:
                on_stage(f"Applying the remedies {spec}…")
            cal = None if calib_x is None else np.asarray(calib_x)[:MAX_CALIBRATION]
            prep = Prepared(original, network, None, "", (), cal)
            network = with_remedies(prep, config, str(spec), on_progress)[0].network
    except WorkbenchError as exc:
        return Converted(None, conversion, exc)
    finally:
        spill.release_pages(original)  # the pages of spilled weights this conversion read
    return Converted(network, conversion)


def saved_network_remedies(network: Network) -> str:
    """The network-level part of the remedies a saved converted network was made with (channel,
    balance, calibN, lateral: the Settings' remedies field), '' when none; the neuron-side part
    (half, burstN) is the IF parameters v_init and burst (``analysis.remedies.neuron_config``)."""
    from workbench.analysis.remedies import Remedies, saved_remedies

    part = dataclasses.replace(saved_remedies(network), half=False, burst=1)
    return "" if part == Remedies() else str(part)


@dataclasses.dataclass(frozen=True)
class Replay:
    """An input spike train the 'recorded' encoder replays (File > Replay input from trace…)."""

    path: Path
    train: np.ndarray  # [T, B, *input_shape], row t-1 the input layer's spike counts at step t

    @property
    def steps(self) -> int:
        return int(self.train.shape[0])

    @property
    def batch(self) -> int:
        return int(self.train.shape[1])

    def describe(self) -> str:
        return (f"input replayed from {self.path.name} ({self.batch} sample(s), {self.steps} recorded steps)")


def replay_input(path: Path, network: Network, on_progress=None) -> Replay:
    """The input spike train of the trace ``path`` for ``network`` (the command line's
    ``run --input recorded --input-spikes``: ``encoders.input_train`` on its input layer). A
    file that is no trace, or a train shaped unlike the network's input, raises DataFileError
    naming the file."""
    from workbench.engine.encoders import input_train
    from workbench.errors import DataFileError
    from workbench.exchange.trace_io import load_trace

    path = Path(path)
    try:
        train = input_train(load_trace(path), network.input_layer.name, network.input_shape)
    except DataFileError as exc:
        text = str(exc)
        raise DataFileError(text if path.name in text else f"{path.name}: {text}") from exc
    train.flags.writeable = False
    return Replay(path, train)


def ann_accuracy(network: Network, ann, labels) -> float:
    """Top-1 accuracy of the ANN (the normalized network's forward pass ``ann``, by layer name)
    on samples with ``labels``; NaN without labels or without a class-vector output."""
    if labels is None or n_classes(network) is None:
        return float("nan")
    out = np.asarray(ann[network.output_layer.name]).reshape(len(labels), -1)
    return float(np.mean(out.argmax(axis=1) == np.asarray(labels)))


def _note(original: Network, network: Network, percentile: float) -> str:
    if original.scales or original.normalization:
        return "The model file is already normalized; the percentile setting does not apply."
    if network is original:
        return "Not normalized yet: open sample data to normalize the network with."
    warnings = network.normalization.get("warnings", [])
    note = f"Normalized at the {percentile:g}th percentile on {network.normalization.get('n_samples')} samples."
    return note + (f" Warnings: {'; '.join(warnings)}" if warnings else "")


def open_model(path: Path, data_path: Path | None, percentile: float, on_progress=None, on_stage=None,
               rule: str = "workbench") -> Loaded:
    """Open a model file; re-read the current data file (if any) to fit it and normalize on it.
    A Keras file is imported in a child process (``loading.open_model(isolated=True)``): the
    window never holds TensorFlow, and cancelling kills the child at once. The loaded model's
    weights (kept to convert again) are spilled to an unlinked file when they are big
    (``models.spill``): VGG16's 528 MB are not held twice."""
    original = spill.spill_weights(loading.open_model(path, on_stage, isolated=True, on_progress=on_progress))
    samples, message = None, ""
    if data_path is not None:
        try:
            samples = load_samples(data_path, original.input_shape, n_classes(original))
        except Exception as exc:  # the model still opens; the data is reported as dropped
            message = f"The open data does not fit this model and was closed ({exc}). "
    calib = None if samples is None else samples.x[:CALIBRATION_SAMPLES]
    network = normalized(original, calib, percentile, on_progress, on_stage, rule=rule)
    spill.release_pages(original)
    return Loaded(original, network, samples, None, Path(path), message + _note(original, network, percentile))


def open_data(path: Path, original: Network, current: Network | None, percentile: float,
              on_progress=None, on_stage=None, rule: str = "workbench") -> Loaded:
    """Read samples shaped for ``original``; normalize on them when ``current`` is None (the
    network has not been normalized yet)."""
    samples = load_samples(path, original.input_shape, n_classes(original))
    message = f"{len(samples)} samples from {Path(path).name}" + ("" if samples.y is not None else " (no labels)")
    if current is not None:
        return Loaded(original, None, samples, None, None, message + ".")
    network = normalized(original, samples.x[:CALIBRATION_SAMPLES], percentile, on_progress, on_stage, rule=rule)
    spill.release_pages(original)
    return Loaded(original, network, samples, None, None, f"{message}. {_note(original, network, percentile)}")


def open_demo(percentile: float, on_progress=None, on_stage=None, rule: str = "workbench") -> Loaded:
    """The bundled digits CNN (saved Network, no TensorFlow), its test set, normalized on the
    calibration set."""
    path = loading.DEMO_NETWORK if loading.DEMO_NETWORK.exists() else loading.DEMO_KERAS
    original = loading.open_model(path, isolated=True, on_progress=on_progress)
    test = load_samples(loading.DEMO_TEST, original.input_shape, n_classes(original))
    calib = load_samples(loading.DEMO_CALIBRATION, original.input_shape).x
    network = normalized(original, calib, percentile, on_progress, on_stage, rule=rule)
    return Loaded(original, network, test, calib, path, "Demo: " + _note(original, network, percentile))
