"""examples/simclr_two_views.py runs on a .beton of real photos (two batches, a subprocess)."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ffcvx.fields import RGBImageField

from _common import REPO, write_labelled


def test_simclr_example_prints_two_views_per_batch(tmp_path, shared_dir):
    images = []
    for path in sorted((Path(shared_dir) / 'data' / 'photos').rglob('*.jpg'))[:8]:
        with Image.open(path) as image:
            image = image.convert('RGB')
            image.thumbnail((256, 256))
            images.append(np.asarray(image).copy())
    beton = write_labelled(tmp_path / 'photos.beton', images, RGBImageField(write_mode='jpg'))
    run = subprocess.run([sys.executable, str(REPO / 'examples' / 'simclr_two_views.py'), beton,
                          '--batches', '2', '--batch-size', '4', '--num-workers', '2'],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    shapes = "image (4, 3, 224, 224), label (4, 1), image2 (4, 3, 224, 224)"
    assert lines[:2] == [f"batch 0: {shapes}", f"batch 1: {shapes}"], run.stdout
    assert re.fullmatch(r"[\d,]+ views/s on 2 thread\(s\)", lines[2]), run.stdout
