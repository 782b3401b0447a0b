"""ffcvx.libffcv: FFCV's C helpers, plain Python that compiles (Compiler.compile) and runs uncompiled."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from ffcvx import libffcv
from ffcvx.pipeline.compiler import Compiler


@pytest.fixture(scope='module')
def jpeg():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(base).resize((96, 64), Image.Resampling.BILINEAR))
    out = io.BytesIO()
    Image.fromarray(image).save(out, format='JPEG', quality=95)
    return np.frombuffer(out.getvalue(), np.uint8).copy()


@pytest.mark.parametrize('compiled', [False, True])
def test_imdecode_crop_scale_flip(jpeg, compiled):
    imdecode = Compiler.compile(libffcv.imdecode) if compiled else libffcv.imdecode
    full = np.zeros((64, 96, 3), np.uint8)
    assert imdecode(jpeg, full, 64, 96) == 0
    reference = np.asarray(Image.open(io.BytesIO(jpeg.tobytes())).convert('RGB')).astype(int)
    assert np.abs(full.astype(int) - reference).mean() < 2
    crop = np.zeros((16, 32, 3), np.uint8)
    assert imdecode(jpeg, crop, 64, 96, 16, 32, 40, 8, 1, 1, True, False) == 0
    assert np.array_equal(crop, full[8:24, 40:72])
    flipped = np.zeros_like(crop)
    assert imdecode(jpeg, flipped, 64, 96, 16, 32, 40, 8, 1, 1, True, True) == 0
    assert np.array_equal(flipped, crop[:, ::-1])
    half = np.zeros((32, 48, 3), np.uint8)
    assert imdecode(jpeg, half, 64, 96, 64, 96, 0, 0, 1, 2, False, False) == 0
    assert np.abs(half.astype(int) - full[::2, ::2].astype(int)).mean() < 12
    assert imdecode(jpeg, np.zeros(10, np.uint8), 64, 96) == -2      # dst too small (BKD-013)
    assert imdecode(jpeg[:50].copy(), full, 64, 96) == -1            # truncated


def test_memcpy_read_resize_crop(tmp_path):
    memcpy = Compiler.compile(libffcv.memcpy)
    src = np.arange(12, dtype=np.uint8)
    dst = np.zeros((4, 8), np.uint8)
    memcpy(src, dst)
    assert np.array_equal(dst.reshape(-1)[:12], src) and not dst.reshape(-1)[12:].any()
    path = tmp_path / 'f.bin'
    path.write_bytes(bytes(range(100)))
    buf = np.zeros(10, np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert libffcv.read(fd, buf, 20) == 10
    finally:
        os.close(fd)
    assert buf.tolist() == list(range(20, 30))
    image = np.full((40, 60, 3), 7, np.uint8)
    image[10:30, 20:50] = 200
    out = np.zeros((10, 15, 3), np.uint8)
    assert Compiler.compile(libffcv.resize_crop)(image, 10, 30, 20, 50, out) == 0
    assert (out == 200).all()
