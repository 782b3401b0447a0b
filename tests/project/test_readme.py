"""The README's Python examples run as written (in order, in one namespace).

Only ``my_dataset`` and ``train_dir``, which the README leaves to the reader,
are provided: real photos from shared/data/photos when present, else generated
images.
"""
import re
from pathlib import Path

import numpy as np
from PIL import Image

from ffcvx.testing import shared_dir

README = Path(__file__).resolve().parents[2] / 'README.md'


class _Photos:
    """``dataset[i] -> (PIL image, int)``: 96 images of varied sizes."""

    def __init__(self):
        root = shared_dir('data', 'photos', required=False)
        self.files = sorted(root.glob('*/*.jpg')) if root is not None else []

    def __len__(self):
        return 96

    def __getitem__(self, i):
        if self.files:
            return Image.open(self.files[i % len(self.files)]).convert('RGB'), i % 7
        rng = np.random.default_rng(i)
        size = (int(rng.integers(120, 400)), int(rng.integers(120, 400)))
        return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)), i % 7


def _image_folder(root, count=24):
    """``root/<class>/<n>.jpg`` from the photos (``train_dir``, left to the reader too)."""
    photos = _Photos()
    for i in range(count):
        image, label = photos[i]
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{i:03d}.jpg", quality=90)
    return root


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r'```python\n(.*?)```', README.read_text(), flags=re.S)
    assert len(blocks) >= 3, 'the README lost its examples'
    monkeypatch.chdir(tmp_path)
    namespace = {'my_dataset': _Photos(), 'train_dir': str(_image_folder(tmp_path / 'train'))}
    for block in blocks:
        exec(compile(block, str(README), 'exec'), namespace)
    # What the comments in the last example promise.
    assert tuple(namespace['images'].shape) == (64, 224, 224, 3)
    assert namespace['images'].dtype == np.uint8
    assert tuple(namespace['labels'].shape) == (64, 1)
    namespace['loader'].close()
