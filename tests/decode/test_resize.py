"""Tests of the RGB resize kernel (ffcvx/_ext/resize.pyx).

The reference is Pillow's ``Image.resize(size, Image.BILINEAR)``, the same
filter family (triangle filter widened by the downscale factor). ffcvx runs
the vertical pass first and uses 14-bit weights where Pillow goes horizontal
first with 22-bit weights; both round the intermediate image to uint8, so the
outputs differ by at most one level here and a mean well below 0.5.
"""
import ctypes
import glob

import numpy as np
import pytest
from PIL import Image

from ffcvx._ext.resize import resize_rgb, resize_scratch_bytes
from ffcvx.testing import shared_dir

# max |ours - Pillow| and mean |ours - Pillow| allowed on real photos
MAX_DIFF = 1
MEAN_DIFF = 0.35


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


# --- the one-channel kernel (ffcvx_resize_gray): exactly channel 0 of the RGB kernel ---------

from ffcvx._ext.resize import resize_gray  # noqa: E402


def gray_ours(img, h, w, **kw):
    out = np.empty((h, w), np.uint8)
    assert resize_gray(img, out, **kw) is out
    return out


def _gray_cases():
    """(src_h, src_w, dst_h, dst_w, extra stride): fixed corner cases, then random sizes."""
    cases = [(1, 1, 1, 1, 0), (1, 1, 5, 3, 0), (1, 7, 3, 2, 5), (9, 1, 2, 4, 0), (2, 2, 1, 1, 1),
             (3, 3, 40, 1, 0), (1, 40, 1, 9, 3), (40, 1, 9, 1, 0), (16, 16, 8, 8, 0),
             (17, 33, 17, 8, 7), (33, 17, 8, 17, 0), (375, 500, 224, 224, 0), (300, 280, 224, 224, 13),
             (120, 100, 224, 224, 0), (224, 224, 224, 224, 3), (500, 500, 31, 29, 0),   # shrink > 9
             (64, 2000, 7, 50, 0), (28, 28, 64, 64, 1), (1, 300, 1, 224, 0), (300, 1, 224, 1, 0),
             (40, 900, 40, 150, 0), (30, 1200, 20, 224, 5), (30, 40, 30, 6, 0),  # shrink 4 to 9
             (30, 33, 30, 8, 0), (12, 20, 12, 9, 0)]
    rng = np.random.default_rng(2026)
    for trial in range(300):
        top = 40 if trial < 100 else (160 if trial < 250 else 700)
        h, w = (int(v) for v in rng.integers(1, top, 2))
        H, W = (int(v) for v in rng.integers(1, min(top, 300), 2))
        cases.append((h, w, H, W, int(rng.integers(0, 20))))
    return cases


def test_gray_kernel_is_channel0_of_rgb_kernel():
    """Bit-identical to the RGB kernel on R = G = B, channel 0: up, down, odd, 1 pixel, strides, mirror."""
    rng = np.random.default_rng(5)
    for h, w, H, W, pad in _gray_cases():
        stored = rng.integers(0, 256, (h, w + pad), dtype=np.uint8)
        gray = stored[:, :w]                    # rows `pad` bytes longer than the width
        rgb = np.repeat(gray[..., None], 3, axis=2)
        for mirror in (False, True):
            want = ours(rgb, H, W, mirror=mirror)[..., 0]
            for simd in (True, False):
                got = gray_ours(gray, H, W, mirror=mirror, simd=simd)
                np.testing.assert_array_equal(
                    got, want, err_msg=f"{h}x{w} (+{pad}) -> {H}x{W}, mirror {mirror}, simd {simd}")


def test_gray_kernel_on_each_channel_of_a_colour_image():
    """Channels are independent: gray on channel c == RGB resize channel c, for photos too."""
    img = load(photos()[3])
    view = img[7:307, 11:411]
    for H, W in [(224, 224), (97, 131), (300, 400), (640, 480)]:
        want = ours(view, H, W)
        for c in range(3):
            np.testing.assert_array_equal(gray_ours(np.ascontiguousarray(view[..., c]), H, W),
                                          want[..., c])


