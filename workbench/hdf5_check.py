"""Refuse truncated HDF5 files before libhdf5 opens them.

libhdf5 can loop forever on some truncated files (seen while fuzzing trace and ``.h5`` model
loading): no exception, no timeout, a hung window. A truncated file is easy to recognise without
the library: the superblock at the start records the file's end-of-file address, and a complete
file is at least that long. ``check_hdf5(path)`` reads the superblock (versions 0-3, the file
format specification section II.A) and returns a problem in words, or None when the file is
plausibly whole.
"""

from __future__ import annotations

from pathlib import Path

SIGNATURE = b"\x89HDF\r\n\x1a\n"
UNDEFINED = 0xFFFFFFFFFFFFFFFF


def _superblock_offset(fh, size: int) -> int | None:
    """The superblock sits at 0, 512, 1024, 2048, ... (after an optional user block)."""
    offset = 0
    while offset + 8 <= size:
        fh.seek(offset)
        if fh.read(8) == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def check_hdf5(path: str | Path) -> str | None:
    """None when ``path`` looks like a whole HDF5 file; otherwise what is wrong with it."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        start = _superblock_offset(fh, size)
        if start is None:
            return "not an HDF5 file (no HDF5 signature)"
        fh.seek(start + 8)
        head = fh.read(8)
        if len(head) < 8:
            return "truncated inside the HDF5 superblock"
        version = head[0]
        if version in (0, 1):
            sizeof_offsets = head[5]
            fixed = 24 if version == 0 else 28  # bytes before the base address
            fh.seek(start + fixed)
        elif version in (2, 3):
            sizeof_offsets = head[1]
            fh.seek(start + 12)
        else:
            return f"unknown HDF5 superblock version {version}"
        if sizeof_offsets not in (2, 4, 8):
            return f"corrupt HDF5 superblock (size of offsets {sizeof_offsets})"
        fields = fh.read(3 * sizeof_offsets)
        if len(fields) < 3 * sizeof_offsets:
            return "truncated inside the HDF5 superblock"
        values = [int.from_bytes(fields[i * sizeof_offsets:(i + 1) * sizeof_offsets], "little")
                  for i in range(3)]
        # v0/1: base, free-space info, end of file; v2/3: base, superblock extension, end of file
        base, eof = values[0], values[2]
        if eof == UNDEFINED or base == UNDEFINED:
            return "corrupt HDF5 superblock (undefined end-of-file address)"
        # Written files record the end of file from the start of the file (a user block
        # included, as libhdf5 does), whatever the base address.
        if eof > size:
            return f"truncated: the HDF5 superblock says {eof} bytes, the file has {size}"
    return None


# A file of the right length whose inside is corrupt can still make libhdf5 loop forever, and a
# loop inside C ignores Ctrl-C. So the metadata is read once in a child process with a time
# limit before this process opens the file: ~0.5 s per HDF5 file opened, paid only for HDF5.
PROBE_TIMEOUT = 20.0  # seconds; None turns the probe off (fuzz tests of the parsers do)
_PROBE = r"""
import sys
import h5py

def attrs(_name, obj):
    for key in list(obj.attrs.keys()):
        try:
            obj.attrs[key]
        except Exception:
            pass

with h5py.File(sys.argv[1], "r") as fh:
    attrs("/", fh)
    fh.visititems(attrs)
"""


def probe_hdf5(path: str | Path, timeout: float | None = None) -> str | None:
    """None when a child process reads every attribute of ``path`` within the time limit
    (or fails quickly: the reader in this process then reports why); else what is wrong."""
    import subprocess
    import sys

    timeout = PROBE_TIMEOUT if timeout is None else timeout
    if timeout is None:
        return None
    try:
        subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"corrupt: reading its HDF5 metadata did not finish within {timeout:g} s"
    return None


def hdf5_problem(path: str | Path) -> str | None:
    """The structural check, then the probe: what is wrong with ``path``, or None."""
    return check_hdf5(path) or probe_hdf5(path)
