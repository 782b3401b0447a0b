"""Tests of the ffcvx-imagecodecs decoder backend (spec/backends.md).

The tests every python-kind backend shares come from
:mod:`ffcvx.testing.python_backends`; this module adds what is imagecodecs'
own. JPEG tolerance: maximum absolute difference to Pillow's decode of the same
bytes <= 1 (both use libjpeg-turbo's ISLOW IDCT; measured 0 on random and
smooth images; 1 allowed so the test does not depend on both wheels bundling
the same libjpeg-turbo release).
"""
import io

import numpy as np
import pytest
from PIL import Image

from ffcvx.errors import DecodeError
from ffcvx.testing.python_backends import PythonBackendTests, smooth_image


class TestImagecodecs(PythonBackendTests):
    """The shared python-backend tests on imagecodecs, and imagecodecs's own."""

    backend_name = "imagecodecs"
    jpeg_vs_pillow_max = 1

    def test_declares_no_crop_or_scale(self, backend):
        """BKD-018, BKD-019: imagecodecs has no region or scaled decode (jpeg8_decode / png_decode take no crop)."""
        assert backend.formats == frozenset({"jpeg", "png"})
        assert backend.supports_crop is False and backend.supports_scale is False

    def test_png_16_bit_keeps_high_byte(self, backend):
        import imagecodecs
        wide = np.random.default_rng(4).integers(0, 65536, (9, 11, 3), dtype=np.uint16)
        got = backend.decode_region_py(imagecodecs.png_encode(wide))
        np.testing.assert_array_equal(got, (wide >> 8).astype(np.uint8))
        gray = np.ascontiguousarray(wide[:, :, 0])
        got = backend.decode_region_py(imagecodecs.png_encode(gray))
        np.testing.assert_array_equal(got, np.repeat((gray >> 8).astype(np.uint8)[:, :, None], 3, 2))

    def test_cmyk_jpeg_refused(self, backend):
        """BKD-020: CMYK JPEGs are refused with the library's message."""
        out = io.BytesIO()
        Image.fromarray(smooth_image(16, 16)).convert("CMYK").save(out, "JPEG")
        with pytest.raises(DecodeError, match="JPEG decode failed"):
            backend.decode_region_py(out.getvalue())
