"""Sample-data loading: every accepted form lands as the model's input, every bad file is named.

PNGs are written here by a small independent encoder that applies all five scanline filters, so
the reader's unfiltering is checked against the PNG specification rather than against itself.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import DataFileError
from workbench.models.data import Samples, load_samples
from workbench.models.loading import DEMO_CALIBRATION, DEMO_TEST

SHAPE = (8, 8, 1)
REPO = Path(__file__).resolve().parent.parent


def images(n=5, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


def load_error(path, shape=SHAPE, **kwargs) -> str:
    with pytest.raises(DataFileError) as info:
        load_samples(path, shape, **kwargs)
    message = str(info.value)
    assert str(path) in message
    return message


# ---- a tiny PNG encoder ------------------------------------------------------------------------
def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(ftype, row, prior, bpp):
    out = []
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, _paeth(a, b, c)][ftype]
        out.append((x - predictor) % 256)
    return bytes([ftype] + out)


def _chunk(ctype, body):
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png_bytes(pixels, colour_type, depth=8, interlace=0, filters=(0, 1, 2, 3, 4), raw=None):
    """PNG of ``pixels`` (H, W, C) uint8; row r uses filter ``filters[r % len(filters)]``."""
    height, width = pixels.shape[:2]
    if raw is None:
        rows = pixels.reshape(height, -1).tolist()
        bpp = pixels.shape[2]
        prior = [0] * len(rows[0])
        raw = b""
        for r, row in enumerate(rows):
            raw += _filter_row(filters[r % len(filters)], row, prior, bpp)
            prior = row
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def write_png(path, pixels, colour_type, **kwargs):
    path.write_bytes(png_bytes(pixels, colour_type, **kwargs))
    return path


def pixels_u8(h=8, w=8, c=1, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


# ---- valid array files -------------------------------------------------------------------------
def test_npz_with_labels_loads_as_given(tmp_path):
    x, y = images(), np.array([0, 3, 9, 2, 2])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    samples = load_samples(tmp_path / "d.npz", SHAPE, n_classes=10)
    assert samples.x.dtype == np.float32 and samples.x.shape == (5, 8, 8, 1)
    np.testing.assert_array_equal(samples.x, x)
    assert samples.y.dtype == np.int64
    np.testing.assert_array_equal(samples.y, y)
    assert samples.path == tmp_path / "d.npz"
    assert len(samples) == 5
    assert not samples.x.flags.writeable and not samples.y.flags.writeable


def test_npz_without_labels_and_extra_keys(tmp_path):
    np.savez(tmp_path / "d.npz", x=images(3), meta=np.array(["ignored"]))
    samples = load_samples(tmp_path / "d.npz", SHAPE)
    assert samples.y is None and samples.x.shape == (3, 8, 8, 1)


def test_compressed_npz_loads(tmp_path):
    np.savez_compressed(tmp_path / "d.npz", x=images(4), y=np.arange(4))
    np.testing.assert_array_equal(load_samples(tmp_path / "d.npz", SHAPE).y, np.arange(4))


def test_npy_single_sample_gets_batch_axis(tmp_path):
    x = images(1)[0]
    np.save(tmp_path / "one.npy", x)
    samples = load_samples(tmp_path / "one.npy", SHAPE)
    assert samples.x.shape == (1, 8, 8, 1) and samples.y is None
    np.testing.assert_array_equal(samples.x[0], x)


def test_missing_channel_axis_is_added_and_integers_are_not_rescaled(tmp_path):
    x = np.random.default_rng(2).integers(0, 17, (4, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "d.npy", x)
    samples = load_samples(tmp_path / "d.npy", SHAPE)
    assert samples.x.shape == (4, 8, 8, 1)
    np.testing.assert_array_equal(samples.x[..., 0], x.astype(np.float32))


def test_flat_rows_are_reshaped_channels_last(tmp_path):
    x = images(3, shape=(4, 4, 2))
    np.save(tmp_path / "flat.npy", x.reshape(3, -1))
    samples = load_samples(tmp_path / "flat.npy", (4, 4, 2))
    np.testing.assert_array_equal(samples.x, x)


def test_vector_input_model(tmp_path):
    x = images(6, shape=(64,))
    np.save(tmp_path / "v.npy", x)
    assert load_samples(tmp_path / "v.npy", (64,)).x.shape == (6, 64)


@pytest.mark.parametrize(
    "y, expected",
    [
        (np.eye(10)[[4, 0, 7]], [4, 0, 7]),  # one-hot
        (np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), [1, 0, 1]),  # probabilities
        (np.array([[4], [0], [7]]), [4, 0, 7]),  # a label column, not one-hot
        (np.array([4.0, 0.0, 7.0]), [4, 0, 7]),  # whole-number floats
        (np.array([4, 0, 7], dtype=np.uint8), [4, 0, 7]),
    ],
)
def test_label_forms(tmp_path, y, expected):
    np.savez(tmp_path / "d.npz", x=images(3), y=y)
    samples = load_samples(tmp_path / "d.npz", SHAPE)
    assert samples.y.dtype == np.int64
    np.testing.assert_array_equal(samples.y, expected)


def test_bundled_demo_data_fits_the_demo_model():
    test = load_samples(DEMO_TEST, SHAPE, n_classes=10)
    assert test.x.shape == (360, 8, 8, 1) and test.y.shape == (360,)
    assert 0.0 <= test.x.min() and test.x.max() <= 1.0
    assert set(np.unique(test.y)) == set(range(10))
    calibration = load_samples(DEMO_CALIBRATION, SHAPE)
    assert len(calibration) >= 100 and calibration.y is None


# ---- batches -----------------------------------------------------------------------------------
def test_batch_slices_x_and_y_and_is_short_at_the_end(tmp_path):
    np.savez(tmp_path / "d.npz", x=images(5), y=np.arange(5))
    samples = load_samples(tmp_path / "d.npz", SHAPE)
    first = samples.batch(0, 2)
    assert isinstance(first, Samples) and first.path == samples.path
    np.testing.assert_array_equal(first.x, samples.x[:2])
    np.testing.assert_array_equal(first.y, [0, 1])
    last = samples.batch(4, 2)
    assert len(last) == 1 and last.y.tolist() == [4]


def test_batch_without_labels(tmp_path):
    np.save(tmp_path / "d.npy", images(3))
    assert load_samples(tmp_path / "d.npy", SHAPE).batch(1, 5).y is None


@pytest.mark.parametrize("start, size", [(-1, 2), (5, 1), (0, 0)])
def test_batch_out_of_range(tmp_path, start, size):
    np.save(tmp_path / "d.npy", images(5))
    with pytest.raises(ValueError):
        load_samples(tmp_path / "d.npy", SHAPE).batch(start, size)


# ---- bad files ---------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    assert "no such file" in load_error(tmp_path / "nope.npz")


def test_directory_is_not_a_file(tmp_path):
    (tmp_path / "d.npz").mkdir()
    assert "not a file" in load_error(tmp_path / "d.npz")


def test_unsupported_format(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,3\n")
    message = load_error(tmp_path / "d.csv")
    assert "not a supported format" in message and ".npz" in message


def test_npz_that_is_not_a_zip(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"not a zip at all")
    assert ".npz" in load_error(tmp_path / "d.npz")


def test_corrupt_npy_header(tmp_path):
    (tmp_path / "d.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    assert "'x'" in load_error(tmp_path / "d.npy")


def test_missing_x_lists_what_is_there(tmp_path):
    np.savez(tmp_path / "d.npz", images=images(), labels=np.arange(5))
    message = load_error(tmp_path / "d.npz")
    assert "missing 'x'" in message and "'images'" in message and "'labels'" in message


@pytest.mark.parametrize("key", ["x", "y"])
def test_pickled_objects_are_refused(tmp_path, key):
    arrays = {"x": images(2), "y": np.arange(2)}
    arrays[key] = np.array([{"a": 1}, None], dtype=object)
    np.savez(tmp_path / "d.npz", **arrays)
    message = load_error(tmp_path / "d.npz")
    assert f"'{key}'" in message and "pickled" in message


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "d.npy", np.array([[1, 2], "three"], dtype=object), allow_pickle=True)
    message = load_error(tmp_path / "d.npy")
    assert "'x'" in message and "pickled" in message


@pytest.mark.parametrize(
    "x",
    [np.full((2, 8, 8, 1), "a"), np.zeros((2, 8, 8, 1), dtype=np.complex64)],
    ids=["strings", "complex"],
)
def test_non_numeric_x(tmp_path, x):
    np.savez(tmp_path / "d.npz", x=x)
    message = load_error(tmp_path / "d.npz")
    assert "'x'" in message and "non-numeric" in message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x(tmp_path, bad):
    x = images()
    x[2, 3, 4, 0] = bad
    np.save(tmp_path / "d.npy", x)
    message = load_error(tmp_path / "d.npy")
    assert "'x'" in message and "NaN or Inf" in message


def test_float64_beyond_float32_range_is_non_finite(tmp_path):
    x = images().astype(np.float64)
    x[0, 0, 0, 0] = 1e300
    np.save(tmp_path / "d.npy", x)
    assert "NaN or Inf" in load_error(tmp_path / "d.npy")


def test_empty_x(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((0, 8, 8, 1), dtype=np.float32))
    message = load_error(tmp_path / "d.npy")
    assert "'x'" in message and "empty" in message


@pytest.mark.parametrize("shape", [(3, 8, 7, 1), (3, 8, 8, 3), (3, 63), (8, 8), (3, 2, 8, 8, 1)])
def test_x_shape_not_fitting_the_model(tmp_path, shape):
    np.save(tmp_path / "d.npy", np.zeros(shape, dtype=np.float32))
    message = load_error(tmp_path / "d.npy")
    assert "'x'" in message and str(shape) in message
    assert "(N, 8, 8, 1)" in message and "(N, 8, 8)" in message and "(N, 64)" in message


@pytest.mark.parametrize(
    "y, words",
    [
        (np.arange(4), ["4 labels", "5 samples"]),
        (np.array([0, 1, 2, 3, 10]), ["label 10", "0..9"]),
        (np.array([0, 1, -1, 3, 4]), ["negative"]),
        (np.array([0.0, 1.5, 2.0, 3.0, 4.0]), ["non-integer"]),
        (np.array(["0", "1", "2", "3", "4"]), ["non-numeric"]),
        (np.array([0.0, np.nan, 2.0, 3.0, 4.0]), ["NaN"]),
        (np.zeros((5, 2, 2), dtype=np.int64), ["(5, 2, 2)"]),
        (np.eye(5), ["5 classes", "10"]),
        (np.array([True, False, True, True, False]), ["dtype bool"]),
    ],
    ids=["length", "range", "negative", "fraction", "strings", "nan", "3d", "one-hot", "bool"],
)
def test_bad_labels_name_y(tmp_path, y, words):
    np.savez(tmp_path / "d.npz", x=images(5), y=y)
    message = load_error(tmp_path / "d.npz", n_classes=10)
    assert "'y'" in message
    for word in words:
        assert word in message


def test_labels_unchecked_against_classes_when_unknown(tmp_path):
    np.savez(tmp_path / "d.npz", x=images(2), y=np.array([0, 42]))
    assert load_samples(tmp_path / "d.npz", SHAPE).y.tolist() == [0, 42]


# ---- size limits, checked before anything is loaded -------------------------------------------
@pytest.fixture
def np_load_forbidden(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("np.load was called for a file that should be refused first")

    monkeypatch.setattr(np, "load", refuse)


def test_file_larger_than_limit(tmp_path, np_load_forbidden):
    np.save(tmp_path / "d.npy", images(10))
    message = load_error(tmp_path / "d.npy", max_bytes=1000)
    assert "limit of 1000" in message


def test_npz_declared_size_is_checked_before_loading(tmp_path, np_load_forbidden):
    # 8 MB of zeros compresses to a few KB: only the member headers reveal the real size.
    np.savez_compressed(tmp_path / "bomb.npz", x=np.zeros((1000, 1000), dtype=np.float64))
    assert (tmp_path / "bomb.npz").stat().st_size < 100_000
    message = load_error(tmp_path / "bomb.npz", shape=(1000,), max_bytes=1_000_000)
    assert "'x'" in message and "8000000" in message


def test_float32_conversion_counts_against_the_limit(tmp_path, np_load_forbidden):
    np.save(tmp_path / "d.npy", np.zeros((100, 8, 8, 1), dtype=np.uint8))  # 6.4 KB stored
    message = load_error(tmp_path / "d.npy", max_bytes=20_000)
    assert "25600" in message  # 6400 values as float32


# ---- Netpbm ------------------------------------------------------------------------------------
def test_binary_pgm(tmp_path):
    pixels = pixels_u8()
    (tmp_path / "d.pgm").write_bytes(b"P5\n8 8\n255\n" + pixels.tobytes())
    samples = load_samples(tmp_path / "d.pgm", SHAPE, n_classes=10)
    assert samples.x.shape == (1, 8, 8, 1) and samples.y is None
    np.testing.assert_allclose(samples.x[0], pixels / 255.0, rtol=1e-6)


def test_ascii_pgm_with_comments_and_small_maxval(tmp_path):
    values = np.arange(64).reshape(8, 8) % 16
    body = "\n".join(" ".join(str(v) for v in row) for row in values)
    (tmp_path / "d.pgm").write_text(f"P2\n# made by hand\n8 # width\n8\n15\n{body}\n")
    samples = load_samples(tmp_path / "d.pgm", SHAPE)
    np.testing.assert_allclose(samples.x[0, :, :, 0], values / 15.0, rtol=1e-6)


def test_sixteen_bit_pgm_is_big_endian(tmp_path):
    values = np.full((8, 8), 1000, dtype=">u2")
    values[0, 0] = 4000
    (tmp_path / "d.pgm").write_bytes(b"P5 8 8 4000\n" + values.tobytes())
    x = load_samples(tmp_path / "d.pgm", SHAPE).x
    assert x[0, 0, 0, 0] == 1.0 and x[0, 1, 1, 0] == pytest.approx(0.25)


def test_ppm_colour_becomes_luma_for_gray_model(tmp_path):
    rgb = pixels_u8(c=3)
    (tmp_path / "d.ppm").write_bytes(b"P6\n8 8\n255\n" + rgb.tobytes())
    x = load_samples(tmp_path / "d.ppm", SHAPE).x
    expected = (rgb / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(x[0, :, :, 0], expected, atol=1e-6)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"P1\n8 8\n" + b"0 " * 64, ["P1"]),
        (b"P5\n8 8\n255\n" + bytes(10), ["truncated"]),
        (b"P2\n8 8\n10\n" + b"11 " * 64, ["maxval 10"]),
        (b"P5\n8 x\n255\n", ["malformed header"]),
        (b"P5\n8 8\n0\n", ["maxval 0"]),
    ],
    ids=["bitmap", "truncated", "over-maxval", "header", "zero-maxval"],
)
def test_bad_pgm(tmp_path, data, words):
    (tmp_path / "d.pgm").write_bytes(data)
    message = load_error(tmp_path / "d.pgm")
    for word in words:
        assert word in message


# ---- PNG ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (4, 3, 2, 1, 0)])
def test_png_gray_every_filter(tmp_path, filters):
    pixels = pixels_u8(h=8, w=8)
    path = write_png(tmp_path / "d.png", pixels, colour_type=0, filters=filters)
    x = load_samples(path, SHAPE).x
    np.testing.assert_array_equal(np.round(x[0] * 255).astype(np.uint8), pixels)


def test_png_paeth_ties_follow_the_spec_order(tmp_path):
    # Small values make |p-b| == |p-c| with b != c common (e.g. a=1, b=4, c=2); b must win.
    pixels = np.random.default_rng(4).integers(0, 7, (16, 16, 1), dtype=np.uint8)
    path = write_png(tmp_path / "d.png", pixels, colour_type=0, filters=(4,))
    x = load_samples(path, (16, 16, 1)).x
    np.testing.assert_array_equal(np.round(x[0] * 255).astype(np.uint8), pixels)


@pytest.mark.parametrize("colour_type, channels", [(2, 3), (6, 4)])
def test_png_colour_filters_use_whole_pixels(tmp_path, colour_type, channels):
    pixels = pixels_u8(h=6, w=5, c=channels)
    path = write_png(tmp_path / "d.png", pixels, colour_type=colour_type)
    x = load_samples(path, (6, 5, 3)).x
    np.testing.assert_array_equal(np.round(x[0] * 255).astype(np.uint8), pixels[..., :3])


def test_png_rgb_to_gray_and_gray_alpha_drops_alpha(tmp_path):
    rgb = pixels_u8(c=3)
    x = load_samples(write_png(tmp_path / "c.png", rgb, colour_type=2), SHAPE).x
    expected = (rgb / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(x[0, :, :, 0], expected, atol=1e-6)
    gray_alpha = pixels_u8(c=2)
    x = load_samples(write_png(tmp_path / "ga.png", gray_alpha, colour_type=4), SHAPE).x
    np.testing.assert_allclose(x[0], gray_alpha[..., :1] / 255.0, rtol=1e-6)


def test_gray_png_for_colour_model_is_repeated(tmp_path):
    pixels = pixels_u8()
    x = load_samples(write_png(tmp_path / "d.png", pixels, colour_type=0), (8, 8, 3)).x
    assert x.shape == (1, 8, 8, 3)
    np.testing.assert_array_equal(x[0, ..., 0], x[0, ..., 2])


def test_png_from_libpng_via_qt(tmp_path):
    """An independent encoder (libpng inside Qt, adaptive filters) if Qt happens to be present."""
    qtgui = pytest.importorskip("PyQt6.QtGui")
    rgb = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    image = qtgui.QImage(rgb.tobytes(), 30, 20, 90, qtgui.QImage.Format.Format_RGB888)
    assert image.save(str(tmp_path / "qt.png"), "PNG")
    x = load_samples(tmp_path / "qt.png", (20, 30, 3)).x
    np.testing.assert_array_equal(np.round(x[0] * 255).astype(np.uint8), rgb)


def _bad_png_cases():
    gray = pixels_u8()
    good = png_bytes(gray, 0)
    corrupt_crc = bytearray(good)
    corrupt_crc[30] ^= 0xFF  # inside the IHDR body
    bad_filter = png_bytes(gray, 0, raw=bytes([7] + [0] * 8) * 8)
    short_rows = png_bytes(gray, 0, raw=bytes(20))
    return [
        (b"\x89PNX" + good[4:], ["signature"]),
        (png_bytes(gray, 0, depth=16, raw=b""), ["bit depth 16"]),
        (png_bytes(gray, 3, raw=b""), ["palette"]),
        (png_bytes(gray, 0, interlace=1, raw=b""), ["interlaced"]),
        (bytes(corrupt_crc), ["CRC"]),
        (good[:40], ["truncated"]),
        (bad_filter, ["filter type 7"]),
        (short_rows, ["20 bytes", "expected 72"]),
    ]


@pytest.mark.parametrize(
    "data, words",
    _bad_png_cases(),
    ids=["signature", "16-bit", "palette", "interlaced", "crc", "truncated", "filter", "short"],
)
def test_bad_png(tmp_path, data, words):
    (tmp_path / "d.png").write_bytes(data)
    message = load_error(tmp_path / "d.png")
    for word in words:
        assert word in message


def test_png_decompression_bomb_is_refused_from_the_header(tmp_path):
    # The header promises 20000 x 20000 gray pixels (400 MB); only the first rows are present,
    # since the header alone must get the file refused, before any decompression.
    raw = zlib.compress(bytes(20001) * 200)
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b"")
    (tmp_path / "big.png").write_bytes(data)
    message = load_error(tmp_path / "big.png", shape=(20000, 20000, 1), max_bytes=10_000_000)
    assert "20000x20000" in message and "limit" in message


def test_png_size_must_match_exactly(tmp_path):
    path = write_png(tmp_path / "d.png", pixels_u8(h=8, w=9), colour_type=0)
    message = load_error(path)
    assert "'image size'" in message and "9x8" in message and "8x8" in message


def test_image_channels_that_cannot_be_converted(tmp_path):
    path = write_png(tmp_path / "d.png", pixels_u8(c=3), colour_type=2)
    message = load_error(path, shape=(8, 8, 2))
    assert "'channels'" in message


def test_image_for_a_vector_model(tmp_path):
    path = write_png(tmp_path / "d.png", pixels_u8(), colour_type=0)
    assert "not an image" in load_error(path, shape=(64,))
