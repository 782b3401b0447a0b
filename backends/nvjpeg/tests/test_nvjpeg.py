"""Tests of the ffcvx-nvjpeg decoder backend (kind ``batch``).

Most tests run without a GPU: the backend's decode step is replaced by a
Pillow decoder (``decode_fn``) and ``device='cpu'``, so that everything around
the decode (argument checks, batching, crop, resize, flip, layout, error
mapping) is exercised on any machine. The batch tests, and those of the
real torchvision/nvJPEG path (which skip, with ``available()``'s reason,
where it is not available), are in test_nvjpeg_batch.py; the shared
helpers in _nvjpeg_common.py, the fixtures in conftest.py.

Tolerances, stated once:

- batch crop + resize + flip vs a per-image reference written with plain
  torch ops (the same float32 antialiased bilinear interpolate): exact;
- vs Pillow (crop, then ``resize(BILINEAR)``, which is antialiased too):
  max |difference| <= PILLOW_MAX levels and mean <= PILLOW_MEAN per image
  (measured on the 31 shared photos at 224x224, 64x96 and 500x500 outputs:
  max 1, mean at most 0.196);
- GPU only: nvJPEG full decode vs Pillow within BKD-023's bounds between JPEG
  backends (mean <= 2.0, max <= 24); GPU resize vs the CPU resize of the same
  decoded pixels: max 1 level (float rounding order may differ).
"""
import importlib.metadata
import io
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

import ffcvx_nvjpeg
from ffcvx_nvjpeg import (TORCHVISION_HINT, CropOutsideImageError, NvJPEGBackend,
                          SampleDecodeError)
from ffcvx.errors import BackendNotFoundError, DecodeError

from _nvjpeg_common import pillow_decode, jpeg_bytes, pil_rgb, synthetic, corrupt


# -- declaration, entry point, availability ---------------------------------------------

def test_entry_point_registered_and_loadable():
    eps = [ep for ep in importlib.metadata.entry_points(group="ffcvx.decoders")
           if ep.name == "nvjpeg"]
    assert len(eps) == 1, "ffcvx-nvjpeg is not installed (entry point missing)"
    obj = eps[0].load()
    assert obj is ffcvx_nvjpeg.backend
    assert obj.name == "nvjpeg"     # BKD-001: the name is the entry point's
    assert obj.formats == frozenset({"jpeg"})
    assert obj.supports_crop is True and obj.supports_scale is False
    assert obj.device == "cuda" and obj.kind == "batch"


def test_registry_loads_it_and_selection_skips_it():
    from ffcvx.registry import Registry, decoder_for_format
    registry = Registry("ffcvx.decoders")
    assert "nvjpeg" in registry.names()
    assert registry.get("nvjpeg") is ffcvx_nvjpeg.backend
    # A batch backend is never picked for the per-sample decoders (BKD-042).
    try:
        chosen = decoder_for_format(registry, "jpeg")
    except BackendNotFoundError:
        return
    assert chosen.name != "nvjpeg"


