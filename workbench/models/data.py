"""Sample data for the CLI and the window: load a file and make it fit the model's input, or say why not.

Sample files come from people's own pipelines, so every way they commonly differ from what the
model wants is either adapted in one documented way or refused with a ``DataFileError`` that names
the file and the field (``'x'``, ``'y'``, the image size). Nothing is pickled, nothing is resized,
and a file too large for memory is refused before it is read.

Accepted files:
- ``.npz``: ``x`` (required) and ``y`` (optional labels); other keys are ignored. A file holding
  one array only (``numpy.savez(path, x)``: the key ``arr_0``, as SNN Toolbox writes
  ``x_test.npz``) is read as ``x``.
- a folder laid out as SNN Toolbox expects its ``dataset_path``: ``x_test.npz`` (samples) and
  ``y_test.npz`` (one-hot labels, optional), each one ``arr_0`` array; as calibration data
  (``load_samples(..., calibration=True)``) the folder's ``x_norm.npz`` is read instead.
- ``.npy``: ``x`` only.
- ``.png`` (8-bit, not interlaced, no palette) and ``.pgm``/``.ppm``/``.pnm``: one sample, pixels
  scaled to [0, 1]. Array files are used as they are: their values are not rescaled.

Accepted shapes of ``x`` for a model input ``S``: ``(N, *S)``; ``S`` (one sample); ``(N, H, W)``
when ``S`` is ``(H, W, 1)``; channels-first ``(N, C, H, W)`` when ``S`` is ``(H, W, C)`` (the
layout ONNX/PyTorch models take; transposed once); and flat ``(N, prod(S))``, reshaped row-major
(channels-last, as Keras flattens). Labels are 1-D integers (whole-number floats are accepted), an ``(N, 1)`` column,
or one-hot/probability rows ``(N, classes)`` reduced by argmax.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.errors import DataFileError
from workbench.models.image_io import read_png, read_pnm

DEFAULT_MAX_BYTES = 2 * 1024**3
ARRAY_SUFFIXES = (".npz", ".npy")
IMAGE_SUFFIXES = (".png", ".pgm", ".ppm", ".pnm")
_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float; complex/strings/objects/dates refused


@dataclass(frozen=True, eq=False)
class Samples:
    """Model-ready samples: ``x`` float32 ``(N, *input_shape)``, ``y`` int64 ``(N,)`` or None.

    The arrays are read-only so that a batch handed to a worker thread cannot be changed under it.
    """

    x: np.ndarray
    y: np.ndarray | None
    path: Path

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def batch(self, start: int, size: int) -> "Samples":
        """Samples ``start .. start+size`` (shorter at the end); views, not copies."""
        if size < 1:
            raise ValueError(f"batch size must be at least 1, got {size}")
        if not 0 <= start < len(self):
            raise ValueError(f"batch start {start} is outside 0..{len(self) - 1}")
        stop = start + size
        return Samples(self.x[start:stop], None if self.y is None else self.y[start:stop], self.path)


def load_samples(
    path: str | Path,
    input_shape: tuple[int, ...],
    n_classes: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    calibration: bool = False,
) -> Samples:
    """Read ``path`` and return samples shaped for a model whose per-sample input is ``input_shape``.
    ``path`` may be an SNN Toolbox data folder (``x_test.npz``/``y_test.npz``, or ``x_norm.npz``
    when ``calibration``)."""
    path = Path(path)
    input_shape = tuple(int(d) for d in input_shape)
    if not path.exists():
        raise DataFileError(f"{path}: no such file")
    if path.is_dir():
        return _load_snntoolbox_folder(path, input_shape, n_classes, max_bytes, calibration)
    if not path.is_file():
        raise DataFileError(f"{path}: not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DataFileError(f"{path}: file is {size} bytes, more than the limit of {max_bytes}")

    suffix = path.suffix.lower()
    if suffix == ".npz":
        x, y = _read_npz(path, max_bytes)
    elif suffix == ".npy":
        x, y = _read_npy(path, max_bytes), None
    elif suffix in IMAGE_SUFFIXES:
        data = path.read_bytes()
        image = read_png(path, data, max_bytes) if suffix == ".png" else read_pnm(path, data)
        x, y = _fit_image(path, image, input_shape), None
    else:
        supported = ", ".join(ARRAY_SUFFIXES + IMAGE_SUFFIXES)
        raise DataFileError(f"{path}: not a supported format '{suffix}' (expected {supported})")

    x = _fit_x(path, x, input_shape)
    if y is not None:
        y = _fit_y(path, y, len(x), n_classes)
        y.setflags(write=False)
    x.setflags(write=False)
    return Samples(x, y, path)


# ---- array files -----------------------------------------------------------------------------
def _read_npz(path: Path, max_bytes):
    """Check x's and y's declared dtype and size from their .npy headers, then load them."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {n[:-4] if n.endswith(".npy") else n: n for n in archive.namelist()}
            if "x" not in members and set(members) == {"arr_0"}:
                members = {"x": members["arr_0"]}  # one unnamed array (numpy.savez(path, x))
            if "x" not in members:
                keys = ", ".join(f"'{k}'" for k in sorted(members)) or "nothing"
                raise DataFileError(f"{path}: missing 'x' (the samples); the file holds {keys}")
            wanted = ["x"] + (["y"] if "y" in members else [])
            declared = {}
            for key in wanted:
                with archive.open(members[key]) as member:
                    declared[key] = _npy_header(path, key, member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
        raise DataFileError(f"{path}: not a readable .npz archive ({exc})") from None
    for key in wanted:
        _check_dtype(path, key, declared[key][1])
    total = sum(_nbytes(*declared[key]) for key in wanted)
    _check_size(path, "x and y" if len(wanted) > 1 else "x", total, declared["x"][0], max_bytes)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data.files:  # the single-array form
                return data["arr_0"], None
            return data["x"], (data["y"] if "y" in declared else None)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error) as exc:
        raise DataFileError(f"{path}: cannot read the arrays ({exc})") from None


