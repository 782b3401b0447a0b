"""Tests of the RGB resize kernel (ffcvx/_ext/resize.pyx).

The reference is Pillow's ``Image.resize(size, Image.BILINEAR)``, the same
filter family (triangle filter widened by the downscale factor). ffcvx runs
the vertical pass first and uses 14-bit weights where Pillow goes horizontal
first with 22-bit weights; both round the intermediate image to uint8, so the
outputs differ by at most one level here and a mean well below 0.5.
"""
import ctypes
import glob
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ffcvx._ext.resize import resize_rgb, resize_scratch_bytes

# max |ours - Pillow| and mean |ours - Pillow| allowed on real photos
MAX_DIFF = 1
MEAN_DIFF = 0.35


def shared_dir():
    """The shared data folder: ``<repo>/../shared``, else ``/work/shared``."""
    candidate = Path(__file__).resolve().parents[1].parent / "shared"
    if (candidate / "data" / "photos").is_dir():
        return candidate
    return Path("/work/shared")


def photos():
    files = sorted(glob.glob(str(shared_dir() / "data" / "photos" / "*" / "*.jpg")))
    if not files:
        pytest.skip("no photos in the shared data folder")
    return files


def load(path):
    return np.asarray(Image.open(path).convert("RGB"))


def pillow_resize(img, h, w):
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def ours(img, h, w, **kw):
    out = np.empty((h, w, 3), np.uint8)
    assert resize_rgb(img, out, **kw) is out
    return out


def assert_close_to_pillow(img, h, w):
    got = ours(img, h, w).astype(np.int16)
    ref = pillow_resize(img, h, w).astype(np.int16)
    diff = np.abs(got - ref)
    assert diff.max() <= MAX_DIFF, (img.shape, (h, w), diff.max())
    assert diff.mean() <= MEAN_DIFF, (img.shape, (h, w), diff.mean())


@pytest.mark.parametrize("factor", [0.15, 0.3, 0.5, 0.7, 0.9])
def test_downscale_matches_pillow(factor):
    for path in photos()[::3]:
        img = load(path)
        h = max(1, int(img.shape[0] * factor))
        w = max(1, int(img.shape[1] * factor * 1.1))
        assert_close_to_pillow(img, h, w)


@pytest.mark.parametrize("size", [(224, 224), (160, 160), (96, 128)])
def test_training_sizes_match_pillow(size):
    for path in photos()[1::4]:
        assert_close_to_pillow(load(path), *size)


@pytest.mark.parametrize("factor", [1.3, 2.0, 3.7])
def test_upscale_matches_pillow(factor):
    for path in photos()[::5]:
        img = load(path)[:80, :120]
        assert_close_to_pillow(img, int(80 * factor), int(120 * factor))


