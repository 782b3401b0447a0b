"""Benchmark data: an ImageNet-like .beton made from the shared photos."""
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ffcvx.testing import SharedDirNotFound, shared_dir

REPO = Path(__file__).resolve().parents[1]
#: Samples in the benchmark file; FFCV's figures in shared/reference used 2,048.
BENCH_SAMPLES = 2048


def photos_dir():
    """``shared/data/photos``; fails the calling benchmark when missing (its figures need them).

    The message names the folder looked at and ``FFCVX_SHARED``
    (:func:`ffcvx.testing.shared_dir`).
    """
    try:
        return shared_dir('data', 'photos')
    except SharedDirNotFound as exc:
        pytest.fail(str(exc))


class PhotoCrops:
    """Random crops of the photos, longest side 500 px, as ImageNet-like JPEG inputs.

    ``dataset[i]`` is ``(PIL image, class index)``; deterministic per ``i``.
    """

    def __init__(self, root, count, longest=500):
        self.files = sorted(Path(root).glob('*/*.jpg'))
        self.classes = sorted({f.parent.name for f in self.files})
        self.count = count
        self.longest = longest

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        rng = np.random.default_rng(int(i))
        path = self.files[int(i) % len(self.files)]
        image = Image.open(path).convert('RGB')
        w, h = image.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        image = image.crop((x, y, x + cw, y + ch))
        scale = self.longest / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS)
        return image, self.classes.index(path.parent.name)


@pytest.fixture(scope='session')
def photos_beton(tmp_path_factory):
    from ffcvx.fields import IntField, RGBImageField
    from ffcvx.writer import DatasetWriter

    root = photos_dir()
    path = tmp_path_factory.mktemp('bench') / 'photos.beton'
    DatasetWriter(str(path), {'image': RGBImageField(write_mode='jpg', jpeg_quality=90),
                              'label': IntField()},
                  num_workers=2, progress=False).from_indexed_dataset(PhotoCrops(root, BENCH_SAMPLES))
    return path


@pytest.fixture(scope='session')
def photo_jpegs(photos_beton):
    """The stored JPEG bytes of every sample of ``photos_beton``."""
    from ffcvx.reader import Reader

    reader = Reader(str(photos_beton))
    return [bytes(reader.read_sample_region(i, 'image')) for i in range(reader.num_samples)]


def jpeg_bytes(image, quality=90):
    out = io.BytesIO()
    image.save(out, format='JPEG', quality=quality)
    return out.getvalue()
