"""An ImageNet-like folder of JPEGs for the writer benchmark, made from the shared photos.

The shared photos are small (300-640 px), so larger images are collages:
a grid of cells, each a photo resized by at most about 1.3x, so that detail
per pixel, and with it the cost of entropy decoding, stays that of a photo
rather than that of an upscaled, smooth image.
"""
import math
from pathlib import Path

import numpy as np
from PIL import Image

#: Long sides are drawn log-uniformly from this range (pixels).
LONG_SIDES = (300, 2000)
#: JPEG qualities are drawn uniformly from this range (inclusive).
QUALITIES = (75, 95)
#: Classes of the folder (sub-directories ``n00`` ... ``n09``).
NUM_CLASSES = 10


def _collage(photos, width, height, rng):
    canvas = Image.new('RGB', (width, height))
    cell = 420                                   # about the shared photos' size
    cols, rows = max(1, math.ceil(width / cell)), max(1, math.ceil(height / cell))
    xs = np.linspace(0, width, cols + 1).astype(int)
    ys = np.linspace(0, height, rows + 1).astype(int)
    for r in range(rows):
        for c in range(cols):
            photo = photos[int(rng.integers(len(photos)))]
            if rng.random() < 0.5:
                photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            size = (int(xs[c + 1] - xs[c]), int(ys[r + 1] - ys[r]))
            canvas.paste(photo.resize(size, Image.Resampling.LANCZOS), (int(xs[c]), int(ys[r])))
    return canvas


def make_folder(photos_root, out, count, seed=0):
    """Write ``count`` JPEGs into ``out/nNN/imgNNNNN.jpg``; return ``[(path, label), ...]``.

    Parameters
    ----------
    photos_root : str or Path
        ``shared/data/photos`` (``<class>/<photo>.jpg``).
    out : str or Path
        Folder to fill (created).
    count : int
        Number of images.
    seed : int
        Sizes, aspect ratios, qualities and collages are drawn from it.

    Returns
    -------
    list of (str, int)
        Each image's path and label, in ImageFolder's order (class, then name).
    """
    rng = np.random.default_rng(seed)
    photos = [Image.open(p).convert('RGB') for p in sorted(Path(photos_root).glob('*/*.jpg'))]
    if not photos:
        raise FileNotFoundError(f"no photos in {photos_root}")
    out = Path(out)
    samples = []
    for i in range(count):
        label = i % NUM_CLASSES
        folder = out / f"n{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        long_side = int(round(math.exp(rng.uniform(*np.log(LONG_SIDES)))))
        aspect = rng.uniform(0.6, 1.0)           # short side / long side
        short_side = max(1, int(round(long_side * aspect)))
        width, height = (long_side, short_side) if rng.random() < 0.7 else (short_side, long_side)
        quality = int(rng.integers(QUALITIES[0], QUALITIES[1] + 1))
        path = folder / f"img{i:05d}.jpg"
        _collage(photos, width, height, rng).save(path, format='JPEG', quality=quality)
        samples.append((str(path), label))
    return sorted(samples, key=lambda s: (s[1], s[0]))
