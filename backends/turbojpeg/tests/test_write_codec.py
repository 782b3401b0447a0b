"""Tests of the writer's compiled JPEG codec: ``decode_shrunk``, ``encode_jpeg``, ``area_resize``.

Tolerances, stated once (measured on the shared photos with OpenCV 5.0 and
Pillow 13's bundled libjpeg-turbo 3):

- full-scale ``decode_shrunk`` (target = image size) vs Pillow: exact;
- area resampler vs ``cv2.resize(INTER_AREA)``: at most 1, on at most 10 %
  of the values (measured on the photos: exact at 2x2; max 1 on 0.01 to
  0.3 % of the values at fractional ratios, 3.4 % at 4x4 and 8.1 % at 3x2,
  where many means are exact halves: ours rounds them up, OpenCV's integer
  path multiplies by an inexact 1/area and rounds to even; 0.1 % on random
  arrays);
- ``decode_shrunk`` at a reduced DCT scale (2x margin) vs INTER_AREA of the
  full decode: PSNR > 30 dB per image and > 40 dB on average (measured
  32.2 .. 56.7 dB at a quarter to a tenth of the size; the worst are the
  detailed ``sklearn_china`` crops); vs INTER_AREA of Pillow's ``draft``
  decode at the same DCT scale (today's Python path): at most 1 apart;
- ``encode_jpeg`` vs Pillow's ``save(quality=q)``: same bytes today (both
  use libjpeg's defaults); tested as PSNR within 0.1 dB and size within 3 %.
"""
import glob
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

cv2 = pytest.importorskip("cv2")
# make setup installs this package: a missing module fails here, loudly
from ffcvx_turbojpeg import _libjpeg_encode as E  # noqa: E402
from ffcvx_turbojpeg import _libjpeg_write as W  # noqa: E402
from ffcvx.testing import shared_dir


@pytest.fixture(scope="module")
def photo_files():
    files = sorted(glob.glob(str(shared_dir() / "data" / "photos" / "*" / "*.jpg")))
    if not files:
        pytest.skip("no photos in the shared data folder")
    return [Path(f).read_bytes() for f in files]


def pil_decode(data, mode="RGB"):
    return np.asarray(Image.open(io.BytesIO(data)).convert(mode))


def pil_encode(pixels, quality=90, **options):
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality, **options)
    return out.getvalue()


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_full_scale_decode_is_pillows(photo_files):
    for data in photo_files:
        full = pil_decode(data)
        h, w = full.shape[:2]
        out, scaled = W.decode_shrunk_scaled(data, w, h)
        assert scaled == (w, h)
        assert out.flags.c_contiguous and out.dtype == np.uint8
        np.testing.assert_array_equal(out, full)


def test_full_scale_gray_decode_of_gray_jpeg_is_pillows(photo_files):
    data = pil_encode(pil_decode(photo_files[0], "L"))
    full = pil_decode(data, "L")
    h, w = full.shape
    np.testing.assert_array_equal(W.decode_shrunk(data, w, h, gray=True), full)
    # RGB output of a gray JPEG repeats the component, as Pillow's convert('RGB')
    np.testing.assert_array_equal(W.decode_shrunk(data, w, h), pil_decode(data))


