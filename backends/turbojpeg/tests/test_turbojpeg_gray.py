"""Tests of the turbojpeg backend's one-channel decode, ``decode_region_gray`` (BKD-025, BKD-026).

Fixtures (``backend``, ``photos``, ``c_decode``) are in this folder's conftest.py.
"""
import io

import numpy as np
import pytest
from PIL import Image

from ffcvx.errors import DecodeError

from _turbojpeg_common import DECODE_PROTO, call_c, jpeg_bytes


# --- one channel: decode_region_gray (BKD-025, BKD-026) ---------------------------------------

@pytest.fixture(scope="module")
def c_decode_gray(backend):
    return DECODE_PROTO(backend.function_address("decode_region_gray"))


def gray_jpegs(photos):
    """One-component JPEGs of three photos: baseline, progressive, restart markers, odd sizes."""
    out = []
    for i, photo in enumerate(photos[:3]):
        gray = photo.convert("L")
        if i == 1:
            gray = gray.crop((0, 0, gray.width - 3, gray.height - 5))
        out += [jpeg_bytes(gray), jpeg_bytes(gray, progressive=True),
                jpeg_bytes(gray, quality=75, restart_marker_blocks=2)]
    return out


def test_gray_decode_is_channel0_of_rgb_decode(backend, photos, c_decode, c_decode_gray):
    """Exactly channel 0 of decode_region, for whole images, crops at edges and odd offsets,
    and every DCT scale; from C and from Python."""
    assert backend.supports_gray is True
    count = 0
    for data in gray_jpegs(photos):
        H, W = backend.decode_region_py(data).shape[:2]
        cases = [((0, 0, H, W), (0, 0)), ((0, 0, 1, 1), (0, 0)), ((H - 1, W - 1, 1, 1), (0, 0)),
                 ((7, 9, H - 20, W - 13), (0, 0)), ((H // 3, W // 5, H // 2, W // 2), (0, 0)),
                 ((0, 0, H, W), (H // 2, W // 2)), ((0, 0, H, W), (H // 4, W // 4)),
                 ((0, 0, H, W), (H // 8, W // 8)), ((5, 3, H - 9, W - 7), (56, 56)),
                 ((H // 4, W // 3, 100, 90), (30, 30))]
        for crop, target in cases:
            rgb = backend.decode_region_py(data, crop, target)
            gray = backend.decode_region_py(data, crop, target, gray=True)
            assert gray.shape == rgb.shape[:2] and gray.flags.c_contiguous
            np.testing.assert_array_equal(gray, rgb[..., 0], err_msg=f"{crop} {target}")
            h, w = gray.shape
            status, out, hw = call_c(c_decode_gray, data, crop, target, h * w)
            assert status == 0 and hw == (h, w)
            np.testing.assert_array_equal(out.reshape(h, w), gray)
            count += 1
    assert count == 90


def test_gray_c_status_codes(backend, photos, c_decode_gray):
    data = jpeg_bytes(photos[0].convert("L"))
    H, W = backend.decode_region_py(data, gray=True).shape
    status, out, hw = call_c(c_decode_gray, data, (3, 5, 40, 50), (0, 0), 40 * 50 - 1)
    assert status == -2 and hw == (40, 50) and not out.any()   # nothing written, size reported
    status, _, hw = call_c(c_decode_gray, data, (0, 0, H, W), (0, 0), 0)
    assert status == -2 and hw == (H, W)
    for bad in [(0, 0, 0, 10), (-1, 0, 5, 5), (0, 0, H + 1, W), (0, W - 10, 5, 11)]:
        assert call_c(c_decode_gray, data, bad, (0, 0), H * W)[0] == -3, bad
    for cut in (4, 200, len(data) // 2, len(data) - 2):
        assert call_c(c_decode_gray, data[:cut], (0, 0, H, W), (0, 0), H * W)[0] == -1, cut
    assert call_c(c_decode_gray, b"garbage!" * 20, (0, 0, 5, 5), (0, 0), 25)[0] == -1
    hw = np.zeros(2, np.int64)
    assert c_decode_gray(None, 100, 0, 0, 5, 5, 0, 0, None, 0, hw.ctypes.data) == -3
    with pytest.raises(DecodeError, match="CMYK"):
        backend.decode_region_py(jpeg_bytes(photos[0].convert("CMYK")), gray=True)


def test_gray_of_a_colour_jpeg_is_its_luma(backend, photos):
    """Not fixed by BKD-026; libjpeg gives Y, close to Pillow's 'L' of the RGB decode."""
    data = jpeg_bytes(photos[2])
    gray = backend.decode_region_py(data, gray=True).astype(int)
    luma = np.asarray(Image.open(io.BytesIO(data)).convert("L")).astype(int)
    diff = np.abs(gray - luma)
    assert diff.mean() < 1.5 and diff.max() <= 16, (diff.mean(), diff.max())


def test_gray_random_corruption_never_crashes(backend, photos):
    rng = np.random.default_rng(4)
    data = np.frombuffer(jpeg_bytes(photos[1].convert("L")), np.uint8)
    errors = 0
    for trial in range(300):
        bad = data.copy()
        pos = rng.integers(0, bad.size, 3)
        bad[pos] = rng.integers(0, 256, 3, dtype=np.uint8)
        crop = None if trial % 2 else (10, 30, 100, 120)
        try:
            out = backend.decode_region_py(bad, crop, gray=True)
        except DecodeError as exc:
            assert str(exc).strip()
            errors += 1
        else:
            assert out.dtype == np.uint8 and out.ndim == 2
    assert errors > 0
