"""Keep a big network's weights in a file the system pages in on demand, not in the process.

The window keeps the model as it was loaded (``Session.original``) beside the normalized copy it
runs, to convert it again when a setting changes. For VGG16 that second copy is 528 MB held for
nothing between conversions. ``spill_weights`` writes the weights once to a file in the cache
folder, maps it read-only and unlinks it at once: the arrays read the same, take no resident
memory until they are read (a conversion reads them, ``release_pages`` hands the pages back
after it), and nothing is left on disk, even after a crash (the blocks are freed when the last
map of the unlinked file goes).
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import tempfile
from pathlib import Path

import numpy as np

from workbench.models.network import Network

SPILL_MIN_BYTES = 64 * 1024**2  # smaller networks stay in memory (ResNet50's 97 MB goes, the demo's stays)
_ALIGN = 64


def cache_folder() -> Path:
    """Where spilled weights go: the user's cache folder (on disk; /tmp may be RAM-backed)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "snn-workbench"


def weight_bytes(network: Network) -> int:
    return int(sum(a.nbytes for layer in network.layers for a in (layer.weights, layer.bias) if a is not None))


def spill_weights(network: Network, folder: str | Path | None = None, min_bytes: int = SPILL_MIN_BYTES) -> Network:
    """``network`` with its weights and biases as read-only maps of an unlinked file (the same
    values, dtypes and shapes); ``network`` itself when its weights are under ``min_bytes`` or
    the file cannot be written (a full disk keeps them in memory, as before)."""
    if weight_bytes(network) < min_bytes:
        return network
    arrays = [(i, field, np.ascontiguousarray(getattr(layer, field)))
              for i, layer in enumerate(network.layers) for field in ("weights", "bias")
              if getattr(layer, field) is not None]
    try:
        folder = Path(folder) if folder is not None else cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="weights-", suffix=".bin", dir=folder)
        try:
            offsets = []
            with os.fdopen(fd, "wb") as fh:
                for _, _, arr in arrays:
                    pad = -fh.tell() % _ALIGN
                    fh.write(b"\0" * pad)
                    offsets.append(fh.tell())
                    arr.tofile(fh)  # the array's own bytes, no copy (VGG16's fc1 alone is 411 MB)
            mapped = np.memmap(path, dtype=np.uint8, mode="r")
        finally:
            os.unlink(path)
    except OSError:
        return network
    changes: dict[int, dict] = {}
    for (i, field, arr), offset in zip(arrays, offsets):
        view = np.frombuffer(mapped, dtype=arr.dtype, count=arr.size, offset=offset).reshape(arr.shape)
        changes.setdefault(i, {})[field] = view
    layers = [dataclasses.replace(layer, **changes[i]) if i in changes else layer
              for i, layer in enumerate(network.layers)]
    return dataclasses.replace(network, layers=layers)


def release_pages(network: Network) -> None:
    """Hand back the pages of a spilled network's weights that a conversion read (they are read
    again from the file when needed); nothing for weights held in memory."""
    seen = set()
    for layer in network.layers:
        for arr in (layer.weights, layer.bias):
            base = arr
            while isinstance(base, np.ndarray) and not isinstance(base, np.memmap) and base.base is not None:
                base = base.base
            if isinstance(base, np.memmap) and id(base) not in seen:
                seen.add(id(base))
                handle = getattr(base, "_mmap", None)
                if handle is not None and hasattr(handle, "madvise"):
                    handle.madvise(mmap.MADV_DONTNEED)
