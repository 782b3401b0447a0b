"""Fixtures of the nvjpeg backend's tests: the CPU-decoding backend, the shared photos, JPEGs of one size."""
import glob
from pathlib import Path

import pytest

from ffcvx_nvjpeg import NvJPEGBackend

from _nvjpeg_common import shared_dir, pillow_decode, jpeg_bytes, synthetic


@pytest.fixture(scope="module")
def cpu_backend():
    return NvJPEGBackend(decode_fn=pillow_decode, py_device="cpu")


@pytest.fixture(scope="module")
def photos():
    files = sorted(glob.glob(str(shared_dir() / "data" / "photos" / "*" / "*.jpg")))
    if not files:
        pytest.skip("no photos in the shared data folder")
    return [Path(f).read_bytes() for f in files]


@pytest.fixture(scope="module")
def same_size():
    """Three JPEGs of one size (48x64) and one of another (40x64)."""
    return ([jpeg_bytes(synthetic(48, 64, seed)) for seed in range(3)],
            jpeg_bytes(synthetic(40, 64, 9)))