def test_gray_c_api_status_codes():
    """Every bad argument is a status code (-2 scratch, -3 arguments), never a crash."""
    from numba.extending import get_cython_function_address
    i64 = ctypes.c_int64
    proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, i64, i64, i64, ctypes.c_void_p,
                             i64, i64, ctypes.c_void_p, i64)

    def fn(name):
        return get_cython_function_address("ffcvx._ext.resize", name)
    gray, mirror = proto(fn("ffcvx_resize_gray")), proto(fn("ffcvx_resize_gray_mirror"))
    scratch_bytes = ctypes.CFUNCTYPE(i64, i64, i64, i64, i64)(fn("ffcvx_resize_gray_scratch_bytes"))
    rgb_scratch_bytes = ctypes.CFUNCTYPE(i64, i64, i64, i64, i64)(fn("ffcvx_resize_scratch_bytes"))
    img = np.ascontiguousarray(load(photos()[0])[..., 1])
    h, w = img.shape
    need = scratch_bytes(h, w, 100, 80)
    assert need == resize_scratch_bytes(h, w, 100, 80, channels=1)
    assert 0 < need < rgb_scratch_bytes(h, w, 100, 80)
    out = np.empty((100, 80), np.uint8)
    scratch = np.empty(need, np.uint8)
    args = (img.ctypes.data, h, w, w, out.ctypes.data, 100, 80)
    assert gray(*args, scratch.ctypes.data, need) == 0
    np.testing.assert_array_equal(out, gray_ours(img, 100, 80))
    assert mirror(*args, scratch.ctypes.data, need) == 0
    np.testing.assert_array_equal(out, gray_ours(img, 100, 80)[:, ::-1])
    for f in (gray, mirror):
        assert f(*args, scratch.ctypes.data, need - 1) == -2
        assert f(*args, None, need) == -2
        assert f(img.ctypes.data, h, w, w - 1, out.ctypes.data, 100, 80, scratch.ctypes.data, need) == -3
        assert f(None, h, w, w, out.ctypes.data, 100, 80, scratch.ctypes.data, need) == -3
        assert f(img.ctypes.data, h, w, w, None, 100, 80, scratch.ctypes.data, need) == -3
        for bad in [(0, w, 100, 80), (h, -1, 100, 80), (h, w, 0, 80), (h, w, 100, 1 << 25)]:
            assert f(img.ctypes.data, bad[0], bad[1], w, out.ctypes.data, bad[2], bad[3],
                     scratch.ctypes.data, need) == -3
    assert scratch_bytes(0, w, 10, 10) == -3 and scratch_bytes(h, w, 10, -2) == -3
    with pytest.raises(ValueError, match="scratch"):
        resize_gray(img, out, np.empty(need - 1, np.uint8))
    with pytest.raises(ValueError):
        resize_gray(img[:, ::2], out)                # pixels not packed
    with pytest.raises(ValueError):
        resize_scratch_bytes(h, w, 10, 10, channels=2)


_GUARD_SCRIPT = r'''
import ctypes, mmap, sys
import numpy as np
from ffcvx._ext.resize import resize_gray, resize_rgb

page = mmap.PAGESIZE
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
buf = mmap.mmap(-1, 6 * page)
arr = np.frombuffer(buf, np.uint8)
base = arr.ctypes.data
assert base % page == 0
for guard in (0, 5):          # pages 0 and 5 unreadable; data in pages 1..4
    assert libc.mprotect(base + guard * page, page, 0) == 0, ctypes.get_errno()
rng = np.random.default_rng(int(sys.argv[1]))
# fixed: shrinks of 4x to 9x (two loads per lane), rows of 16 to 40 pixels, then random sizes
fixed = [(h, w, H, W) for w, W in [(16, 8), (17, 9), (31, 8), (32, 8), (33, 5), (40, 6), (64, 8),
                                   (150, 20), (200, 23), (200, 30)] for h, H in [(1, 1), (3, 3), (9, 4)]]
count = 0
for trial in range(400 + len(fixed)):
    if trial < len(fixed):
        h, w, H, W = fixed[trial]
    else:
        h, w = int(rng.integers(1, 60)), int(rng.integers(1, 200))
    stride = w + int(rng.integers(0, 5))
    nbytes = (h - 1) * stride + w
    at_end = trial % 2 == 0    # image ends right before page 5, or starts right after page 0
    start = 5 * page - nbytes if at_end else page
    if nbytes > 4 * page:
        continue
    src = np.lib.stride_tricks.as_strided(arr[start:], (h, w), (stride, 1))
    src[...] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    if trial >= len(fixed):
        H = h if trial % 3 == 0 else int(rng.integers(1, 80))   # horizontal pass only, or both
        W = int(rng.integers(1, 120))
    for mirror in (False, True):
        got = resize_gray(src, np.empty((H, W), np.uint8), mirror=mirror)
        want = resize_rgb(np.repeat(np.ascontiguousarray(src)[..., None], 3, axis=2),
                          np.empty((H, W, 3), np.uint8), mirror=mirror)[..., 0]
        assert np.array_equal(got, want), (h, w, stride, H, W, mirror)
    count += 1
print("ok", count)
'''


def test_gray_kernel_reads_nothing_outside_the_image():
    """Sources right against unreadable pages (before and after): no fault, same pixels.

    The AVX2 horizontal kernel loads 16 bytes at a time; it must stay inside
    the image (last row copied to padded scratch). Run in a child process so
    a fault fails this test instead of ending the run.
    """
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, '-c', _GUARD_SCRIPT, '3'], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.startswith('ok ') and int(proc.stdout.split()[1]) > 330, proc.stdout


def test_gray_callable_from_numba_without_gil():
    from numba import njit
    from numba.extending import get_cython_function_address
    i64 = ctypes.c_int64
    resize = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, i64, i64, i64, ctypes.c_void_p,
                              i64, i64, ctypes.c_void_p, i64)(
        get_cython_function_address("ffcvx._ext.resize", "ffcvx_resize_gray"))

    @njit(nogil=True)
    def run(src, dst, scratch):
        return resize(src.ctypes.data, src.shape[0], src.shape[1], src.strides[0],
                      dst.ctypes.data, dst.shape[0], dst.shape[1], scratch.ctypes.data, scratch.size)

    img = np.ascontiguousarray(load(photos()[1])[..., 0])
    dst = np.empty((224, 224), np.uint8)
    scratch = np.empty(resize_scratch_bytes(img.shape[0], img.shape[1], 224, 224, channels=1), np.uint8)
    assert run(img, dst, scratch) == 0
    np.testing.assert_array_equal(dst, gray_ours(img, 224, 224))
