"""Tests of the ffcvx-nvjpeg decoder backend (kind ``batch``).

Most tests run without a GPU: the backend's decode step is replaced by a
Pillow decoder (``decode_fn``) and ``device='cpu'``, so that everything around
the decode (argument checks, batching, crop, resize, flip, layout, error
mapping) is exercised on any machine. The tests at the end run the real
torchvision/nvJPEG path and skip, with ``available()``'s reason, where it is
not available.

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
import glob
import importlib.metadata
import io
import subprocess
import sys
import types
from pathlib import Path

import numba
import numpy as np
import pytest
import torch
from PIL import Image

import ffcvx_nvjpeg
from ffcvx_nvjpeg import (TORCHVISION_HINT, CropOutsideImageError, NvJPEGBackend,
                          SampleDecodeError)
from ffcvx.errors import BackendNotFoundError, DecodeError
from ffcvx.testing import shared_dir

PILLOW_MAX = 1
PILLOW_MEAN = 0.3
# BKD-023: agreement between two JPEG backends at full scale.
BKD023_MEAN = 2.0
BKD023_MAX = 24


# -- fixtures and helpers ---------------------------------------------------------------

def pillow_decode(data, device):
    """A CPU stand-in for torchvision's decode_jpeg, with the same contract.

    Gray images come back as ``(1, h, w)`` on purpose, to exercise the
    backend's gray-to-RGB expansion.
    """
    out = []
    for tensor in data:
        assert tensor.dtype == torch.uint8 and tensor.ndim == 1 and tensor.device.type == "cpu"
        image = Image.open(io.BytesIO(tensor.numpy().tobytes()), formats=["JPEG"])
        image.load()
        if image.mode == "L":
            pixels = torch.from_numpy(np.asarray(image).copy())[None]
        else:
            pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)
        out.append(pixels.to(device))
    return out


def jpeg_bytes(image, quality=90, **options):
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, **options)
    return buf.getvalue()


def pil_rgb(data):
    return Image.open(io.BytesIO(bytes(data))).convert("RGB")


def synthetic(height, width, seed=0):
    """A smooth colour image (JPEG-friendly) of the given size."""
    yy, xx = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 6, 3)
    pixels = np.stack([127 + 120 * np.sin(xx / (9 + 3 * c) + yy / (13 + c) + phase[c])
                       for c in range(3)], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


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


@numba.njit
def _seed_numba(seed):
    # Jitted code draws from numba's own generator, which only a seed set
    # inside jitted code reaches; this makes the boxes reproducible.
    np.random.seed(seed)


def random_boxes(sources, seed):
    """RandomResizedCrop boxes with ffcvx's own sampler (the one the decoders use)."""
    from ffcvx.decoders.kernels import get_random_crop
    _seed_numba(seed)
    boxes = []
    for data in sources:
        width, height = Image.open(io.BytesIO(data)).size
        boxes.append(get_random_crop(height, width, 0.08, 1.0, np.log(3 / 4), np.log(4 / 3)))
    return np.array(boxes, dtype=np.int64)


def center_boxes(sources, ratio=224 / 256):
    from ffcvx.decoders.kernels import get_center_crop
    boxes = []
    for data in sources:
        width, height = Image.open(io.BytesIO(data)).size
        boxes.append(get_center_crop(height, width, ratio))
    return np.array(boxes, dtype=np.int64)


def torch_reference(pixels_chw, box, size, flip):
    """One image the plain way: crop, float32 antialiased bilinear resize, round, flip, HWC."""
    y, x, h, w = (int(v) for v in box)
    region = pixels_chw[:, y:y + h, x:x + w]
    if (h, w) != tuple(size):
        region = torch.nn.functional.interpolate(
            region[None].float(), size=tuple(size), mode="bilinear", align_corners=False,
            antialias=True)[0].round().clamp(0, 255).to(torch.uint8)
    if flip:
        region = torch.flip(region, dims=[2])
    return region.permute(1, 2, 0)


def pillow_reference(data, box, size, flip):
    y, x, h, w = (int(v) for v in box)
    image = pil_rgb(data).crop((x, y, x + w, y + h))
    if (h, w) != tuple(size):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    if flip:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(image)


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


# -- batch crop, resize, flip, layout (CPU, Pillow decode) -------------------------------

@pytest.mark.parametrize("size", [(224, 224), (64, 96), (500, 500)])
def test_random_crops_equal_plain_torch_reference(cpu_backend, photos, size):
    boxes = random_boxes(photos, seed=size[0])
    flips = np.random.default_rng(size[1]).random(len(photos)) < 0.5
    out = cpu_backend.decode_batch(photos, boxes, size, flips, device="cpu")
    assert out.dtype == torch.uint8 and out.device.type == "cpu"
    assert tuple(out.shape) == (len(photos), *size, 3) and out.is_contiguous()
    for k, data in enumerate(photos):
        pixels = torch.from_numpy(np.asarray(pil_rgb(data)).copy()).permute(2, 0, 1)
        expected = torch_reference(pixels, boxes[k], size, flips[k])
        assert torch.equal(out[k], expected), f"sample {k}"


