"""Helpers of the FFCV-SSL colour tests: the shared photos, small, and a .beton of them."""
from pathlib import Path

import numpy as np


def small_photos(shared_dir, size=(128, 96), count=None):
    """The shared photos as uint8 ``(H, W, 3)`` arrays, resized to ``size`` (W, H) with PIL."""
    from PIL import Image
    paths = sorted(Path(shared_dir, 'data', 'photos').glob('*/*.jpg'))
    if count is not None:
        paths = paths[::max(1, len(paths) // count)][:count]
    assert paths, f"no photos under {shared_dir}/data/photos"
    return [np.asarray(Image.open(p).convert('RGB').resize(size, Image.BILINEAR)).copy()
            for p in paths]


def to_chw(image):
    """``(H, W, 3)`` uint8 array -> torch ``(3, H, W)`` tensor (a copy)."""
    import torch
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def to_hwc(tensor):
    """torch ``(3, H, W)`` -> numpy ``(H, W, 3)``."""
    return tensor.permute(1, 2, 0).contiguous().numpy()


def photo_beton(path, shared_dir, repeat=2, size=(80, 64)):
    """A .beton of the photos (JPEG, ``size`` = (W, H)), each ``repeat`` times; returns (path, n)."""
    from _common import write_labelled
    from ffcvx.fields import RGBImageField
    images = small_photos(shared_dir, size=size) * repeat
    write_labelled(path, images, RGBImageField(write_mode='jpg'))
    return str(path), len(images)
