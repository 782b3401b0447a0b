"""The ``.beton`` files the memory-strategy suite writes: 2, 4 and 8 MiB pages.

Variable-size bytes, JSON and arrays; empty samples; a sample that fills a
page exactly; a 6 MiB sample, larger than the other files' pages (the writer
cannot put a sample across pages, FMT-041).
"""
import numpy as np
import pytest

from .settings import MIB

__all__ = ['WRITTEN', 'written_betons']


class _Pages2:
    """36 samples in 2 MiB pages: an index, a 76,800-byte float32 array, a blob of 0-700 KB.

    Blobs are empty for samples 0, 10, 11 and 35 (the first one's zero-size
    region shares its offset with sample 1's array, FMT-050); sample 5 fills a
    page exactly, sample 6 has a 1-byte blob.
    """

    page_size = 2 * MIB
    special = {0: 0, 5: 2 * MIB - 80 * 240 * 4, 6: 1, 10: 0, 11: 0, 35: 0}

    def __len__(self):
        return 36

    def __getitem__(self, i):
        rng = np.random.default_rng(1000 + int(i))
        size = self.special.get(int(i), int(rng.integers(1, 700_000)))
        return (int(i), rng.standard_normal((80, 240)).astype(np.float32),
                rng.integers(0, 256, size, dtype=np.uint8))

    @staticmethod
    def fields():
        from ...fields import BytesField, IntField, NDArrayField
        return {'index': IntField(), 'array': NDArrayField(np.float32, (80, 240)),
                'blob': BytesField()}


class _Pages4:
    """36 samples in 4 MiB pages: an int16 grid, 3 float64, a JSON note, every other tail empty."""

    page_size = 4 * MIB

    def __len__(self):
        return 36

    def __getitem__(self, i):
        i = int(i)
        rng = np.random.default_rng(2000 + i)
        note = {'sample': i, 'tags': ['x' * int(n) for n in rng.integers(0, 40, i % 5)]}
        tail = rng.integers(0, 256, 0 if i % 2 == 0 else int(rng.integers(1, 5000)), dtype=np.uint8)
        return (rng.integers(-2**15, 2**15, (250, 600), dtype=np.int16), rng.standard_normal(3),
                note, tail)

    @staticmethod
    def fields():
        from ...fields import BytesField, JSONField, NDArrayField
        return {'grid': NDArrayField(np.int16, (250, 600)), 'vec': NDArrayField(np.float64, (3,)),
                'note': JSONField(), 'tail': BytesField()}


class _Pages8:
    """5 samples in one 8 MiB page: blobs of 6 MiB, 0, 1 byte, 1.5 MiB and 0, and a label."""

    page_size = 8 * MIB
    sizes = (6 * MIB, 0, 1, 3 * MIB // 2, 0)

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        rng = np.random.default_rng(3000 + int(i))
        return rng.integers(0, 256, self.sizes[int(i)], dtype=np.uint8), int(i) * 7

    @staticmethod
    def fields():
        from ...fields import BytesField, IntField
        return {'blob': BytesField(), 'label': IntField()}


WRITTEN = {'pages_2mib': _Pages2, 'pages_4mib': _Pages4, 'pages_8mib': _Pages8}


@pytest.fixture(scope='session')
def written_betons(tmp_path_factory):
    """``{name: Path}`` of the files the suite writes (see :data:`WRITTEN`)."""
    from ...writer import DatasetWriter
    folder = tmp_path_factory.mktemp('ffcvx-conformance')
    paths = {}
    for name, dataset_class in WRITTEN.items():
        dataset = dataset_class()
        path = folder / f'{name}.beton'
        DatasetWriter(str(path), dataset.fields(), page_size=dataset.page_size, num_workers=1,
                      progress=False).from_indexed_dataset(dataset)
        paths[name] = path
    return paths


# -- helpers -----------------------------------------------------------------------------
