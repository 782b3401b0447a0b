"""What the test modules share: the repository's path, the golden files, small datasets.

Test modules import these from here (``from _common import ...``), not from
``conftest``: pytest may replace the module named ``conftest`` when another
session (the conformance suite's in-process run) loads a conftest of its own.
"""
from pathlib import Path

from ffcvx.testing import GOLDEN_SUBDIR, SHARED_ENV, find_golden_dir

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = find_golden_dir()
GOLDEN_MISSING = (f"golden files not found: expected {GOLDEN_SUBDIR} with .beton files in the "
                  f"shared folder (${SHARED_ENV}, else <repo>/../shared)")


class Labelled:
    """``dataset[i] -> (images[i], i)``: each sample's label is its index."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], i


def write_labelled(path, images, image_field):
    """Write ``images`` into ``path`` as fields ``image`` (``image_field``) and ``label`` (= index)."""
    from ffcvx.fields import IntField
    from ffcvx.writer import DatasetWriter
    DatasetWriter(str(path), {'image': image_field, 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(Labelled(images))
    return str(path)


class Computed:
    """``dataset[i] -> sample(i)`` for ``i < n``: a dataset computed from the index.

    ``sample`` should be a module-level function, so that writer processes
    can unpickle the dataset.
    """

    def __init__(self, n, sample):
        self.n, self.sample = n, sample

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.sample(i)
