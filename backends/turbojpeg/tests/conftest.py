"""Fixtures of the turbojpeg backend's tests: the backend, the shared photos, its C function."""
import glob
import importlib.metadata

import pytest
from PIL import Image

from _turbojpeg_common import DECODE_PROTO, shared_dir


@pytest.fixture(scope="module")
def backend():
    eps = [ep for ep in importlib.metadata.entry_points(group="ffcvx.decoders")
           if ep.name == "turbojpeg"]
    assert len(eps) == 1, "ffcvx-turbojpeg is not installed (entry point missing)"
    obj = eps[0].load()
    ok, why = obj.available()
    assert ok, why
    return obj


@pytest.fixture(scope="module")
def photos():
    files = sorted(glob.glob(str(shared_dir() / "data" / "photos" / "*" / "*.jpg")))
    if not files:
        pytest.skip("no photos in the shared data folder")
    return [Image.open(f).convert("RGB") for f in files]


@pytest.fixture(scope="module")
def c_decode(backend):
    return DECODE_PROTO(backend.function_address("decode_region"))