@pytest.mark.parametrize("size", [(224, 224), (64, 96), (500, 500)])
def test_random_crops_close_to_pillow(cpu_backend, photos, size):
    boxes = random_boxes(photos, seed=7 + size[0])
    flips = np.arange(len(photos)) % 2 == 1
    out = cpu_backend.decode_batch(photos, boxes, size, flips, device="cpu").numpy()
    for k, data in enumerate(photos):
        diff = np.abs(out[k].astype(np.int16) - pillow_reference(data, boxes[k], size, flips[k]))
        assert diff.max() <= PILLOW_MAX, f"sample {k}: max {diff.max()}"
        assert diff.mean() <= PILLOW_MEAN, f"sample {k}: mean {diff.mean():.3f}"


def test_center_crops(cpu_backend, photos):
    boxes = center_boxes(photos)
    out = cpu_backend.decode_batch(photos, boxes, (224, 224), device="cpu")
    for k, data in enumerate(photos):
        pixels = torch.from_numpy(np.asarray(pil_rgb(data)).copy()).permute(2, 0, 1)
        assert torch.equal(out[k], torch_reference(pixels, boxes[k], (224, 224), False))


def test_flip_mirrors_columns(cpu_backend, photos):
    boxes = random_boxes(photos[:4], seed=3)
    plain = cpu_backend.decode_batch(photos[:4], boxes, (32, 48), device="cpu")
    flipped = cpu_backend.decode_batch(photos[:4], boxes, (32, 48),
                                       np.array([True, False, True, False]), device="cpu")
    assert torch.equal(flipped[0], plain[0].flip(1)) and torch.equal(flipped[1], plain[1])
    assert torch.equal(flipped[2], plain[2].flip(1)) and torch.equal(flipped[3], plain[3])


def test_layout_is_channels_last_rgb(cpu_backend):
    # pure red on the left half, pure blue on the right half
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:, :32, 0] = 255
    pixels[:, 32:, 2] = 255
    data = jpeg_bytes(Image.fromarray(pixels), quality=100, subsampling=0)
    out = cpu_backend.decode_batch([data], device="cpu")
    assert tuple(out.shape) == (1, 32, 64, 3)
    left, right = out[0, 16, 8].tolist(), out[0, 16, 56].tolist()
    assert left[0] > 240 and left[2] < 15, left
    assert right[2] > 240 and right[0] < 15, right


def test_whole_images_of_one_size(cpu_backend, same_size):
    sources, _ = same_size
    out = cpu_backend.decode_batch(sources, device="cpu")
    assert tuple(out.shape) == (3, 48, 64, 3)
    for k, data in enumerate(sources):
        assert np.array_equal(out[k].numpy(), np.asarray(pil_rgb(data)))
    resized = cpu_backend.decode_batch(sources, output_size=(24, 40), device="cpu")
    for k, data in enumerate(sources):
        pixels = torch.from_numpy(np.asarray(pil_rgb(data)).copy()).permute(2, 0, 1)
        assert torch.equal(resized[k], torch_reference(pixels, (0, 0, 48, 64), (24, 40), False))


def test_mixed_sizes_without_crops_is_an_error(cpu_backend, same_size):
    sources, odd = same_size
    with pytest.raises(ValueError) as info:
        cpu_backend.decode_batch([sources[0], odd, sources[1]], device="cpu")
    message = str(info.value)
    assert "48x64 (positions 0, 2)" in message and "40x64 (position 1)" in message
    # with crops the sizes may differ
    boxes = np.array([[0, 0, 40, 64]] * 3, dtype=np.int64)
    out = cpu_backend.decode_batch([sources[0], odd, sources[1]], boxes, device="cpu")
    assert tuple(out.shape) == (3, 40, 64, 3)


def test_crops_of_different_sizes_need_output_size(cpu_backend, same_size):
    sources, _ = same_size
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 12], [1, 1, 10, 10]], dtype=np.int64)
    with pytest.raises(ValueError, match=r"10x10 \(positions 0, 2\); 10x12 \(position 1\)"):
        cpu_backend.decode_batch(sources, boxes, device="cpu")
    assert tuple(cpu_backend.decode_batch(sources, boxes, (8, 8), device="cpu").shape) == (3, 8, 8, 3)


def test_gray_jpeg_comes_out_rgb(cpu_backend):
    gray = Image.fromarray((np.arange(24 * 40).reshape(24, 40) % 251).astype(np.uint8), "L")
    data = jpeg_bytes(gray)
    out = cpu_backend.decode_batch([data], device="cpu")[0].numpy()
    expected = np.asarray(Image.open(io.BytesIO(data)))
    assert out.shape == (24, 40, 3)
    for channel in range(3):
        assert np.array_equal(out[:, :, channel], expected)


