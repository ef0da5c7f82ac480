"""QtSettingsPanel: the run settings as a form that is checked as you type.

The neuron parameters form is built from the chosen model's dataclass fields (float, int, bool,
str and optional fields, converted by ``parse_params``; a str field offers a drop-down when its choices are known: ``choices`` in the
field's metadata, or a ``<FIELD>_MODES`` tuple in the model's module, as ``if_neuron.RESET_MODES``).
Every edit builds the SimConfig; a ``ConfigError`` marks the field it names in red with the
message, and Apply stays disabled. Apply emits ``config_edited(SimConfig)`` and, when the
Conversion box changed (percentile, normalization rule or file, remedies),
``conversion_edited(loaders.Conversion)`` (and ``percentile_edited(float)`` when the percentile
did). The panel holds no state of its own beyond its widgets: ``set_config`` loads them from
what the session runs.
"""

from __future__ import annotations

import dataclasses
import sys

from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
    QLineEdit, QPushButton, QSpinBox, QTableWidget, QVBoxLayout, QWidget,
)

from workbench.analysis.remedies import Remedies
from workbench.engine.config import ENCODERS, MAX_STEPS, READOUTS, SOFTMAX_OUTPUTS, SimConfig
from workbench.engine.neurons import MODELS, make_neuron, parse_params
from workbench.errors import ConfigError
from workbench.models.normalize import RULES
from workbench.views.loaders import Conversion

INVALID_STYLE = "background-color: #ffd0d0; color: #000000;"
DEFAULT = "(default)"
REMEDIES_TIP = ("Network-level conversion remedies, joined by '+' as the command line's --remedies "
                "(docs/conversion.md, 'Remedies'):\n"
                "  channel   channel-wise normalization (one scale per output channel)\n"
                "  balance   per-channel threshold balancing on the calibration data\n"
                "  calibN    SNN calibration, light: bias correction over N steps (calib: 16)\n"
                "  lateral   max pooling by lateral inhibition\n"
                "e.g. channel+calib8; empty or 'baseline': none. The half-threshold start and burst "
                "spikes are the IF parameters v_init and burst.")


def field_choices(cls, field: dataclasses.Field) -> tuple[str, ...] | None:
    """The allowed values of a str field: ``field.metadata['choices']``, else a module-level
    tuple of strings holding the default whose name starts like the field's (``RESET_MODES``
    for ``reset``, ``RATE_FUNCTIONS`` for ``rate_fn``)."""
    if field.metadata.get("choices"):
        return tuple(field.metadata["choices"])
    if not isinstance(field.default, str):
        return None
    prefix = field.name.upper().split("_")[0]
    for const, value in vars(sys.modules.get(cls.__module__)).items():
        if (const.startswith(prefix) and const.isupper() and isinstance(value, tuple) and value
                and all(isinstance(v, str) for v in value) and field.default in value):
            return value
    return None


