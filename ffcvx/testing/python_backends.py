"""Shared tests of ``python``-kind CPU decoder backends (spec/backends.md).

A backend distribution's test module runs them by subclassing
:class:`PythonBackendTests` and naming its backend::

    from ffcvx.testing.python_backends import PythonBackendTests

    class TestMine(PythonBackendTests):
        backend_name = "mine"         # its entry-point name in ffcvx.decoders
        jpeg_vs_pillow_max = 1        # max abs JPEG difference to Pillow, levels

Its own tests go in the same class (they get the ``backend`` and ``c_decode``
fixtures). :class:`PythonBackendTests` is a mixin of the conformance class
:class:`~ffcvx.testing.decoders.DecoderBackendTests`: a backend that wants
both lists both bases (``class TestMine(PythonBackendTests,
DecoderBackendTests)``); the conformance suite (``ffcvx conformance``) is the
capability-driven check for any backend, these are the stricter ones.

Backends that decode both JPEG and PNG, whole images (a crop is the full
decode's window, BKD-019), are what these tests expect.

Tolerances: PNG exact against the encoded array (BKD-023); JPEG within
``jpeg_vs_pillow_max`` of Pillow's ``convert("RGB")`` of the same bytes; crops
exact against the full decode, cropped (BKD-016, BKD-019).
"""
import importlib.metadata
import io
import threading

import numpy as np
import pytest
from PIL import Image

from ffcvx.backend_api import DECODE_REGION_PROTO
from ffcvx.errors import DecodeError
from ffcvx.fields.rgb_image import encode_jpeg, encode_png

__all__ = ["PythonBackendTests", "call_c", "corrupt_variants", "pillow_rgb", "png_of",
           "random_image", "smooth_image"]


def call_c(c_decode, data, crop, target=(0, 0), capacity=None, fill=0):
    """Call decode_region as compiled code would; returns (status, out bytes, (h, w))."""
    src = np.frombuffer(data, np.uint8)
    if capacity is None:
        capacity = crop[2] * crop[3] * 3
    out = np.full(max(capacity, 1), fill, np.uint8)
    hw = np.full(2, -7, np.int64)
    status = c_decode(src.ctypes.data, src.size, *crop, *target, out.ctypes.data, capacity,
                      hw.ctypes.data)
    return status, out, (int(hw[0]), int(hw[1]))


