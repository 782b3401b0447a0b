"""Tests of the ffcvx-turbojpeg decoder backend.

Tolerances, stated once:

- full decode vs FFCV 1.0.2's golden pixels: exact;
- crop decode vs full decode then crop: exact everywhere, edges included
  (libjpeg is asked for one context pixel around the crop, and
  ``jpeg_skip_scanlines`` keeps the upsampling context), for 4:2:0, 4:2:2,
  4:4:4 and progressive JPEGs;
- decode at a reduced DCT scale vs full decode of the area the scaled pixels
  cover + ffcvx resize to the same size: mean absolute difference <=
  SCALED_MEAN[k] (the DCT-domain downscale is a different low-pass filter than
  the triangle resize; a crop mapped off by a few pixels gives larger means).
"""
import io
import json
import threading

import numpy as np
import pytest
from PIL import Image

from ffcvx.errors import DecodeError
from ffcvx._ext.resize import resize_rgb

from _turbojpeg_common import DECODE_PROTO, call_c, jpeg_bytes, shared_dir

# mean |scaled decode - full decode + resize| allowed, per DCT scale k/8
# (observed maxima on the shared photos: 6.7 at 1/8, 4.6 at 1/4, 5.6 at 1/2)
SCALED_MEAN = {1: 8.0, 2: 6.0, 4: 6.5, 8: 0.0}


# --- the backend object ------------------------------------------------------------

def test_backend_object(backend):
    assert backend.name == "turbojpeg"
    assert backend.formats == frozenset({"jpeg"})
    assert backend.supports_crop is True and backend.supports_scale is True
    assert backend.device == "cpu" and backend.kind == "native"
    assert isinstance(backend.function_address("decode_region"), int)
    with pytest.raises(KeyError):
        backend.function_address("decode")


# --- FFCV golden pixels --------------------------------------------------------------

def golden_samples():
    folder = shared_dir() / "golden" / "ffcv-1.0.2"
    meta = json.loads((folder / "rgb_jpg.json").read_text())
    layout = meta["layout"]
    num = meta["header"]["num_samples"]
    num_fields = meta["header"]["num_fields"]
    raw = np.fromfile(folder / "rgb_jpg.beton", dtype=np.uint8)
    start = 24 + 1041 * num_fields
    assert start == layout["metadata_offset"]
    item = layout["metadata_itemsize"]
    image_offset = layout["metadata_member_offsets"][0]
    records = raw[start:start + item * num].reshape(num, item)
    # RGB record: mode u1 @0, width u2 @1, height u2 @3, data_ptr u8 @5 (packed)
    ptrs = records[:, image_offset + 5:image_offset + 13].copy().view("<u8").ravel()
    heights = records[:, image_offset + 3:image_offset + 5].copy().view("<u2").ravel()
    widths = records[:, image_offset + 1:image_offset + 3].copy().view("<u2").ravel()
    image = meta["samples"]["image"]
    expected = np.load(folder / "rgb_jpg.npz")
    for i in range(num):
        size = image["stored_sizes"][i]
        yield (i, raw[ptrs[i]:ptrs[i] + size], (int(heights[i]), int(widths[i])),
               expected[image["npz_key_prefix"] + str(i)])


def test_full_decode_equals_ffcv_golden_pixels(backend):
    count = 0
    for i, data, (h, w), pixels in golden_samples():
        got = backend.decode_region_py(data)
        assert got.shape == (h, w, 3) == pixels.shape, i
        np.testing.assert_array_equal(got, pixels, err_msg=f"sample {i}")
        count += 1
    assert count == 60


def test_golden_crops_equal_golden_pixels_cropped(backend):
    rng = np.random.default_rng(0)
    for i, data, (h, w), pixels in golden_samples():
        for _ in range(4):
            ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            got = backend.decode_region_py(data, (y, x, ch, cw))
            np.testing.assert_array_equal(got, pixels[y:y + ch, x:x + cw],
                                          err_msg=f"sample {i} crop {(y, x, ch, cw)}")


# --- crops -------------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    {"subsampling": 2}, {"subsampling": 1}, {"subsampling": 0},
    {"subsampling": 2, "progressive": True}], ids=["420", "422", "444", "progressive"])