def _read_npy(path: Path, max_bytes):
    with open(path, "rb") as fh:
        shape, dtype = _npy_header(path, "x", fh)
    _check_dtype(path, "x", dtype)
    _check_size(path, "x", _nbytes(shape, dtype), shape, max_bytes)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"{path}: 'x' cannot be read ({exc})") from None


def _npy_header(path: Path, key: str, fh):
    """(shape, dtype) from an .npy header, without reading the data."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise DataFileError(f"{path}: '{key}' uses .npy format version {version}, not 1.0/2.0")
    except (ValueError, EOFError, OSError, SyntaxError, tokenize.TokenError) as exc:
        # numpy parses the header text with ast/tokenize: corrupt text raises their errors
        raise DataFileError(f"{path}: '{key}' is not a valid .npy array ({exc})") from None
    return tuple(shape), np.dtype(dtype)


def _check_dtype(path: Path, key: str, dtype: np.dtype):
    if dtype.hasobject:
        raise DataFileError(
            f"{path}: '{key}' holds pickled Python objects, which are refused; save a numeric array"
        )
    if dtype.kind not in _NUMERIC_KINDS:
        raise DataFileError(f"{path}: '{key}' has non-numeric dtype {dtype}")


def _nbytes(shape, dtype) -> int:
    return math.prod(shape) * dtype.itemsize


def _check_size(path: Path, what: str, declared: int, x_shape, max_bytes: int):
    """Refuse arrays whose stored size, or float32 size once converted, exceeds ``max_bytes``."""
    as_float32 = math.prod(x_shape) * 4
    needed = max(declared, as_float32)
    if needed > max_bytes:
        raise DataFileError(
            f"{path}: '{what}' would need {needed} bytes in memory, more than the limit of {max_bytes}"
        )


SNNTOOLBOX_SAMPLES, SNNTOOLBOX_LABELS, SNNTOOLBOX_NORM = "x_test.npz", "y_test.npz", "x_norm.npz"


def _load_snntoolbox_folder(folder: Path, input_shape, n_classes, max_bytes, calibration) -> Samples:
    """SNN Toolbox's data folder: x_test.npz + y_test.npz (or x_norm.npz for calibration)."""
    name = SNNTOOLBOX_NORM if calibration else SNNTOOLBOX_SAMPLES
    x_path = folder / name
    if not x_path.is_file():
        present = ", ".join(sorted(p.name for p in folder.glob("*.npz"))) or "no .npz files"
        raise DataFileError(f"{folder}: not a file, nor an SNN Toolbox data folder: it needs '{name}' "
                            f"(x_test.npz, y_test.npz, x_norm.npz); it holds {present}")
    x = _fit_x(x_path, _read_npz(x_path, max_bytes)[0], input_shape)
    y = None
    y_path = folder / SNNTOOLBOX_LABELS
    if not calibration and y_path.is_file():
        y = _fit_y(y_path, _read_npz(y_path, max_bytes)[0], len(x), n_classes)
        y.setflags(write=False)
    x.setflags(write=False)
    return Samples(x, y, x_path)


