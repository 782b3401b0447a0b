"""What the nvjpeg backend's test modules share: tolerances, a CPU decode, images, references.

The tolerances are stated in test_nvjpeg.py's docstring.
"""
import io

import numba
import numpy as np
import torch
from PIL import Image

from ffcvx.testing import shared_dir  # noqa: F401  (re-exported to the test modules)


PILLOW_MAX = 1
PILLOW_MEAN = 0.3
# BKD-023: agreement between two JPEG backends at full scale.
BKD023_MEAN = 2.0
BKD023_MAX = 24



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


def corrupt(data):
    """Overwrite the first Huffman table's code counts with 0xFF: no valid table."""
    dht = data.index(b"\xff\xc4")
    return data[:dht + 4] + b"\xff" * 20 + data[dht + 24:]
