"""From files to a ready-to-simulate network: open the model, load the data, normalize.

Shared by the command line and the window so both convert exactly the same way. Normalization
always starts from the original network and the data named here (never from cached scales).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from workbench.models import loading
from workbench.models.data import Samples, load_samples
from workbench.models.network import Network
from workbench.models.normalize import load_factors, normalize

MAX_CALIBRATION = 1000  # samples used for the activation percentiles


@dataclasses.dataclass(frozen=True)
class Prepared:
    original: Network
    network: Network  # normalized when ``percentile`` was given, else the original
    samples: Samples | None
    calibration: str  # where the normalization data came from, for reports
    notes: tuple[str, ...] = ()
    calibration_x: object = None  # the normalization data (np.ndarray), for remedies that measure on it

    @property
    def n_classes(self) -> int:
        return self.original.output_layer.size


def prepare(model: str | Path | None, data: str | Path | None = None, calibration: str | Path | None = None,
            percentile: float | None = 99.9, demo: bool = False, on_progress=None,
            keep_normalized: bool = False, rule: str = "workbench",
            factors_file: str | Path | None = None) -> Prepared:
    """``model=None`` with ``demo=True`` opens the bundled demo (and its test and calibration
    sets unless others are named). ``percentile`` None or 0 skips normalization;
    ``on_progress(done, total)`` follows it (``normalize``). A model saved normalized (``convert
    --calibration``) is refused for a second normalization, or with ``keep_normalized`` (the
    percentile was only a default) runs as saved, with a note. ``rule``: the normalization rule
    ('workbench' or 'snntoolbox'); ``factors_file``: SNN Toolbox's ``<percentile>.json``, whose
    factors are used instead of computing them (SNN Toolbox's rule; no calibration data needed)."""
    notes = []
    if model is None:
        if not demo:
            from workbench.errors import ModelImportError

            raise ModelImportError("no model given (name a .keras/.h5/.onnx/.npz file, or use --demo)")
        model = loading.DEMO_NETWORK
        data = data or loading.DEMO_TEST
        calibration = calibration or loading.DEMO_CALIBRATION
    original = loading.open_model(model)
    n_classes = original.output_layer.size
    samples = load_samples(data, original.input_shape, n_classes) if data else None
    network = original
    source = ""
    cal_x = None
    if factors_file:
        network = normalized_network(original, None, percentile, factors_file=factors_file)
        return Prepared(original, network, samples, str(factors_file), tuple(notes))
    if percentile and keep_normalized and (original.scales or original.normalization):
        norm = original.normalization or {}
        how = (f" (percentile {norm['percentile']:g} on {norm['n_samples']} samples)"
               if "percentile" in norm and "n_samples" in norm else "")
        notes.append(f"{Path(str(model)).name} was saved normalized{how}: it runs as saved")
        percentile = None
    if percentile:
        if calibration:
            cal_x = load_samples(calibration, original.input_shape, calibration=True).x
            source = str(calibration)
        elif samples is not None:
            cal_x = samples.x
            source = f"{data} (the evaluation data itself: pass --calibration to keep them apart)"
            notes.append(f"normalized on the evaluation data {Path(str(data)).name}; "
                         "use separate calibration data for an unbiased accuracy")
        else:
            cal_x = None
            notes.append("no data to normalize with: the network runs un-normalized")
        if cal_x is not None:
            network = normalized_network(original, cal_x[:MAX_CALIBRATION], percentile, on_progress, rule=rule)
    return Prepared(original, network, samples, source, tuple(notes),
                    None if cal_x is None else cal_x[:MAX_CALIBRATION])


def normalized_network(original: Network, cal_x, percentile: float | None, on_progress=None,
                       rule: str = "workbench", factors_file: str | Path | None = None) -> Network:
    """``original`` normalized the way ``prepare`` does it (the window calls this too): with
    ``factors_file`` (SNN Toolbox's ``<percentile>.json``) its factors under SNN Toolbox's rule,
    the percentile read from the file's name; else on ``cal_x`` at ``percentile`` by ``rule``."""
    if factors_file:
        try:
            pct = float(Path(str(factors_file)).stem)
        except ValueError:
            pct = float(percentile or 100.0)
        return normalize(original, None, pct if 0 < pct <= 100 else 100.0, on_progress, rule="snntoolbox",
                         factors=load_factors(factors_file))
    return normalize(original, cal_x, percentile, on_progress, rule=rule)