def test_source_types(cpu_backend, same_size):
    data = same_size[0][0]
    readonly = np.frombuffer(data, np.uint8)
    assert not readonly.flags.writeable
    sources = [data, bytearray(data), memoryview(data), readonly, np.array(readonly)]
    out = cpu_backend.decode_batch(sources, device="cpu")
    for k in range(1, len(sources)):
        assert torch.equal(out[k], out[0])


def test_empty_batch(cpu_backend):
    out = cpu_backend.decode_batch([], output_size=(5, 7), device="cpu")
    assert tuple(out.shape) == (0, 5, 7, 3) and out.dtype == torch.uint8
    with pytest.raises(ValueError, match="output shape is unknown"):
        cpu_backend.decode_batch([], device="cpu")


def test_bad_argument_shapes(cpu_backend, same_size):
    sources, _ = same_size
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        cpu_backend.decode_batch(sources, np.zeros((2, 4), np.int64), device="cpu")
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        cpu_backend.decode_batch(sources, np.zeros((3, 4), np.float32), device="cpu")
    with pytest.raises(ValueError, match=r"flips must have shape \(3,\)"):
        cpu_backend.decode_batch(sources, flips=np.zeros(2, bool), device="cpu")
    with pytest.raises(ValueError, match="output_size"):
        cpu_backend.decode_batch(sources, output_size=(0, 4), device="cpu")


# -- errors ----------------------------------------------------------------------------

def corrupt(data):
    """Overwrite the first Huffman table's code counts with 0xFF: no valid table."""
    dht = data.index(b"\xff\xc4")
    return data[:dht + 4] + b"\xff" * 20 + data[dht + 24:]


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


# -- the real torchvision / nvJPEG path (needs a CUDA GPU) ---------------------------------

@pytest.fixture(scope="module")
def gpu_backend():
    """The installed backend, when it can decode on CUDA here; else skip with its reason."""
    ok, reason = ffcvx_nvjpeg.backend.available()
    if not ok:
        pytest.skip(reason)
    return ffcvx_nvjpeg.backend


def test_gpu_available(gpu_backend):
    assert gpu_backend.available() == (True, "")


def test_gpu_decode_batch_layout_and_pillow_agreement(gpu_backend, photos):
    from ffcvx_nvjpeg import torchvision_decode
    sizes = {pil_rgb(data).size for data in photos}
    for width, height in sorted(sizes)[:3]:
        batch = [data for data in photos if pil_rgb(data).size == (width, height)]
        out = gpu_backend.decode_batch(batch)
        assert out.device.type == "cuda" and out.dtype == torch.uint8
        assert tuple(out.shape) == (len(batch), height, width, 3) and out.is_contiguous()
        for k, data in enumerate(batch):
            diff = np.abs(out[k].cpu().numpy().astype(np.int16) - np.asarray(pil_rgb(data)))
            assert diff.mean() <= BKD023_MEAN and diff.max() <= BKD023_MAX, \
                f"{height}x{width} #{k}: mean {diff.mean():.2f} max {diff.max()}"
    # the whole batch at once gives what one-by-one decoding gives
    single = [torchvision_decode([torch.frombuffer(bytearray(d), dtype=torch.uint8)],
                                 torch.device("cuda"))[0] for d in photos[:4]]
    boxes = np.array([(0, 0, 100, 100)] * 4, dtype=np.int64)
    out = gpu_backend.decode_batch(photos[:4], boxes)
    for k in range(4):
        assert torch.equal(out[k], single[k][:, :100, :100].permute(1, 2, 0))


def test_gpu_crop_resize_flip_match_cpu_resize_of_gpu_pixels(gpu_backend, photos):
    from ffcvx_nvjpeg import torchvision_decode
    boxes = random_boxes(photos, seed=11)
    flips = np.arange(len(photos)) % 3 == 0
    out = gpu_backend.decode_batch(photos, boxes, (224, 224), flips)
    assert out.device.type == "cuda" and tuple(out.shape) == (len(photos), 224, 224, 3)
    decoded = torchvision_decode([torch.frombuffer(bytearray(d), dtype=torch.uint8)
                                  for d in photos], torch.device("cuda"))
    for k in range(len(photos)):
        expected = torch_reference(decoded[k].cpu(), boxes[k], (224, 224), flips[k])
        diff = (out[k].cpu().to(torch.int16) - expected.to(torch.int16)).abs()
        assert diff.max() <= 1, f"sample {k}: max {diff.max()}"


def test_gpu_corrupt_stream(gpu_backend, photos):
    bad = corrupt(photos[1])
    with pytest.raises(DecodeError, match="position 1") as info:
        gpu_backend.decode_batch([photos[0], bad], np.array([(0, 0, 8, 8)] * 2, np.int64))
    assert info.value.position == 1


def test_gpu_decode_region_py(gpu_backend, photos):
    region = gpu_backend.decode_region_py(photos[0], (5, 6, 20, 30))
    assert isinstance(region, np.ndarray) and region.shape == (20, 30, 3)
    full = np.asarray(pil_rgb(photos[0]))[5:25, 6:36]
    assert np.abs(region.astype(np.int16) - full).mean() <= BKD023_MEAN