def test_one_axis_only():
    img = load(photos()[0])
    h, w = img.shape[:2]
    assert_close_to_pillow(img, h, w // 2 + 3)      # horizontal pass only
    assert_close_to_pillow(img, h // 2 + 3, w)      # vertical pass only
    assert_close_to_pillow(img, h, 2 * w)


def test_identity_is_exact():
    img = load(photos()[0])
    np.testing.assert_array_equal(ours(img, *img.shape[:2]), img)


def test_strided_source_view():
    img = load(photos()[0])
    view = img[13:213, 21:321]                       # rows are strided, pixels packed
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(ours(view, 111, 77), ours(np.ascontiguousarray(view), 111, 77))


def test_tiny_sizes():
    img = load(photos()[0])
    one = ours(img, 1, 1)
    ref = pillow_resize(img, 1, 1)
    assert np.abs(one.astype(int) - ref).max() <= MAX_DIFF
    pixel = np.array([[[10, 200, 30]]], np.uint8)
    np.testing.assert_array_equal(ours(pixel, 1, 1), pixel)
    np.testing.assert_array_equal(ours(pixel, 5, 3), np.broadcast_to(pixel, (5, 3, 3)))
    for (h, w), (H, W) in [((1, 7), (3, 2)), ((9, 1), (2, 4)), ((2, 2), (1, 1)), ((3, 3), (40, 1))]:
        src = np.random.default_rng(h * 10 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
        got = ours(src, H, W).astype(int)
        assert np.abs(got - pillow_resize(src, H, W)).max() <= MAX_DIFF


def test_constant_image_stays_constant():
    src = np.full((123, 77, 3), (255, 0, 128), np.uint8)
    for H, W in [(224, 224), (10, 300), (1, 1), (61, 38)]:
        np.testing.assert_array_equal(ours(src, H, W), np.broadcast_to(src[:1, :1], (H, W, 3)))


def test_simd_and_portable_paths_agree():
    rng = np.random.default_rng(7)
    for trial in range(150):
        h, w, H, W = (int(v) for v in rng.integers(1, 140, 4))
        src = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(ours(src, H, W), ours(src, H, W, simd=False),
                                      err_msg=f"{h}x{w} -> {H}x{W}")
    img = load(photos()[2])
    np.testing.assert_array_equal(ours(img, 224, 224), ours(img, 224, 224, simd=False))


def test_caller_scratch_and_errors():
    img = load(photos()[0])
    h, w = img.shape[:2]
    need = resize_scratch_bytes(h, w, 224, 224)
    assert need > 0
    out = np.empty((224, 224, 3), np.uint8)
    resize_rgb(img, out, np.empty(need, np.uint8))
    with pytest.raises(ValueError, match="scratch"):
        resize_rgb(img, out, np.empty(need - 1, np.uint8))
    with pytest.raises(ValueError):
        resize_scratch_bytes(0, w, 224, 224)
    with pytest.raises(ValueError):
        resize_rgb(img[:, :, :2], np.empty((4, 4, 2), np.uint8))
    with pytest.raises(ValueError):
        resize_rgb(img[:, ::2], out)                 # pixels not packed


def c_functions():
    from numba.extending import get_cython_function_address
    i64 = ctypes.c_int64
    resize = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, i64, i64, i64, ctypes.c_void_p,
                              i64, i64, ctypes.c_void_p, i64)(
        get_cython_function_address("ffcvx._ext.resize", "ffcvx_resize_rgb"))
    scratch = ctypes.CFUNCTYPE(i64, i64, i64, i64, i64)(
        get_cython_function_address("ffcvx._ext.resize", "ffcvx_resize_scratch_bytes"))
    return resize, scratch


def test_c_api_status_codes():
    resize, scratch_bytes = c_functions()
    img = np.ascontiguousarray(load(photos()[0]))
    h, w = img.shape[:2]
    out = np.empty((100, 80, 3), np.uint8)
    need = scratch_bytes(h, w, 100, 80)
    assert need == resize_scratch_bytes(h, w, 100, 80)
    scratch = np.empty(need, np.uint8)
    args = (img.ctypes.data, h, w, 3 * w, out.ctypes.data, 100, 80)
    assert resize(*args, scratch.ctypes.data, need) == 0
    np.testing.assert_array_equal(out, ours(img, 100, 80))
    assert resize(*args, scratch.ctypes.data, need - 1) == -2
    assert resize(*args, None, 0) == -2
    assert resize(img.ctypes.data, h, w, 3 * w - 1, out.ctypes.data, 100, 80,
                  scratch.ctypes.data, need) == -3
    assert resize(img.ctypes.data, 0, w, 3 * w, out.ctypes.data, 100, 80,
                  scratch.ctypes.data, need) == -3
    assert resize(img.ctypes.data, h, w, 3 * w, out.ctypes.data, 100, -1,
                  scratch.ctypes.data, need) == -3
    assert resize(None, h, w, 3 * w, out.ctypes.data, 100, 80, scratch.ctypes.data, need) == -3
    assert scratch_bytes(h, w, 0, 80) == -3
    assert scratch_bytes(-5, w, 10, 80) == -3


def test_callable_from_numba_without_gil():
    from numba import njit
    resize, scratch_bytes = c_functions()

    @njit(nogil=True)
    def run(src, dst, scratch):
        return resize(src.ctypes.data, src.shape[0], src.shape[1], src.strides[0],
                      dst.ctypes.data, dst.shape[0], dst.shape[1],
                      scratch.ctypes.data, scratch.size)

    img = np.ascontiguousarray(load(photos()[1]))
    dst = np.empty((224, 224, 3), np.uint8)
    scratch = np.empty(scratch_bytes(img.shape[0], img.shape[1], 224, 224), np.uint8)
    assert run(img, dst, scratch) == 0
    np.testing.assert_array_equal(dst, ours(img, 224, 224))