def test_crop_equals_full_decode_cropped(backend, photos, options):
    rng = np.random.default_rng(1)
    for img in photos[::2]:
        data = jpeg_bytes(img, **options)
        full = backend.decode_region_py(data)
        H, W = full.shape[:2]
        crops = [(0, 0, H, W), (0, 0, 1, 1), (H - 1, W - 1, 1, 1), (0, W - 17, H, 17),
                 (H // 2, 1, H - H // 2, W - 2), (7, 16, 16, 32)]
        for _ in range(25):
            h, w = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
            crops.append((int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w))
        for y, x, h, w in crops:
            got = backend.decode_region_py(data, (y, x, h, w))
            np.testing.assert_array_equal(got, full[y:y + h, x:x + w],
                                          err_msg=f"crop {(y, x, h, w)} of {H}x{W}")


# --- DCT scaling ---------------------------------------------------------------------

def expected_k(crop_h, crop_w, target_h, target_w):
    for k in (1, 2, 4):
        if crop_h * k >= 8 * target_h and crop_w * k >= 8 * target_w:
            return k
    return 8


def scaled_range(start, length, k):
    lo = (2 * start * k + 8) // 16
    hi = (2 * (start + length) * k + 8) // 16
    return lo, hi


def test_scaled_decode_close_to_full_decode_plus_resize(backend, photos):
    rng = np.random.default_rng(2)
    seen_k = set()
    for img in photos[::2]:
        data = jpeg_bytes(img)
        full = backend.decode_region_py(data)
        H, W = full.shape[:2]
        cases = [((0, 0, H, W), (H // 2, W // 2)), ((0, 0, H, W), (H // 8, W // 8)),
                 ((0, 0, H, W), (H // 4 + 1, 10))]
        for _ in range(6):
            h, w = int(rng.integers(H // 3, H + 1)), int(rng.integers(W // 3, W + 1))
            crop = (int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w)
            cases.append((crop, (int(rng.integers(8, h // 2 + 9)), int(rng.integers(8, w // 2 + 9)))))
        for (y, x, h, w), target in cases:
            got = backend.decode_region_py(data, (y, x, h, w), target)
            k = expected_k(h, w, *target)
            seen_k.add(k)
            y0, y1 = scaled_range(y, h, k)
            x0, x1 = scaled_range(x, w, k)
            assert got.shape == (y1 - y0, x1 - x0, 3), ((y, x, h, w), target, k)
            assert got.shape[0] >= target[0] and got.shape[1] >= target[1]
            # the full-resolution area the scaled pixels cover
            s = 8 // k
            ref = np.empty_like(got)
            resize_rgb(full[y0 * s:min(y1 * s, H), x0 * s:min(x1 * s, W)], ref)
            diff = np.abs(got.astype(np.int16) - ref)
            assert diff.mean() <= SCALED_MEAN[k], ((y, x, h, w), target, k, diff.mean())
    assert {1, 2, 4} <= seen_k


def test_target_zero_or_small_crop_means_full_scale(backend, photos):
    data = jpeg_bytes(photos[0])
    full = backend.decode_region_py(data)
    np.testing.assert_array_equal(backend.decode_region_py(data, None, (0, 0)), full)
    np.testing.assert_array_equal(backend.decode_region_py(data, (5, 6, 50, 60), (224, 224)),
                                  full[5:55, 6:66])


# --- colour spaces ------------------------------------------------------------------------

def test_grayscale_jpeg_expands_to_rgb(backend, photos):
    gray = photos[0].convert("L")
    data = jpeg_bytes(gray)
    got = backend.decode_region_py(data)
    assert got.shape == (gray.height, gray.width, 3)
    np.testing.assert_array_equal(got[..., 0], got[..., 1])
    np.testing.assert_array_equal(got[..., 0], got[..., 2])
    pillow = np.asarray(Image.open(io.BytesIO(data)))  # ISLOW vs our IFAST DCT
    assert np.abs(got[..., 0].astype(int) - pillow).max() <= 6
    crop = backend.decode_region_py(data, (10, 20, 30, 40))
    np.testing.assert_array_equal(crop, got[10:40, 20:60])


def test_cmyk_jpeg_is_a_clear_decode_error(backend, photos):
    data = jpeg_bytes(photos[0].convert("CMYK"))
    with pytest.raises(DecodeError, match="CMYK"):
        backend.decode_region_py(data)


# --- corrupt data ---------------------------------------------------------------------------

def test_not_a_jpeg_reports_libjpegs_message(backend):
    with pytest.raises(DecodeError, match="Not a JPEG file"):
        backend.decode_region_py(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)


def test_truncated_jpeg_is_a_decode_error(backend, photos):
    data = jpeg_bytes(photos[0])
    with pytest.raises(DecodeError, match="Premature end of JPEG file"):
        backend.decode_region_py(data[:len(data) // 2])
    for cut in list(range(0, 700, 7)) + list(range(700, len(data) - 2, 997)):
        with pytest.raises(DecodeError) as info:
            backend.decode_region_py(data[:cut] if cut else b"\xff")
        assert str(info.value).strip(), cut


def test_random_corruption_never_crashes(backend, photos):
    """Byte flips either decode (to some image) or raise DecodeError with a message."""
    rng = np.random.default_rng(3)
    data = np.frombuffer(jpeg_bytes(photos[1]), np.uint8)
    errors = 0
    for trial in range(400):
        bad = data.copy()
        n = int(rng.integers(1, 6))
        pos = rng.integers(0, bad.size, n)
        bad[pos] = rng.integers(0, 256, n, dtype=np.uint8)
        crop = None if trial % 2 else (10, 30, 100, 120)
        try:
            out = backend.decode_region_py(bad, crop)
        except DecodeError as exc:
            assert str(exc).strip()
            errors += 1
        else:
            assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
            if crop is not None:
                assert out.shape == (100, 120, 3)
    assert errors > 0


# --- C-level contract ----------------------------------------------------------------------

def test_c_status_codes(backend, photos, c_decode):
    data = jpeg_bytes(photos[0])
    full = backend.decode_region_py(data)
    H, W = full.shape[:2]
    crop = (3, 5, 40, 50)
    status, out, hw = call_c(c_decode, data, crop, (0, 0), 40 * 50 * 3)
    assert status == 0 and hw == (40, 50)
    np.testing.assert_array_equal(out.reshape(40, 50, 3), full[3:43, 5:55])
    status, _, hw = call_c(c_decode, data, crop, (0, 0), 40 * 50 * 3 - 1)
    assert status == -2 and hw == (40, 50)          # size reported for the retry
    for bad in [(0, 0, 0, 10), (0, 0, 10, -1), (-1, 0, 5, 5), (0, 0, H + 1, W),
                (0, W - 10, 5, 11), (H, 0, 1, 1)]:
        assert call_c(c_decode, data, bad, (0, 0), H * W * 3)[0] == -3, bad
    assert call_c(c_decode, data[:200], (0, 0, 5, 5), (0, 0), 75)[0] == -1
    assert call_c(c_decode, b"garbage!" * 20, (0, 0, 5, 5), (0, 0), 75)[0] == -1
    src = np.frombuffer(data, np.uint8)
    hw = np.zeros(2, np.int64)
    assert c_decode(src.ctypes.data, 0, 0, 0, 5, 5, 0, 0, None, 0, hw.ctypes.data) == -3
    assert c_decode(None, 100, 0, 0, 5, 5, 0, 0, None, 0, hw.ctypes.data) == -3


def test_python_bad_crop_raises_value_error(backend, photos):
    data = jpeg_bytes(photos[0])
    with pytest.raises(ValueError, match="not inside"):
        backend.decode_region_py(data, (0, 0, 10_000, 10))
    with pytest.raises(ValueError):
        backend.decode_region_py(data, (0, 0, 0, 10))


def test_numba_nogil_calls_match_serial_in_two_threads(backend, photos):
    from numba import njit
    fn = DECODE_PROTO(backend.function_address("decode_region"))

    @njit(nogil=True)
    def decode_many(blob, offsets, crops, out, hws, status):
        for i in range(crops.shape[0]):
            j = i % (offsets.size - 1)
            src = blob[offsets[j]:offsets[j + 1]]
            status[i] = fn(src.ctypes.data, src.size, crops[i, 0], crops[i, 1], crops[i, 2],
                           crops[i, 3], 112, 112, out[i].ctypes.data, out[i].size,
                           hws[i].ctypes.data)

    blobs = [np.frombuffer(jpeg_bytes(img), np.uint8) for img in photos[:6]]
    sizes = [np.asarray(img).shape[:2] for img in photos[:6]]
    offsets = np.cumsum([0] + [b.size for b in blobs]).astype(np.int64)
    blob = np.concatenate(blobs)
    rng = np.random.default_rng(4)
    n = 48
    crops = np.zeros((n, 4), np.int64)
    for i in range(n):
        H, W = sizes[i % 6]
        h, w = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
        crops[i] = (rng.integers(0, H - h + 1), rng.integers(0, W - w + 1), h, w)

    def run(out, hws, status):
        decode_many(blob, offsets, crops, out, hws, status)

    cap = max(h * w for h, w in sizes) * 3
    serial = (np.zeros((n, cap), np.uint8), np.zeros((n, 2), np.int64), np.zeros(n, np.int32))
    run(*serial)
    assert (serial[2] == 0).all()
    parallel = [(np.zeros((n, cap), np.uint8), np.zeros((n, 2), np.int64), np.zeros(n, np.int32))
                for _ in range(2)]
    threads = [threading.Thread(target=run, args=p) for p in parallel]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in parallel:
        for a, b in zip(p, serial):
            np.testing.assert_array_equal(a, b)
    # and the compiled results equal the Python-facing decoder
    for i in range(0, n, 7):
        h, w = serial[1][i]
        ref = backend.decode_region_py(blobs[i % 6], tuple(crops[i]), (112, 112))
        np.testing.assert_array_equal(serial[0][i, :h * w * 3].reshape(h, w, 3), ref)
