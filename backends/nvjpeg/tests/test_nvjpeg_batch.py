"""Tests of the nvjpeg backend's batches: crop, resize, flip and layout on a CPU, then the real GPU path.

Tolerances: see test_nvjpeg.py's docstring.
"""
import io

import numpy as np
import pytest
import torch
from PIL import Image

import ffcvx_nvjpeg
from ffcvx.errors import DecodeError

from _nvjpeg_common import (PILLOW_MAX, PILLOW_MEAN, BKD023_MEAN, BKD023_MAX, jpeg_bytes, pil_rgb,
                            random_boxes, center_boxes, torch_reference, pillow_reference, corrupt)


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