class QtSettingsPanel(QWidget):
    config_edited = pyqtSignal(object)  # SimConfig
    percentile_edited = pyqtSignal(float)
    conversion_edited = pyqtSignal(object)  # loaders.Conversion
    budget_edited = pyqtSignal(int)  # bytes the recording may take (Memory box)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._params: dict[str, QWidget] = {}
        self._loading = False
        self._percentile = 99.9
        self._conversion = Conversion()
        self.n_samples: int | None = None  # samples in the open data: a batch may not exceed it
        self.neuron_type = QComboBox()
        self.neuron_type.addItems(sorted(MODELS))
        self.description = QLabel(wordWrap=True)
        self.description.setStyleSheet("color: palette(mid);")
        self.param_form = QFormLayout()
        neuron_box = QGroupBox("Neuron model")
        box = QVBoxLayout(neuron_box)
        box.addWidget(self.neuron_type)
        box.addWidget(self.description)
        box.addLayout(self.param_form)

        self.overrides = QTableWidget(0, 2)
        self.overrides.setHorizontalHeaderLabels(["layer", "neuron type"])
        self.overrides.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.overrides.verticalHeader().hide()
        self.overrides.setMaximumHeight(170)
        override_box = QGroupBox("Per-layer neuron type")
        QVBoxLayout(override_box).addWidget(self.overrides)

        self.encoder = QComboBox()
        # 'recorded' replays the input spike train of a trace (the command line's --input-spikes):
        # File > Replay input from trace… chooses it; choosing another encoding ends the replay
        self.encoder.addItems(ENCODERS)
        self.encoder.setToolTip("constant: the pixel value every step; poisson: spikes with probability x; "
                                "recorded: replays the input spike train of a trace (File > Replay input from "
                                "trace…)")
        self.dt = QLineEdit(placeholderText="model default")
        self.steps = QSpinBox(minimum=1, maximum=min(MAX_STEPS, 2**31 - 1))
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.batch = QSpinBox(minimum=1, maximum=10_000)
        self.rate_scale = QLineEdit(placeholderText="1.0")
        self.rate_scale.setToolTip("NengoDL's scale_firing_rates: currents x this, each spike worth 1/this "
                                   "(more spikes per step for the same value)")
        self.percentile = QDoubleSpinBox(minimum=50.0, maximum=100.0, decimals=2, singleStep=0.1)
        # reference-compatibility options (docs/compatibility.md); each runs the generic path
        self.float64 = QCheckBox("float64 (as Nengo; slower)")
        self.float64.setToolTip("Currents and neuron state in float64, as Nengo steps (generic path: slower)")
        self.synaptic_delay = QSpinBox(minimum=0, maximum=1)
        self.synaptic_delay.setToolTip("1: a layer sees its inputs' spikes one step late, as Lava's Dense")
        self.softmax_output = QComboBox()
        self.softmax_output.addItems(SOFTMAX_OUTPUTS)
        self.softmax_output.setToolTip("sampled: a softmax layer spikes where U <= softmax(v), as SNN Toolbox INIsim")
        run_box = QGroupBox("Run")
        form = QFormLayout(run_box)
        for label, widget in (("input encoding", self.encoder), ("dt", self.dt), ("steps", self.steps),
                              ("seed", self.seed), ("batch", self.batch), ("rate scale", self.rate_scale),
                              ("precision", self.float64),
                              ("synaptic delay", self.synaptic_delay), ("softmax output", self.softmax_output)):
            form.addRow(label, widget)

        # the conversion (docs/conversion.md): the command line's --readout, --uniform, --normalize,
        # --normalize-rule, --normalization-file and --remedies
        self.readout = QComboBox()
        self.readout.addItems(READOUTS)
        self.readout.setToolTip("How the output layer gives class scores: membrane (its accumulated current, no "
                                "spikes), spikes (spike counts), auto (membrane for a linear or softmax output)")
        self.uniform = QCheckBox()
        self.uniform.setToolTip("Uniform conversion (--uniform): every layer runs the neuron model above as given; "
                                "no activation-matched neurons (tanh/sigmoid wrappers, signed linear layers), and "
                                "linear layers spike")
        self.synapse = QLineEdit(placeholderText="5 (default)")
        self.synapse.setToolTip("Synaptic filter of fitted LIF / Loihi LIF layers fed by spikes (--synapse, in "
                                "milliseconds here): a low-pass on the input current, Nengo's Lowpass; 0: none; "
                                "empty: the plan's default, 5 ms (docs/conversion.md)")
        self.rate_inversion = QCheckBox()
        self.rate_inversion.setToolTip("Rate inversion (on unless --no-rate-inversion): a fitted LIF / Loihi LIF layer "
                                       "under constant current gets the current whose long-run rate is the ANN value "
                                       "(the inverse of its rate curve), so its dead zones near 0 and 1 go")
        self.normalize_rule = QComboBox()
        self.normalize_rule.addItems(RULES)
        self.normalize_rule.setToolTip("Which layers get a normalization factor: workbench (ours), or SNN Toolbox "
                                       "0.6's rule (pooling passes its input's factor, softmax gets 1.0)")
        self.normalization_file = QLineEdit(placeholderText="none (computed)")
        self.normalization_file.setToolTip("SNN Toolbox's normalization file (<percentile>.json: layer -> factor), "
                                           "used instead of computing factors (SNN Toolbox's rule)")
        self.browse_button = QPushButton("…")
        self.browse_button.setFixedWidth(28)
        self.browse_button.setToolTip("Choose SNN Toolbox's <percentile>.json")
        file_row = QHBoxLayout()
        file_row.setContentsMargins(0, 0, 0, 0)
        file_row.addWidget(self.normalization_file, 1)
        file_row.addWidget(self.browse_button)
        file_box = QWidget()
        file_box.setLayout(file_row)
        self.remedies = QLineEdit(placeholderText="baseline")
        self.remedies.setToolTip(REMEDIES_TIP)
        conversion_box = QGroupBox("Conversion")
        form = QFormLayout(conversion_box)
        for label, widget in (("readout", self.readout), ("uniform conversion", self.uniform),
                              ("LIF synapse (ms)", self.synapse), ("LIF rate inversion", self.rate_inversion),
                              ("normalization percentile", self.percentile), ("normalize rule", self.normalize_rule),
                              ("factors file", file_box), ("remedies", self.remedies)):
            form.addRow(label, widget)
        self._fields = {"encoder": self.encoder, "dt": self.dt, "steps": self.steps, "seed": self.seed,
                        "batch": self.batch, "rate_scale": self.rate_scale, "percentile": self.percentile,
                        "neuron": self.neuron_type, "float64": self.float64,
                        "synaptic_delay": self.synaptic_delay, "softmax_output": self.softmax_output,
                        "readout": self.readout, "uniform": self.uniform, "synapse": self.synapse,
                        "rate_inversion": self.rate_inversion, "normalize rule": self.normalize_rule,
                        "normalization_file": self.normalization_file, "remedies": self.remedies}

        self.budget = QDoubleSpinBox(minimum=0.05, maximum=1024.0, decimals=2, singleStep=0.25, suffix=" GB")
        self.budget.setToolTip("Memory the recording of spikes and membranes may take. When every layer does "
                               "not fit, only the layers the views show are recorded, with a shorter history.")
        self.budget.setKeyboardTracking(False)
        self.budget.valueChanged.connect(lambda gb: self.budget_edited.emit(int(gb * 1024**3)))
        memory_box = QGroupBox("Memory")
        QFormLayout(memory_box).addRow("recording budget", self.budget)

        self.message = QLabel(wordWrap=True)
        self.message.setStyleSheet("color: #d03030;")
        self.apply_button = QPushButton("Apply")
        self.revert_button = QPushButton("Revert")
        self.pending = QLabel("")
        self.pending.setStyleSheet("color: #e0a030; font-weight: bold;")
        self.button_bar = QWidget()  # the window keeps it in view below the scrolled form
        bar = QVBoxLayout(self.button_bar)
        bar.setContentsMargins(6, 2, 6, 4)
        bar.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pending)
        buttons.addStretch()
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.apply_button)
        bar.addLayout(buttons)

        self._layout = layout = QVBoxLayout(self)
        for w in (neuron_box, override_box, run_box, conversion_box, memory_box, self.button_bar):
            layout.addWidget(w)
        layout.addStretch()

        self._tips = {w: w.toolTip() for w in self._fields.values() if w.toolTip()}
        self._applied = (SimConfig(), self._conversion)
        self.neuron_type.currentTextChanged.connect(self._on_neuron_type_changed)
        self.encoder.currentTextChanged.connect(self.validate)
        self.dt.textEdited.connect(self.validate)
        self.dt.returnPressed.connect(self.apply)
        self.rate_scale.textEdited.connect(self.validate)
        self.rate_scale.returnPressed.connect(self.apply)
        for spin in (self.steps, self.seed, self.batch, self.percentile, self.synaptic_delay):
            spin.valueChanged.connect(self.validate)
        self.float64.toggled.connect(self.validate)
        self.softmax_output.currentTextChanged.connect(self.validate)
        self.readout.currentTextChanged.connect(self.validate)
        self.uniform.toggled.connect(self.validate)
        self.rate_inversion.toggled.connect(self.validate)
        self.synapse.textEdited.connect(self.validate)
        self.synapse.returnPressed.connect(self.apply)
        self.normalize_rule.currentTextChanged.connect(self.validate)
        for edit in (self.normalization_file, self.remedies):
            edit.textEdited.connect(self.validate)
            edit.returnPressed.connect(self.apply)
        self.browse_button.clicked.connect(self._browse_factors)
        self.apply_button.clicked.connect(self.apply)
        self.revert_button.clicked.connect(lambda: self.set_config(self._applied[0], self._applied[1].percentile,
                                                                   self._applied[1]))
        self.set_config(SimConfig(), self._percentile)

    def take_button_bar(self) -> QWidget:
        """The message line and Apply/Revert, out of the form (to keep them in view)."""
        self._layout.removeWidget(self.button_bar)
        self.button_bar.setParent(None)
        return self.button_bar

    # ---- loading from the session ---------------------------------------------------------
    def set_layers(self, names: list[str]) -> None:
        """The neuron layers that can get their own neuron type."""
        self.overrides.setRowCount(len(names))
        for row, name in enumerate(names):
            label = QLabel(name)
            combo = QComboBox()
            combo.addItems([DEFAULT, *sorted(MODELS)])
            combo.currentTextChanged.connect(self.validate)
            self.overrides.setCellWidget(row, 0, label)
            self.overrides.setCellWidget(row, 1, combo)
        self._show_overrides(self._applied[0])

    def set_config(self, config: SimConfig, percentile: float, conversion: Conversion | None = None) -> None:
        """Show ``config`` and the conversion (``conversion``, else the one shown with ``percentile``)."""
        self._loading = True
        conversion = dataclasses.replace(conversion or self._applied[1], percentile=float(percentile))
        self._applied = (config, conversion)
        self.neuron_type.setCurrentText(config.neuron.name)
        self._build_params(config.neuron)
        self.encoder.setCurrentText(config.encoder)
        self.dt.setText("" if config.dt is None else repr(config.dt))
        self.steps.setValue(config.steps)
        self.seed.setValue(config.seed)
        self.batch.setValue(config.batch)
        self.rate_scale.setText(repr(float(config.rate_scale)))
        self.percentile.setValue(percentile)
        self.float64.setChecked(config.float64)
        self.synaptic_delay.setValue(config.synaptic_delay)
        self.softmax_output.setCurrentText(config.softmax_output)
        self.readout.setCurrentText(config.readout)
        self.uniform.setChecked(not config.auto_neurons)
        self.synapse.setText("" if config.synapse is None else f"{config.synapse * 1000:g}")
        self.rate_inversion.setChecked(config.rate_inversion)
        self.normalize_rule.setCurrentText(conversion.rule)
        self.normalization_file.setText(conversion.factors_file or "")
        self.remedies.setText(conversion.remedies)
        self._show_overrides(config)
        self._loading = False
        self.validate()

    def _show_overrides(self, config: SimConfig) -> None:
        for row in range(self.overrides.rowCount()):
            name = self.overrides.cellWidget(row, 0).text()
            model = config.overrides.get(name)
            self.overrides.cellWidget(row, 1).setCurrentText(DEFAULT if model is None else model.name)

    def _build_params(self, model) -> None:
        while self.param_form.rowCount():
            self.param_form.removeRow(0)
        self._params = {}
        cls = type(model)
        self.description.setText(cls.description)
        self.description.setToolTip(cls.reference)
        for field in dataclasses.fields(cls):
            value = getattr(model, field.name)
            choices = field_choices(cls, field)
            if isinstance(value, bool):
                widget = QCheckBox(checked=value)
                widget.toggled.connect(self.validate)
            elif choices:
                widget = QComboBox()
                widget.addItems(choices)
                widget.setCurrentText(str(value))
                widget.currentTextChanged.connect(self.validate)
            else:
                widget = QLineEdit("" if value is None else str(value))
                if value is None:
                    widget.setPlaceholderText("none (model default)")
                widget.textEdited.connect(self.validate)
                widget.returnPressed.connect(self.apply)
            widget.setObjectName(f"param_{field.name}")
            self._params[field.name] = widget
            self.param_form.addRow(field.name, widget)

    def _on_neuron_type_changed(self, name: str) -> None:
        if not self._loading:
            self._build_params(make_neuron(name))
            self.validate()

    # ---- building and checking -----------------------------------------------------------
    def param_widget(self, name: str) -> QWidget:
        return self._params[name]

    def _read_params(self, name: str) -> dict:
        """The form's text converted to the field types by ``parse_params`` (errors name the field)."""
        items = []
        for field, widget in self._params.items():
            if isinstance(widget, QCheckBox):
                text = str(widget.isChecked())
            elif isinstance(widget, QComboBox):
                text = widget.currentText()
            else:
                text = widget.text()
            items.append(f"{field}={text}")
        return parse_params(name, items)

    def build(self) -> SimConfig:
        """The SimConfig the form describes; raises ConfigError naming the bad field."""
        name = self.neuron_type.currentText()
        neuron = make_neuron(name, **self._read_params(name))
        overrides = {}
        for row in range(self.overrides.rowCount()):
            choice = self.overrides.cellWidget(row, 1).currentText()
            if choice != DEFAULT:
                layer = self.overrides.cellWidget(row, 0).text()
                overrides[layer] = neuron if choice == name else make_neuron(choice)
        text = self.dt.text().strip()
        try:
            dt = float(text) if text else None
        except ValueError:
            raise ConfigError("dt", f"must be a number, got '{text}'") from None
        text = self.rate_scale.text().strip()
        try:
            rate_scale = float(text) if text else 1.0
        except ValueError:
            raise ConfigError("rate_scale", f"must be a number, got '{text}'") from None
        text = self.synapse.text().strip()
        try:
            synapse = float(text) / 1000 if text else None
        except ValueError:
            raise ConfigError("synapse", f"must be a time constant in ms (0: no filter), got '{text}'") from None
        config = self._applied[0].replace(neuron=neuron, overrides=overrides, encoder=self.encoder.currentText(),
                                          dt=dt, steps=self.steps.value(), seed=self.seed.value(),
                                          batch=self.batch.value(), rate_scale=rate_scale,
                                          float64=self.float64.isChecked(), synaptic_delay=self.synaptic_delay.value(),
                                          softmax_output=self.softmax_output.currentText(),
                                          readout=self.readout.currentText(), auto_neurons=not self.uniform.isChecked(),
                                          synapse=synapse, rate_inversion=self.rate_inversion.isChecked())
        for model in {m.name: m for m in [neuron, *overrides.values()]}.values():
            model.validate_dt(config.effective_dt)  # the Simulator checks the default dt too
        if config.encoder != "recorded" and self.n_samples is not None and config.batch > self.n_samples:
            raise ConfigError("batch", f"must be at most {self.n_samples}, the samples in the open data")
        return config

    def set_budget(self, nbytes: int) -> None:
        """Show the memory budget (bytes) without emitting ``budget_edited``."""
        self.budget.blockSignals(True)
        self.budget.setValue(nbytes / 1024**3)
        self.budget.blockSignals(False)

    def set_data_size(self, n: int | None) -> None:
        """How many samples the open data holds (None: no data); re-checks the form."""
        self.n_samples = n
        self.validate()

    def validate(self, *_args) -> SimConfig | None:
        if self._loading:
            return None
        for widget in [*self._fields.values(), *self._params.values()]:
            widget.setStyleSheet("")
            widget.setToolTip(self._tips.get(widget, ""))  # its own tooltip, not the last error
        try:
            config = self.build()
        except ConfigError as exc:
            return self._refuse(exc)
        self.message.setText("")
        try:
            conversion = self.build_conversion()
        except ConfigError as exc:
            return self._refuse(exc)
        changed = (config, conversion) != self._applied
        self.apply_button.setEnabled(changed)
        self.revert_button.setEnabled(changed)
        self.pending.setText("● changes not applied" if changed else "")
        font = self.apply_button.font()
        font.setBold(changed)
        self.apply_button.setFont(font)
        return config

    def apply(self) -> None:
        config = self.validate()
        if config is None:
            return
        old_config, old_conversion = self._applied
        conversion = self.build_conversion()
        self._applied = (config, conversion)
        if config != old_config:  # first: calibration and balancing measure with the new settings
            self.config_edited.emit(config)
        if conversion != old_conversion:
            if conversion.percentile != old_conversion.percentile:
                self.percentile_edited.emit(conversion.percentile)
            self.conversion_edited.emit(conversion)
        self.validate()

    def build_conversion(self) -> Conversion:
        """The Conversion box as a ``loaders.Conversion``; raises ConfigError naming the bad field
        (a remedies spec the command line would refuse, the neuron-side remedies that are IF
        parameters here, a normalization file that does not exist)."""
        spec = Remedies.parse(self.remedies.text())  # ConfigError('remedies', ...) naming the word
        if spec.half or spec.burst > 1:
            raise ConfigError("remedies", f"'{self.remedies.text().strip()}': the half-threshold start and burst "
                              "spikes are the IF parameters v_init (0.5) and burst above; here give channel, "
                              "balance, calibN or lateral")
        path = self.normalization_file.text().strip()
        if path and not Path(path).is_file():
            raise ConfigError("normalization_file", f"{path}: no such file")
        return Conversion(self.percentile.value(), self.normalize_rule.currentText(), path or None,
                          "" if spec == Remedies() else str(spec))

    def _browse_factors(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SNN Toolbox normalization file", "", "JSON (*.json);;All files (*)")
        if path:
            self.normalization_file.setText(path)
            self.validate()

    def _refuse(self, exc: ConfigError) -> None:
        """Mark the field ``exc`` names, say why, and keep Apply disabled."""
        widget = self._params.get(exc.field) or self._fields.get(str(exc.field).split("[")[0])
        text = str(exc)
        if str(exc.field) == "dt" and not self.dt.text().strip():
            text += (" — dt is empty, so each model's own default applies; enter one dt that suits every "
                     "model (e.g. 0.001 for LIF), and mind that an IF neuron then adds dt*J per step, so it "
                     "needs its threshold scaled by dt too (or rate scale 1/dt)")
        if widget is not None:
            widget.setStyleSheet(INVALID_STYLE)
            tip = self._tips.get(widget)
            widget.setToolTip(text + (f"\n\n{tip}" if tip else ""))
        self.message.setText(text)
        self.apply_button.setEnabled(False)
        self.revert_button.setEnabled(True)  # back to what runs
        self.pending.setText("not valid")
        return None
