"""Exception types a user can act on. Every user-facing failure is one of these.

The CLI prints ``str(error)`` on one line and exits non-zero; the window shows it in a dialog.
Anything else escaping is a bug in the workbench, not a user error.
"""


class WorkbenchError(Exception):
    """Base of every error that is the user's input, not our bug."""


class ModelImportError(WorkbenchError):
    """A model file cannot be read or holds something we cannot simulate faithfully."""


class UnsupportedLayerError(ModelImportError):
    """One or more layers have no faithful spiking equivalent. Lists every offending layer."""

    def __init__(self, path, layers, reasons=()):
        self.path = str(path)
        self.layers = list(layers)  # [(name, type_name), ...]
        self.reasons = list(reasons)  # one line per family that cannot convert at all, and why
        listing = ", ".join(f"'{n}' ({t})" for n, t in self.layers)
        why = "".join(f"\n  no spiking equivalent: {r}" for r in self.reasons)
        super().__init__(f"{self.path}: unsupported layer(s): {listing}{why}")


class NetworkFileError(WorkbenchError):
    """A saved-network file is missing, corrupt or of the wrong schema."""


class DataFileError(WorkbenchError):
    """A sample-data file is unreadable or does not fit the model."""


class ConfigError(WorkbenchError, ValueError):
    """A setting is out of range. ``field`` names it, so the UI can mark the right input."""

    def __init__(self, field, message):
        self.field = field
        super().__init__(f"{field}: {message}")


class TraceFileError(WorkbenchError):
    """A trace file is unreadable or does not follow the documented schema."""


class OutputFileError(WorkbenchError):
    """An output file cannot be written where asked (no such folder, a folder, no permission)."""
