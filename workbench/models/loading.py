"""Open any supported model file by its suffix, and the bundled demo.

``.keras`` / ``.h5`` go through the Keras importer (TensorFlow imported only then; with
``isolated=True``, as the window opens them, in a child process that exits afterwards:
``isolated_import``), ``.onnx``
through the ONNX importer (``onnx`` imported only then); a saved
``Network`` (``.npz``) opens with numpy alone, in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

from workbench.bundled import DEMO_DIR
from workbench.errors import ModelImportError
from workbench.models.network import Network

DEMO_NETWORK = DEMO_DIR / "digits_cnn.network.npz"
DEMO_KERAS = DEMO_DIR / "digits_cnn.keras"
DEMO_TEST = DEMO_DIR / "digits_test.npz"
DEMO_CALIBRATION = DEMO_DIR / "digits_calibration.npz"

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx", ".npz")


def open_model(path: str | Path, on_stage=None, isolated: bool = False, on_progress=None) -> Network:
    """The (un-normalized) Network in ``path``; ModelImportError/NetworkFileError name the file.
    ``on_stage(label)``: told as each stage of a Keras import starts (may raise to stop it).
    ``isolated``: import a Keras file in a child process, so this process never holds
    TensorFlow (~0.9 GB); ``on_progress(0, None)`` is then called every 0.1 s while the child
    works and may raise to stop it at once (the child is killed). ONNX and ``.npz`` files open
    in-process either way (no TensorFlow)."""
    path = Path(path)
    if not path.exists():
        raise ModelImportError(f"{path}: no such file")
    if path.is_dir():
        raise ModelImportError(f"{path}: is a folder, not a model file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if on_stage is not None:
            on_stage(f"Reading {path.name} ({path.stat().st_size / 1024**2:.0f} MB)…")
        return Network.load(path)
    if suffix in (".keras", ".h5", ".hdf5"):
        if isolated:
            from workbench.models.isolated_import import import_keras_isolated

            return import_keras_isolated(path, on_stage, on_progress)
        from workbench.models.keras.importer import load_keras

        return load_keras(path, on_stage)
    if suffix == ".onnx":
        from workbench.models.onnx.importer import load_onnx

        if on_stage is not None:
            on_stage(f"Reading {path.name} ({path.stat().st_size / 1024**2:.0f} MB)…")
        return load_onnx(path)
    raise ModelImportError(f"{path}: unsupported model file type '{suffix}' (expected one of {', '.join(MODEL_SUFFIXES)})")
