"""Merging part files costs little next to writing them (issue 22).

Run: make bench, or pytest benchmarks/test_merge_speed.py --benchmark-only -s

The ImageNet-like folder of the write benchmark (``write_folder.py``) is
written as 8 parts, one after the other, each with every core
(``RGBImageField(write_mode='jpg', max_resolution=512, jpeg_quality=90,
jpeg_passthrough=True)``, the write benchmark's largest output per image, so
the least favourable ratio), then the parts are merged (``ffcvx.merge``: a
kernel copy of the pages, new tables, an fsync). Target within this run:
the merge takes at most 5% of the parts' writing time, for parts of at least
1 GiB in all.

To reach 1 GiB without drawing tens of thousands of collages, the folder
holds ``DISTINCT`` drawn images and hard links to them (``COPIES`` names per
image): the writer decodes, shrinks and encodes every name anew, as it would
distinct files.
"""
import os
import time

import pytest
from torchvision.datasets import ImageFolder

import ffcvx
from ffcvx.fields import IntField, RGBImageField
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

from conftest import photos_dir
from write_folder import make_folder

DISTINCT = int(os.environ.get('FFCVX_BENCH_MERGE_DISTINCT', '1000'))
COPIES = int(os.environ.get('FFCVX_BENCH_MERGE_COPIES', '20'))
PARTS = 8
MIN_BYTES = 1 << 30
MAX_MERGE_SHARE = 0.05


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    root = photos_dir()
    drawn = tmp_path_factory.mktemp('drawn')
    samples = make_folder(root, drawn, DISTINCT)
    big = tmp_path_factory.mktemp('imagenet_like_linked')
    for path, label in samples:
        target = big / f'n{label:02d}'
        target.mkdir(exist_ok=True)
        for copy in range(COPIES):
            os.link(path, target / f'c{copy:02d}_{os.path.basename(path)}')
    return big


@pytest.fixture(scope='module')
def figures(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp('merge')
    dataset = ImageFolder(str(folder))
    parts = [str(out / f'train.part-{k}-of-{PARTS}.beton') for k in range(PARTS)]
    start = time.perf_counter()
    for k, path in enumerate(parts):
        DatasetWriter(path, {'image': RGBImageField(write_mode='jpg', max_resolution=512,
                                                    jpeg_quality=90, jpeg_passthrough=True),
                             'label': IntField()},
                      num_workers=-1, progress=False, seed=0).from_indexed_dataset(
                          dataset, part=(k, PARTS))
    write_s = time.perf_counter() - start
    part_bytes = sum(os.path.getsize(p) for p in parts)
    start = time.perf_counter()
    merged = ffcvx.merge(parts, out / 'train.beton')
    merge_s = time.perf_counter() - start
    num_samples = Reader(merged).num_samples
    print(f"\nMerging {PARTS} parts of {len(dataset):,} ImageNet-like images at max_resolution "
          f"512 ({part_bytes / 2**30:.2f} GiB in all, {os.cpu_count()} cores): writing the parts "
          f"{write_s:.1f} s ({len(dataset) / write_s:,.0f} img/s), merging {merge_s:.2f} s "
          f"({part_bytes / 2**20 / merge_s:,.0f} MiB/s), {merge_s / write_s:.1%} of the writing")
    return dict(write_s=write_s, merge_s=merge_s, part_bytes=part_bytes,
                num_samples=num_samples, expected=len(dataset))


def test_merge_share_of_conversion(benchmark, figures):
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    share = figures['merge_s'] / figures['write_s']
    benchmark.extra_info.update(share=round(share, 4), write_s=round(figures['write_s'], 1),
                                merge_s=round(figures['merge_s'], 2),
                                gib=round(figures['part_bytes'] / 2**30, 2))
    assert figures['num_samples'] == figures['expected']
    assert figures['part_bytes'] >= MIN_BYTES, (
        f"the parts hold {figures['part_bytes'] / 2**30:.2f} GiB, under the 1 GiB the target is "
        f"set for: raise FFCVX_BENCH_MERGE_COPIES")
    assert share <= MAX_MERGE_SHARE, (
        f"the merge took {share:.1%} of the parts' writing time (target at most "
        f"{MAX_MERGE_SHARE:.0%})")