# ---- fitting to the model --------------------------------------------------------------------
def _fit_image(path: Path, image: np.ndarray, input_shape) -> np.ndarray:
    """One (1, H, W, C) sample: the size must match; RGB becomes gray for a 1-channel model."""
    if len(input_shape) not in (2, 3):
        raise DataFileError(
            f"{path}: the model's input {input_shape} is not an image; give an .npy/.npz file"
        )
    height, width, channels = image.shape
    want_h, want_w = input_shape[:2]
    if (height, width) != (want_h, want_w):
        raise DataFileError(
            f"{path}: 'image size' is {width}x{height} (width x height), the model needs "
            f"{want_w}x{want_h}; images are not resized"
        )
    want_c = input_shape[2] if len(input_shape) == 3 else 1
    if want_c == channels:
        pass
    elif want_c == 1 and channels == 3:
        luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601
        image = (image @ luma)[..., np.newaxis]
    elif want_c == 3 and channels == 1:
        image = np.repeat(image, 3, axis=-1)
    else:
        raise DataFileError(
            f"{path}: 'channels': the image has {channels}, the model needs {want_c}"
        )
    return image.reshape((1,) + input_shape)


def _fit_x(path: Path, x: np.ndarray, input_shape) -> np.ndarray:
    if x.dtype.kind not in _NUMERIC_KINDS:
        raise DataFileError(f"{path}: 'x' has non-numeric dtype {x.dtype}")
    if x.size == 0:
        raise DataFileError(f"{path}: 'x' is empty (shape {x.shape})")
    flat = math.prod(input_shape)
    if x.shape[1:] == input_shape:
        pass
    elif x.shape == input_shape:
        x = x[np.newaxis]
    elif input_shape[-1:] == (1,) and x.shape[1:] == input_shape[:-1]:
        x = x[..., np.newaxis]
    elif len(input_shape) == 3 and x.ndim == 4 and x.shape[1:] == (input_shape[2], *input_shape[:2]):
        x = x.transpose(0, 2, 3, 1)  # channels-first (NCHW, as for ONNX/PyTorch models)
    elif x.ndim == 2 and x.shape[1] == flat:
        x = x.reshape((len(x),) + input_shape)
    else:
        shown = ", ".join(str(s) for s in input_shape)
        forms = [f"(N, {shown})", str(input_shape)]
        if input_shape[-1:] == (1,) and len(input_shape) > 1:
            forms.append("(N, " + ", ".join(str(s) for s in input_shape[:-1]) + ")")
        forms.append(f"(N, {flat})")
        raise DataFileError(
            f"{path}: 'x' has shape {x.shape}, which does not fit the model's input "
            f"{input_shape}; expected {' or '.join(forms)}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise DataFileError(
            f"{path}: 'x' has {bad} NaN or Inf value(s) (after conversion to float32)"
        )
    return x


def _fit_y(path: Path, y: np.ndarray, n: int, n_classes: int | None) -> np.ndarray:
    if y.dtype.kind not in "iuf":
        raise DataFileError(f"{path}: 'y' has dtype {y.dtype}; labels must be integers")
    if y.ndim == 0 and n == 1:
        y = y.reshape(1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataFileError(f"{path}: 'y' has NaN or Inf values")
    if y.ndim == 2:
        if n_classes is not None and y.shape[1] != n_classes:
            raise DataFileError(
                f"{path}: 'y' is one-hot with {y.shape[1]} classes, the model has {n_classes}"
            )
        y = y.argmax(axis=1)
    elif y.ndim != 1:
        raise DataFileError(
            f"{path}: 'y' has shape {y.shape}; expected 1-D labels (N,) or one-hot (N, classes)"
        )
    elif y.dtype.kind == "f":
        if not np.array_equal(y, np.round(y)):
            raise DataFileError(f"{path}: 'y' holds non-integer values; labels must be integers")
    if len(y) != n:
        raise DataFileError(f"{path}: 'y' has {len(y)} labels for {n} samples in 'x'")
    if y.min() < 0:
        raise DataFileError(f"{path}: 'y' has negative labels (minimum {y.min()})")
    if y.max() >= 2**31:
        raise DataFileError(f"{path}: 'y' has label {y.max()}, too large for a class label")
    if n_classes is not None and y.max() >= n_classes:
        raise DataFileError(
            f"{path}: 'y' has label {int(y.max())}, outside 0..{n_classes - 1} for this model"
        )
    return np.ascontiguousarray(y, dtype=np.int64)
