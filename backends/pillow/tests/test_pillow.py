"""Tests of the ffcvx-pillow decoder backend (spec/backends.md).

The tests every python-kind backend shares come from
:mod:`ffcvx.testing.python_backends`; this module adds what is Pillow's own.
JPEG tolerance: exact against Pillow's ``Image.open(...).convert("RGB")`` of
the same bytes (it is the same decoder).
"""
import io

import numpy as np
import pytest
from PIL import Image

from ffcvx.errors import DecodeError
from ffcvx.fields.rgb_image import encode_jpeg, encode_png
from ffcvx.testing.python_backends import PythonBackendTests, call_c, smooth_image


class TestPillow(PythonBackendTests):
    """The shared python-backend tests on pillow, and pillow's own."""

    backend_name = "pillow"
    jpeg_vs_pillow_max = 0

    def test_declares_no_crop_or_scale(self, backend):
        """BKD-018, BKD-019: the plain reference decoder, no crop or scale shortcut."""
        assert backend.formats == frozenset({"jpeg", "png"})
        assert backend.supports_crop is False and backend.supports_scale is False

    def test_png_16_bit_gray_keeps_high_byte(self, backend):
        gray = np.random.default_rng(4).integers(0, 65536, (9, 11), dtype=np.uint16)
        out = io.BytesIO()
        Image.fromarray(gray).save(out, "PNG")          # mode I;16, a 16-bit gray PNG
        got = backend.decode_region_py(out.getvalue())
        np.testing.assert_array_equal(got, np.repeat((gray >> 8).astype(np.uint8)[:, :, None], 3, 2))

    def test_cmyk_jpeg_refused(self, backend):
        """BKD-020: CMYK JPEGs are refused with the library's message."""
        out = io.BytesIO()
        Image.fromarray(smooth_image(16, 16)).convert("CMYK").save(out, "JPEG")
        with pytest.raises(DecodeError, match="CMYK"):
            backend.decode_region_py(out.getvalue())

    @pytest.mark.parametrize("fmt", ["png", "jpeg"])
    def test_truncation_detected_even_with_load_truncated_images(self, backend, c_decode,
                                                                  monkeypatch, fmt):
        """BKD-022: Pillow's process-wide LOAD_TRUNCATED_IMAGES must not turn a cut file into pixels."""
        from PIL import ImageFile
        monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
        image = smooth_image(40, 50, seed=8)
        data = encode_png(image) if fmt == "png" else encode_jpeg(image, 90)
        with pytest.raises(DecodeError, match="truncated"):
            backend.decode_region_py(data[:len(data) * 2 // 3])
        assert call_c(c_decode, data[:len(data) * 2 // 3], (0, 0, 40, 50))[0] == -1