def test_import_needs_neither_torchvision_nor_cuda():
    code = ("import sys, ffcvx_nvjpeg; "
            "assert 'torchvision' not in sys.modules, 'torchvision imported eagerly'; "
            "import torch; assert not torch.cuda.is_initialized(); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_available_reports_no_cuda_device():
    ok, reason = NvJPEGBackend().available()
    assert ok is False
    assert reason.startswith("no CUDA device"), reason
    assert "pip install torch==2.14.1 torchvision==0.29.1" in reason
    # cached and stable (BKD-005)
    assert ffcvx_nvjpeg.backend.available() == ffcvx_nvjpeg.backend.available()


def test_available_torchvision_missing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # None in sys.modules makes "import torchvision" raise ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.io", None)
    assert NvJPEGBackend().available() == (False, TORCHVISION_HINT)
    assert TORCHVISION_HINT == ("torchvision is not installed: "
                                "pip install torch==2.14.1 torchvision==0.29.1")


def fake_torchvision(decode_jpeg):
    """A stand-in torchvision package whose decode_jpeg is ``decode_jpeg``."""
    package = types.ModuleType("torchvision")
    package.__version__ = "0.0-fake"
    io_module = types.ModuleType("torchvision.io")
    io_module.ImageReadMode = types.SimpleNamespace(RGB="RGB", UNCHANGED="UNCHANGED")
    io_module.encode_jpeg = lambda pixels, quality=75: torch.frombuffer(
        bytearray(jpeg_bytes(Image.fromarray(pixels.permute(1, 2, 0).numpy()), quality)),
        dtype=torch.uint8)
    io_module.decode_jpeg = decode_jpeg
    package.io = io_module
    return package, io_module


def test_available_decode_on_cuda_unsupported(monkeypatch):
    def refuse(data, mode=None, device="cpu"):
        raise RuntimeError("torchvision not compiled with nvJPEG support")
    package, io_module = fake_torchvision(refuse)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.io", io_module)
    ok, reason = NvJPEGBackend().available()
    assert ok is False
    assert "cannot decode JPEG on CUDA" in reason
    assert "not compiled with nvJPEG support" in reason
    assert "pip install torch==2.14.1 torchvision==0.29.1" in reason


def test_available_true_when_every_check_passes(monkeypatch):
    calls = []

    def decode(data, mode=None, device="cpu"):
        calls.append((len(data), mode, str(device)))
        # pretend the result lives on the GPU: only .shape and .device are read
        return [types.SimpleNamespace(shape=(3, 16, 16), device=torch.device("cuda", 0))]
    package, io_module = fake_torchvision(decode)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.io", io_module)
    backend = NvJPEGBackend()
    assert backend.available() == (True, "")
    assert calls == [(1, "RGB", "cuda")]
    backend.available()
    assert len(calls) == 1, "available() must be cached (BKD-005)"


def test_available_with_custom_decoder_needs_only_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    assert NvJPEGBackend(decode_fn=pillow_decode).available() == (True, "")


def test_available_never_raises(monkeypatch):
    def boom():
        raise OSError("driver exploded")
    monkeypatch.setattr(torch.cuda, "is_available", boom)
    ok, reason = NvJPEGBackend().available()
    assert ok is False and "driver exploded" in reason


def test_function_address_says_batch_backend():
    for name in ("decode_region", "anything"):
        with pytest.raises(TypeError, match="batch backend"):
            ffcvx_nvjpeg.backend.function_address(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_decode_on_cuda_without_device_raises_reason(same_size):
    with pytest.raises(BackendNotFoundError, match="no CUDA device"):
        ffcvx_nvjpeg.backend.decode_batch(same_size[0])
    with pytest.raises(BackendNotFoundError, match="no CUDA device"):
        ffcvx_nvjpeg.backend.decode_region_py(same_size[0][0])


# -- errors ----------------------------------------------------------------------------


def test_corrupt_stream_names_position_and_decoder_message(cpu_backend, same_size):
    sources, _ = same_size
    bad = corrupt(sources[1])
    try:
        pillow_decode([torch.frombuffer(bytearray(bad), dtype=torch.uint8)], "cpu")
    except Exception as exc:
        decoder_message = str(exc)
    else:
        pytest.fail("the corrupted stream still decodes with Pillow")
    with pytest.raises(DecodeError) as info:
        cpu_backend.decode_batch([sources[0], bad, sources[2]], device="cpu")
    assert isinstance(info.value, SampleDecodeError) and info.value.position == 1
    message = str(info.value)
    assert "position 1" in message and decoder_message in message


def test_batch_failure_without_culprit(same_size):
    calls = []

    def flaky(data, device):
        calls.append(len(data))
        if len(data) > 1:
            raise RuntimeError("out of decoder memory")
        return pillow_decode(data, device)
    with pytest.raises(DecodeError, match="every sample decodes alone: out of decoder memory"):
        NvJPEGBackend(decode_fn=flaky).decode_batch(same_size[0], device="cpu")
    assert calls == [3, 1, 1, 1]


def test_truncated_stream(cpu_backend, same_size):
    sources, _ = same_size
    cut = sources[2][:len(sources[2]) // 2]
    with pytest.raises(DecodeError, match="position 2.*truncated JPEG") as info:
        cpu_backend.decode_batch([sources[0], sources[1], cut], device="cpu")
    assert info.value.position == 2


def test_not_jpeg_and_empty(cpu_backend, same_size):
    buf = io.BytesIO()
    synthetic(8, 8).save(buf, "PNG")
    with pytest.raises(DecodeError, match="position 1.*not JPEG data"):
        cpu_backend.decode_batch([same_size[0][0], buf.getvalue()], device="cpu")
    with pytest.raises(DecodeError, match="position 0.*empty"):
        cpu_backend.decode_batch([b""], device="cpu")


def test_cmyk_is_refused(cpu_backend):
    data = jpeg_bytes(synthetic(16, 16).convert("CMYK"))
    with pytest.raises(DecodeError, match="CMYK"):
        cpu_backend.decode_batch([data], device="cpu")


@pytest.mark.parametrize("box", [(40, 0, 10, 10), (0, 60, 10, 10), (-1, 0, 10, 10),
                                 (0, 0, 0, 10), (0, 0, 49, 64), (0, 0, 48, 65)])
def test_crop_outside_image(cpu_backend, same_size, box):
    sources, _ = same_size
    boxes = np.array([(0, 0, 10, 10), box, (0, 0, 10, 10)], dtype=np.int64)
    with pytest.raises(DecodeError, match="position 1.*not inside the 48x64 image") as info:
        cpu_backend.decode_batch(sources, boxes, (10, 10), device="cpu")
    assert isinstance(info.value, CropOutsideImageError) and isinstance(info.value, ValueError)
    assert info.value.position == 1


def test_decoder_returning_wrong_shape(same_size):
    def wrong(data, device):
        return [torch.zeros((4, 4, 3), dtype=torch.uint8) for _ in data]
    with pytest.raises(DecodeError, match=r"position 0.*not uint8 \(3, h, w\)"):
        NvJPEGBackend(decode_fn=wrong).decode_batch(same_size[0], device="cpu")


# -- decode_region_py (BKD-030) ------------------------------------------------------------

def test_decode_region_py(cpu_backend, photos):
    data = photos[0]
    full = np.asarray(pil_rgb(data))
    whole = cpu_backend.decode_region_py(data)
    assert isinstance(whole, np.ndarray) and whole.dtype == np.uint8
    assert whole.flags.c_contiguous and np.array_equal(whole, full)
    region = cpu_backend.decode_region_py(np.frombuffer(data, np.uint8), (10, 20, 30, 40), (8, 8))
    assert np.array_equal(region, full[10:40, 20:60])   # target ignored (BKD-018)
    with pytest.raises(ValueError):
        cpu_backend.decode_region_py(data, (0, 0, full.shape[0] + 1, 5))
    with pytest.raises(DecodeError):
        cpu_backend.decode_region_py(data[:100])