def expected_k(w, h, tw, th, margin=2.0):
    for k in (1, 2, 4):
        if -(-w * k // 8) >= margin * tw and -(-h * k // 8) >= margin * th:
            return k
    return 8


@pytest.mark.parametrize("divisor", [4, 6.5, 10])
def test_shrunk_decode_close_to_full_decode_area_resize(photo_files, divisor):
    scores = []
    for data in photo_files:
        full = pil_decode(data)
        h, w = full.shape[:2]
        tw, th = max(1, int(w / divisor)), max(1, int(h / divisor))
        out, scaled = W.decode_shrunk_scaled(data, tw, th)
        k = expected_k(w, h, tw, th)
        assert scaled == (-(-w * k // 8), -(-h * k // 8))
        assert out.shape == (th, tw, 3)
        ref = cv2.resize(full, (tw, th), interpolation=cv2.INTER_AREA)
        scores.append(psnr(out, ref))
        drafted = Image.open(io.BytesIO(data))
        drafted.draft("RGB", (2 * tw, 2 * th))
        if drafted.size == scaled:      # Pillow chose the same DCT scale
            compare_to_cv2(out, cv2.resize(np.asarray(drafted.convert("RGB")), (tw, th),
                                           interpolation=cv2.INTER_AREA))
    assert min(scores) > 30, scores
    assert np.mean(scores) > 40, scores


def test_shrunk_gray_decode_is_close_to_luma_area_resize(photo_files):
    for data in photo_files[:8]:
        full = pil_decode(data, "L")
        h, w = full.shape
        out = W.decode_shrunk(data, w // 3, h // 3, gray=True)
        assert out.shape == (h // 3, w // 3)
        ref = cv2.resize(full, (w // 3, h // 3), interpolation=cv2.INTER_AREA)
        assert psnr(out, ref) > 35


def compare_to_cv2(mine, ref, fraction=0.10):
    """``(values differing, values)``; asserts at most 1 apart on at most ``fraction``."""
    diff = np.abs(mine.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1
    assert np.count_nonzero(diff) <= fraction * diff.size
    return np.count_nonzero(diff), diff.size


@pytest.mark.parametrize("ratio", [(2, 2), (4, 4), (3, 2), (2.5, 2.5), (1.37, 3.1), (1.0, 1.7)])
def test_area_at_full_scale_matches_cv2_inter_area(photo_files, ratio):
    for data in photo_files[::3]:
        full = pil_decode(data)
        h, w = full.shape[:2]
        if float(ratio[0]).is_integer() and float(ratio[1]).is_integer():
            # integer ratios: a JPEG whose size is a multiple of them
            w2, h2 = w // ratio[0] * ratio[0], h // ratio[1] * ratio[1]
            data, full = None, np.ascontiguousarray(full[:h2, :w2])
            data = pil_encode(full, 95)
            full = pil_decode(data)
            h, w = h2, w2
        tw, th = int(w / ratio[0]), int(h / ratio[1])
        # a huge margin forces k = 8: the resampler alone is compared
        out, scaled = W.decode_shrunk_scaled(data, tw, th, margin=1e9)
        assert scaled == (w, h)
        compare_to_cv2(out, cv2.resize(full, (tw, th), interpolation=cv2.INTER_AREA))
        gray = W.decode_shrunk(data, tw, th, gray=True, margin=1e9)
        full_gray = W.decode_shrunk(data, w, h, gray=True)
        compare_to_cv2(gray, cv2.resize(full_gray, (tw, th), interpolation=cv2.INTER_AREA))


def test_area_resize_matches_cv2_on_random_arrays():
    rng = np.random.default_rng(7)
    differing = total = 0
    for trial in range(200):
        h, w = (int(v) for v in rng.integers(1, 200, 2))
        channels = int(rng.choice([1, 3, 4]))
        pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        if trial % 3 == 0:          # exact integer ratios
            f = int(rng.integers(2, 6))
            tw, th = max(1, w // f), max(1, h // f)
            pixels = np.ascontiguousarray(pixels[:th * f, :tw * f]) if w >= f and h >= f else pixels
        else:
            tw, th = int(rng.integers(1, w + 1)), int(rng.integers(1, h + 1))
        out = W.area_resize(pixels, tw, th)
        ref = cv2.resize(pixels, (tw, th), interpolation=cv2.INTER_AREA).reshape(out.shape)
        n, size = compare_to_cv2(out, ref, fraction=1.0)
        differing += n
        total += size
    assert differing <= 0.01 * total


def test_area_resize_integer_ratio_rounds_halves_up():
    pixels = np.array([[0, 1, 2, 2]], dtype=np.uint8)
    np.testing.assert_array_equal(W.area_resize(pixels, 2, 1), [[1, 2]])
    flat = np.full((6, 6, 3), 200, dtype=np.uint8)
    np.testing.assert_array_equal(W.area_resize(flat, 4, 5), np.full((5, 4, 3), 200))


@pytest.mark.parametrize("quality", [50, 75, 90, 95])
def test_encode_matches_pillow(photo_files, quality):
    for data in photo_files[::4]:
        pixels = pil_decode(data)
        mine, theirs = E.encode_jpeg(pixels, quality), pil_encode(pixels, quality)
        decoded = pil_decode(mine)
        assert decoded.shape == pixels.shape
        assert abs(psnr(decoded, pixels) - psnr(pil_decode(theirs), pixels)) < 0.1
        assert abs(len(mine) - len(theirs)) <= 0.03 * len(theirs)
        image = Image.open(io.BytesIO(mine))
        assert image.mode == "RGB" and image.info.get("jfif") is not None
        assert [layer[1:3] for layer in image.layer] == [(2, 2), (1, 1), (1, 1)]  # 4:2:0
        assert b"\xff\xc0" in mine and b"\xff\xc2" not in mine                 # baseline SOF0


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 1)])
def test_encode_gray_is_one_component(shape):
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    data = E.encode_jpeg(pixels, 90)
    image = Image.open(io.BytesIO(data))
    assert image.mode == "L" and image.size == (53, 37)
    assert psnr(np.asarray(image), pixels.reshape(37, 53)) > 20
    assert W.decode_shrunk(data, 53, 37, gray=True).shape == (37, 53)


def test_encode_non_contiguous_input_is_copied(photo_files):
    pixels = pil_decode(photo_files[0])
    view = pixels[::2, ::3]
    assert E.encode_jpeg(view, 90) == E.encode_jpeg(np.ascontiguousarray(view), 90)


@pytest.mark.parametrize("bad", [
    np.zeros((0, 5, 3), np.uint8), np.zeros((5, 5, 3), np.float32), np.zeros((5, 5, 2), np.uint8),
    np.zeros((5,), np.uint8), np.zeros((70000, 1), np.uint8)])
def test_encode_refuses_bad_pixels(bad):
    with pytest.raises(ValueError):
        E.encode_jpeg(bad, 90)


@pytest.mark.parametrize("quality", [0, 101, -5])
def test_encode_refuses_bad_quality(quality):
    with pytest.raises(ValueError, match="quality"):
        E.encode_jpeg(np.zeros((8, 8, 3), np.uint8), quality)


def test_truncated_corrupt_and_empty_inputs_raise(photo_files):
    data = photo_files[0]
    for bad in (b"", data[:2], data[:300], data[:len(data) // 2], data[:-40],
                b"\xff\xd8\xff" + bytes(100), b"not a jpeg at all"):
        with pytest.raises(ValueError):
            W.decode_shrunk(bad, 16, 16)
    with pytest.raises(ValueError, match="Premature end"):
        W.decode_shrunk(data[:len(data) // 2], 16, 16)


def test_cmyk_raises_unsupported(photo_files):
    out = io.BytesIO()
    Image.open(io.BytesIO(photo_files[0])).convert("CMYK").save(out, format="JPEG")
    with pytest.raises(W.UnsupportedJPEGError, match="CMYK"):
        W.decode_shrunk(out.getvalue(), 16, 16)
    assert issubclass(W.UnsupportedJPEGError, ValueError)


def test_bad_targets_raise(photo_files):
    data = photo_files[0]
    w, h = Image.open(io.BytesIO(data)).size
    for tw, th in ((0, 10), (10, 0), (w + 1, h), (w, h + 1), (-3, 4)):
        with pytest.raises(ValueError):
            W.decode_shrunk(data, tw, th)
    with pytest.raises(ValueError):
        W.decode_shrunk(data, 10, 10, margin=0.5)
    with pytest.raises(ValueError):
        W.area_resize(np.zeros((4, 4, 3), np.uint8), 5, 4)


def test_random_corruption_never_crashes(photo_files):
    rng = np.random.default_rng(3)
    data = photo_files[1]
    w, h = Image.open(io.BytesIO(data)).size
    raised = 0
    for trial in range(300):
        damaged = bytearray(data)
        for pos in rng.integers(2, len(data), int(rng.integers(1, 20))):
            damaged[pos] = int(rng.integers(0, 256))
        if trial % 5 == 0:
            damaged = damaged[:int(rng.integers(2, len(damaged)))]
        try:
            out = W.decode_shrunk(bytes(damaged), w // 3, h // 3, gray=bool(trial % 2))
            assert out.shape[:2] == (h // 3, w // 3)
        except ValueError:
            raised += 1
    assert raised > 0


def big_jpeg():
    """A 4000x3000 noisy JPEG: a full-size decode takes tens of milliseconds."""
    rng = np.random.default_rng(5)
    small = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    pixels = cv2.resize(small, (4000, 3000), interpolation=cv2.INTER_LINEAR)
    return pixels, pil_encode(pixels, 95)


@pytest.mark.parametrize("work", ["decode", "encode"])
def test_gil_is_released(work):
    """Another thread keeps running Python while one call is inside libjpeg.

    The main thread ticks in a loop while a worker makes four calls; with
    the GIL held through a call, the main thread would stall for each whole
    call: gaps longer than half a call would add up to about four calls.
    Robust on a loaded 2-core machine (where a thread can wait 100 ms+ for
    a core): the bound is half of that total, in units of the shortest
    call measured here, not a speed-up.
    """
    pixels, data = big_jpeg()
    if work == "decode":
        def call():
            W.decode_shrunk(data, 4000, 3000)
    else:
        def call():
            E.encode_jpeg(pixels, 90)
    durations = []
    for _ in range(2):
        start = time.perf_counter()
        call()
        durations.append(time.perf_counter() - start)
    single = min(durations)
    assert single > 0.02, "the call is too short to measure the GIL with"

    done = threading.Event()

    def worker():
        for _ in range(4):
            call()
        done.set()

    thread = threading.Thread(target=worker)
    gaps = []
    thread.start()
    last = time.perf_counter()
    while not done.is_set():
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    thread.join()
    assert len(gaps) > 100
    stalled = sum(gap for gap in gaps if gap > 0.5 * single)
    assert stalled < 2 * single, (stalled, max(gaps), single)