def random_image(h, w, seed=0):
    """Uniform noise, ``(h, w, 3)`` uint8."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def smooth_image(h, w, seed=0):
    """Gradients plus mild noise: JPEG-like content (pure noise is atypical for JPEG)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1),
                     (xx + yy) * 127 / max(h + w - 2, 1)], axis=2)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def pillow_rgb(data):
    """Pillow's ``convert("RGB")`` of encoded ``data``, ``(H, W, 3)`` uint8."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def png_of(image, mode=None):
    """PNG bytes of ``image`` by Pillow, converted to ``mode`` first when given."""
    out = io.BytesIO()
    pil = Image.fromarray(image)
    (pil.convert(mode) if mode else pil).save(out, "PNG")
    return out.getvalue()


def corrupt_variants(data):
    """``(label, bytes)`` of ``data`` truncated or overwritten: what a decoder must refuse."""
    yield "truncated-header", data[:10]
    yield "truncated-half", data[:len(data) // 2]
    yield "truncated-end", data[:-12]
    yield "garbage", b"\x00" * 64 + data[64:]
    yield "gif", b"GIF89a" + data[6:]


class PythonBackendTests:
    """Tests every ``python``-kind backend decoding JPEG and PNG must pass.

    Attributes
    ----------
    backend_name : str
        Entry-point name in the group ``ffcvx.decoders`` of the backend under test.
    jpeg_vs_pillow_max : int
        Largest absolute difference, in levels, allowed between the backend's
        JPEG decode and Pillow's of the same bytes.
    """

    backend_name = None
    jpeg_vs_pillow_max = 0

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        """The backend under test, loaded through its entry point (BKD-050)."""
        eps = [ep for ep in importlib.metadata.entry_points(group="ffcvx.decoders")
               if ep.name == cls.backend_name]
        assert len(eps) == 1, (f"the {cls.backend_name!r} backend is not installed "
                               f"(entry point missing)")
        obj = eps[0].load()
        ok, why = obj.available()
        assert ok, why
        return obj

    @pytest.fixture(scope="class")
    @classmethod
    def c_decode(cls, backend):
        """``decode_region`` through ctypes, as compiled code calls it (BKD-010)."""
        return DECODE_REGION_PROTO(backend.function_address("decode_region"))

    # --- the backend object ------------------------------------------------------------

    def test_python_backend_object(self, backend):
        """BKD-001 to BKD-005, BKD-010, BKD-041: declared metadata and the exported callback."""
        assert backend.name == self.backend_name
        assert {"jpeg", "png"} <= set(backend.formats)
        assert backend.device == "cpu" and backend.kind == "python"
        assert backend.available() == (True, "")
        assert isinstance(backend.function_address("decode_region"), int)
        address = backend.function_address("decode_region")
        assert backend.function_address("decode_region") == address
        with pytest.raises(KeyError):
            backend.function_address("decode")

    # --- PNG -----------------------------------------------------------------------------

    @pytest.mark.parametrize("shape", [(1, 1), (2, 3), (37, 53), (64, 64), (129, 7)])
    def test_png_exact(self, backend, c_decode, shape):
        """BKD-023: PNG (as the writer encodes it, FMT-037) decodes to exactly the stored array."""
        image = random_image(*shape, seed=shape[0])
        data = encode_png(image)
        np.testing.assert_array_equal(backend.decode_region_py(data), image)
        status, out, hw = call_c(c_decode, data, (0, 0, *shape))
        assert status == 0 and hw == shape
        np.testing.assert_array_equal(out.reshape(*shape, 3), image)

    @pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "1"])
    def test_png_other_colour_types_become_rgb(self, backend, mode):
        """BKD-020: gray, gray + alpha, palette, RGBA and 1-bit PNGs come out as RGB, alpha dropped."""
        image = random_image(20, 30, seed=3)
        data = png_of(image, mode)
        expected = pillow_rgb(data)
        got = backend.decode_region_py(data)
        assert got.shape == (20, 30, 3) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)

    # --- JPEG ----------------------------------------------------------------------------

    @pytest.mark.parametrize("quality", [75, 90, 95])
    def test_jpeg_matches_pillow(self, backend, c_decode, quality):
        for seed, (h, w) in enumerate([(48, 64), (61, 97), (16, 16)]):
            data = encode_jpeg(smooth_image(h, w, seed), quality)
            got = backend.decode_region_py(data)
            assert got.shape == (h, w, 3)
            diff = np.abs(got.astype(int) - pillow_rgb(data).astype(int))
            assert diff.max() <= self.jpeg_vs_pillow_max, (quality, seed, diff.max())
            status, out, hw = call_c(c_decode, data, (0, 0, h, w))
            assert status == 0 and hw == (h, w)
            np.testing.assert_array_equal(out.reshape(h, w, 3), got)

    def test_gray_jpeg_becomes_rgb(self, backend):
        out = io.BytesIO()
        Image.fromarray(smooth_image(24, 40)[:, :, 0]).save(out, "JPEG", quality=90)
        got = backend.decode_region_py(out.getvalue())
        assert got.shape == (24, 40, 3)
        assert np.array_equal(got[:, :, 0], got[:, :, 1])
        assert np.array_equal(got[:, :, 0], got[:, :, 2])

    # --- crops ---------------------------------------------------------------------------

    @pytest.mark.parametrize("fmt", ["png", "jpeg"])
    def test_crop_equals_full_decode_cropped(self, backend, c_decode, fmt):
        """BKD-016, BKD-018, BKD-019: any crop (and any target) is the full decode's window, full scale."""
        h, w = 57, 83
        image = smooth_image(h, w, seed=5)
        data = encode_png(image) if fmt == "png" else encode_jpeg(image, 90)
        full = backend.decode_region_py(data)
        rng = np.random.default_rng(6)
        crops = [(0, 0, h, w), (0, 0, 1, 1), (h - 1, w - 1, 1, 1), (3, 5, h - 3, w - 5)]
        for _ in range(20):
            ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            crops.append((y, x, ch, cw))
        for crop in crops:
            y, x, ch, cw = crop
            expected = full[y:y + ch, x:x + cw]
            np.testing.assert_array_equal(backend.decode_region_py(data, crop, (2, 2)), expected)
            status, out, hw = call_c(c_decode, data, crop, target=(2, 2))
            assert status == 0 and hw == (ch, cw), crop
            np.testing.assert_array_equal(out.reshape(ch, cw, 3), expected, err_msg=str(crop))

    # --- errors --------------------------------------------------------------------------

    @pytest.mark.parametrize("fmt", ["png", "jpeg"])
    def test_corrupt_data_raises_and_returns_minus_1(self, backend, c_decode, fmt):
        """BKD-013, BKD-021, BKD-022, BKD-030: corrupt or truncated data -> DecodeError / -1, no crash."""
        image = smooth_image(40, 50, seed=7)
        data = encode_png(image) if fmt == "png" else encode_jpeg(image, 90)
        for label, bad in corrupt_variants(data):
            with pytest.raises(DecodeError):
                backend.decode_region_py(bad)
            status, _, _ = call_c(c_decode, bad, (0, 0, 40, 50))
            assert status == -1, label
        with pytest.raises(ValueError, match="empty"):   # BKD-015, BKD-030: a bad argument
            backend.decode_region_py(b"")
        assert call_c(c_decode, b"", (0, 0, 40, 50))[0] == -3

    def test_png_damaged_inside_idat_is_detected(self, backend):
        data = bytearray(encode_png(random_image(40, 50)))
        data[len(data) // 2] ^= 0x55
        with pytest.raises(DecodeError, match="PNG decode failed"):
            backend.decode_region_py(bytes(data))

    def test_capacity_too_small(self, backend, c_decode):
        """BKD-014: -2 before writing anything; out_hw holds the size needed; NULL out is capacity 0."""
        data = encode_png(random_image(30, 40))
        status, out, hw = call_c(c_decode, data, (0, 0, 30, 40), capacity=30 * 40 * 3 - 1,
                                 fill=0xAB)
        assert status == -2 and hw == (30, 40)
        assert np.all(out == 0xAB)
        src = np.frombuffer(data, np.uint8)
        hw_arr = np.zeros(2, np.int64)
        assert c_decode(src.ctypes.data, src.size, 0, 0, 30, 40, 0, 0, None, 10**6,
                        hw_arr.ctypes.data) == -2

    def test_bad_arguments(self, backend, c_decode):
        """BKD-015, BKD-030: -3 from C, ValueError from Python."""
        data = encode_png(random_image(30, 40))
        for crop in [(0, 0, 31, 40), (0, 1, 30, 40), (-1, 0, 5, 5), (0, 0, 0, 5), (0, 0, 5, -1)]:
            status, _, _ = call_c(c_decode, data, crop, capacity=30 * 40 * 3)
            assert status == -3, crop
            with pytest.raises(ValueError):
                backend.decode_region_py(data, crop)
        src = np.frombuffer(data, np.uint8)
        out = np.zeros(30 * 40 * 3, np.uint8)
        hw = np.zeros(2, np.int64)
        whole = (0, 0, 30, 40, 0, 0)
        assert c_decode(None, 10, *whole, out.ctypes.data, out.size, hw.ctypes.data) == -3
        assert c_decode(src.ctypes.data, 0, *whole, out.ctypes.data, out.size, hw.ctypes.data) == -3
        assert c_decode(src.ctypes.data, src.size, *whole, out.ctypes.data, out.size, None) == -3

    def test_concurrent_calls(self, backend, c_decode):
        """BKD-006: several threads decoding at once get the same pixels as one thread."""
        datas = [encode_png(random_image(33, 44, seed=s)) for s in range(4)]
        datas += [encode_jpeg(smooth_image(33, 44, seed=s), 90) for s in range(4)]
        expected = [backend.decode_region_py(d) for d in datas]
        failures = []

        def work(offset):
            for i in range(40):
                k = (i + offset) % len(datas)
                status, out, _ = call_c(c_decode, datas[k], (0, 0, 33, 44))
                if status != 0 or not np.array_equal(out.reshape(33, 44, 3), expected[k]):
                    failures.append((offset, i, status))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
