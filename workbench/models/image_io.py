"""Minimal PNG and Netpbm readers in numpy, so one sample image loads without Pillow or Qt.

Only the plain forms a person saves a test digit as are read: 8-bit PNG (gray, gray+alpha, RGB,
RGBA; not interlaced, no palette) and PGM/PPM (ASCII or binary, any maxval). Everything else is a
``DataFileError`` saying which part is unsupported, never a wrong-looking image.

Both readers return float32 pixels scaled to [0, 1], shaped ``(height, width, channels)`` with
any alpha channel dropped (the model sees colour, not transparency).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from workbench.errors import DataFileError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}  # colour type -> samples per pixel
_PNG_COLOUR_NAMES = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale+alpha", 6: "RGBA"}


def read_png(path, data: bytes, max_bytes: int) -> np.ndarray:
    """Decode an 8-bit non-interlaced PNG. ``max_bytes`` bounds the decompressed size up front."""
    if not data.startswith(PNG_SIGNATURE):
        raise DataFileError(f"{path}: not a PNG file (bad signature)")
    header, idat = _png_chunks(path, data)
    width, height, depth, colour, compression, filter_method, interlace = header
    if colour not in _PNG_COLOUR_NAMES:
        raise DataFileError(f"{path}: PNG colour type {colour} is invalid")
    if colour == 3:
        raise DataFileError(f"{path}: palette PNGs are not supported; save as grayscale or RGB")
    if depth != 8:
        raise DataFileError(
            f"{path}: PNG bit depth {depth} is not supported; only 8-bit "
            f"{_PNG_COLOUR_NAMES[colour]} is read"
        )
    if interlace != 0:
        raise DataFileError(f"{path}: interlaced PNGs are not supported; save without interlacing")
    if compression != 0 or filter_method != 0:
        raise DataFileError(f"{path}: PNG compression/filter method is not the standard one")
    if width == 0 or height == 0:
        raise DataFileError(f"{path}: PNG image is empty ({width}x{height})")

    channels = _PNG_CHANNELS[colour]
    stride = width * channels
    expected = height * (stride + 1)
    if expected > max_bytes:
        raise DataFileError(
            f"{path}: PNG declares {width}x{height} pixels ({expected} bytes), "
            f"more than the limit of {max_bytes} bytes"
        )
    try:
        # max_length stops a decompression bomb at the size the header promised.
        raw = zlib.decompressobj().decompress(b"".join(idat), expected + 1)
    except zlib.error as exc:
        raise DataFileError(f"{path}: PNG image data is corrupt ({exc})") from None
    if len(raw) != expected:
        raise DataFileError(
            f"{path}: PNG image data has {len(raw)} bytes, expected {expected} for {width}x{height}"
        )
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    pixels = _unfilter(path, rows, channels).reshape(height, width, channels)
    if channels in (2, 4):
        pixels = pixels[..., :-1]
    return pixels.astype(np.float32) / np.float32(255)


def _png_chunks(path, data: bytes):
    """Walk the chunk list, checking each CRC; return the IHDR fields and the IDAT payloads."""
    pos = len(PNG_SIGNATURE)
    header = None
    idat = []
    while True:
        if pos + 8 > len(data):
            raise DataFileError(f"{path}: PNG is truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise DataFileError(f"{path}: PNG is truncated inside chunk {ctype!r}")
        if zlib.crc32(ctype + body) != struct.unpack(">I", crc)[0]:
            raise DataFileError(f"{path}: PNG chunk {ctype!r} is corrupt (CRC mismatch)")
        pos += 12 + length
        if header is None and ctype != b"IHDR":
            raise DataFileError(f"{path}: PNG does not start with an IHDR chunk")
        if ctype == b"IHDR":
            if length != 13:
                raise DataFileError(f"{path}: PNG IHDR chunk has length {length}, expected 13")
            header = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if not idat:
        raise DataFileError(f"{path}: PNG has no image data (IDAT chunk)")
    return header, idat


def _unfilter(path, rows: np.ndarray, bpp: int) -> np.ndarray:
    """Undo the per-scanline PNG filters (None, Sub, Up, Average, Paeth); returns (H, stride)."""
    height, stride = rows.shape[0], rows.shape[1] - 1
    out = np.empty((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.int64)
    for r in range(height):
        ftype = int(rows[r, 0])
        line = rows[r, 1:].astype(np.int64)
        if ftype == 0:
            cur = line
        elif ftype == 1:  # Sub: running sum along each channel
            cur = np.cumsum(line.reshape(-1, bpp), axis=0).reshape(-1) % 256
        elif ftype == 2:  # Up
            cur = (line + prior) % 256
        elif ftype in (3, 4):  # Average, Paeth: sequential within the row
            cur = np.array(_unfilter_sequential(ftype, line.tolist(), prior.tolist(), bpp))
        else:
            raise DataFileError(f"{path}: PNG row {r} has invalid filter type {ftype}")
        out[r] = cur
        prior = cur
    return out


def _unfilter_sequential(ftype: int, line: list, prior: list, bpp: int) -> list:
    cur = [0] * len(line)
    for i, value in enumerate(line):
        a = cur[i - bpp] if i >= bpp else 0
        b = prior[i]
        if ftype == 3:
            cur[i] = (value + (a + b) // 2) & 0xFF
        else:
            c = prior[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
            cur[i] = (value + pred) & 0xFF
    return cur


# ---- Netpbm ----------------------------------------------------------------------------------
_PNM_CHANNELS = {b"P2": 1, b"P5": 1, b"P3": 3, b"P6": 3}


def read_pnm(path, data: bytes) -> np.ndarray:
    """Decode PGM/PPM, ASCII (P2/P3) or binary (P5/P6); pixels are divided by the file's maxval."""
    magic = data[:2]
    if magic not in _PNM_CHANNELS:
        raise DataFileError(
            f"{path}: not a PGM/PPM file (magic {magic!r}; only P2, P3, P5 and P6 are read)"
        )
    channels = _PNM_CHANNELS[magic]
    (width, height, maxval), pos = _pnm_header(path, data)
    if width == 0 or height == 0:
        raise DataFileError(f"{path}: image is empty ({width}x{height})")
    if not 0 < maxval < 65536:
        raise DataFileError(f"{path}: maxval {maxval} is outside 1..65535")
    count = width * height * channels
    if magic in (b"P5", b"P6"):
        dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
        if len(data) - pos < count * dtype.itemsize:
            raise DataFileError(
                f"{path}: pixel data is truncated ({len(data) - pos} bytes, "
                f"{count * dtype.itemsize} expected for {width}x{height})"
            )
        values = np.frombuffer(data, dtype=dtype, count=count, offset=pos).astype(np.int64)
    else:
        tokens = data[pos:].split()
        if len(tokens) < count:
            raise DataFileError(
                f"{path}: pixel data is truncated ({len(tokens)} values, {count} expected)"
            )
        try:
            values = np.array([int(t) for t in tokens[:count]], dtype=np.int64)
        except ValueError:
            raise DataFileError(f"{path}: pixel data holds a value that is not an integer") from None
    if values.min() < 0 or values.max() > maxval:
        raise DataFileError(f"{path}: pixel values exceed the declared maxval {maxval}")
    return (values.astype(np.float32) / np.float32(maxval)).reshape(height, width, channels)


def _pnm_header(path, data: bytes):
    """Width, height and maxval after the magic (comments allowed), and where the raster starts."""
    pos = 2
    fields = []
    while len(fields) < 3:
        while pos < len(data) and (data[pos : pos + 1].isspace() or data[pos : pos + 1] == b"#"):
            if data[pos : pos + 1] == b"#":
                while pos < len(data) and data[pos : pos + 1] not in (b"\n", b"\r"):
                    pos += 1
            else:
                pos += 1
        start = pos
        while pos < len(data) and data[pos : pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise DataFileError(f"{path}: malformed header (expected width, height and maxval)")
        fields.append(int(data[start:pos]))
    if pos >= len(data) or not data[pos : pos + 1].isspace():
        raise DataFileError(f"{path}: malformed header (no whitespace after maxval)")
    return fields, pos + 1
