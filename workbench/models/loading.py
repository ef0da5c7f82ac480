"""Open any supported model file by its suffix, and the bundled demo.

``.keras`` / ``.h5`` go through the Keras importer (TensorFlow imported only then), ``.onnx``
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


def open_model(path: str | Path) -> Network:
    """The (un-normalized) Network in ``path``; ModelImportError/NetworkFileError name the file."""
    path = Path(path)
    if not path.exists():
        raise ModelImportError(f"{path}: no such file")
    if path.is_dir():
        raise ModelImportError(f"{path}: is a folder, not a model file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return Network.load(path)
    if suffix in (".keras", ".h5", ".hdf5"):
        from workbench.models.keras.importer import load_keras

        return load_keras(path)
    if suffix == ".onnx":
        from workbench.models.onnx.importer import load_onnx

        return load_onnx(path)
    raise ModelImportError(f"{path}: unsupported model file type '{suffix}' (expected one of {', '.join(MODEL_SUFFIXES)})")
