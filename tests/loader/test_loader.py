"""The Loader against a plain-Python reference: orders, indices, drop_last, seeds,
errors raised in the training loop, and no leaked threads."""
import json
import threading
import time

import numpy as np
import pytest
import torch

from ffcvx.errors import BackendNotFoundError
from ffcvx.fields import FloatField, IntField, NDArrayField
from ffcvx.fields.decoders import FloatDecoder, IntDecoder, NDArrayDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline import AllocationQuery, Operation
from ffcvx.transforms import ToTensor
from ffcvx.writer import DatasetWriter
from _common import Computed


def _numbered(i):
    """Sample i -> (i, i / 2): lets a test recover which sample it got."""
    return int(i), float(i) / 2


@pytest.fixture(scope='module')
def numbered(tmp_path_factory):
    path = tmp_path_factory.mktemp('loader') / 'numbered.beton'
    DatasetWriter(str(path), {'index': IntField(), 'half': FloatField()},
                  num_workers=1, progress=False).from_indexed_dataset(Computed(600, _numbered))
    return path


def _visit(loader):
    """Sample indices in the order the loader yields them, batch sizes."""
    seen, sizes = [], []
    for index, half in loader:
        seen.extend(index[:, 0].tolist())
        sizes.append(index.shape[0])
        assert torch.equal(half[:, 0], index[:, 0].double() / 2)
    return seen, sizes


def _loader(path, **kw):
    kw.setdefault('batch_size', 7)
    kw.setdefault('num_workers', 2)
    return Loader(str(path), pipelines={'index': [IntDecoder(), ToTensor()],
                                        'half': [FloatDecoder(), ToTensor()]}, **kw)


@pytest.mark.parametrize('drop_last, batches', [(True, 85), (False, 86)])
def test_sequential_order_and_partial_batches(numbered, drop_last, batches):
    loader = _loader(numbered, drop_last=drop_last)
    assert len(loader) == batches
    seen, sizes = _visit(loader)
    expected = list(range(600))[:85 * 7] if drop_last else list(range(600))
    assert seen == expected
    assert len(sizes) == batches
    assert sizes[-1] == (7 if drop_last else 600 - 85 * 7)


def test_random_order_matches_reference_and_changes_per_epoch(numbered):
    loader = _loader(numbered, order=OrderOption.RANDOM, seed=123, drop_last=False)
    first, _ = _visit(loader)
    second, _ = _visit(loader)
    reference = np.random.default_rng(123 + 0).permutation(np.arange(600, dtype=np.uint64))
    assert first == reference.tolist()
    assert second == np.random.default_rng(123 + 1).permutation(np.arange(600, dtype=np.uint64)).tolist()
    assert first != second
    again, _ = _visit(_loader(numbered, order=OrderOption.RANDOM, seed=123, drop_last=False))
    assert again == first
    other, _ = _visit(_loader(numbered, order=OrderOption.RANDOM, seed=124, drop_last=False))
    assert other != first


def test_indices_subset_in_given_order(numbered):
    indices = [5, 3, 599, 0, 42, 42, 17]
    loader = _loader(numbered, indices=indices, batch_size=3, drop_last=False)
    seen, sizes = _visit(loader)
    assert seen == indices
    assert sizes == [3, 3, 1]
    random_seen, _ = _visit(_loader(numbered, indices=indices, order=OrderOption.RANDOM, seed=0,
                                    drop_last=False, batch_size=3))
    assert sorted(random_seen) == sorted(indices)


def test_bad_indices_rejected(numbered):
    with pytest.raises(ValueError, match='indices'):
        _loader(numbered, indices=[0, 600])


def test_quasi_random_is_a_deterministic_permutation(numbered):
    loader = _loader(numbered, order=OrderOption.QUASI_RANDOM, seed=7, drop_last=False)
    first, _ = _visit(loader)
    second, _ = _visit(loader)
    assert sorted(first) == list(range(600))
    assert sorted(second) == list(range(600))
    assert first != second
    replay, _ = _visit(_loader(numbered, order=OrderOption.QUASI_RANDOM, seed=7, drop_last=False))
    assert replay == first


def test_quasi_random_keeps_few_pages_open(golden_dir):
    """At most buffer_size pages are open at once (FFCV's QUASI_RANDOM definition)."""
    from ffcvx.traversal_order import QuasiRandom

    path = golden_dir / 'multipage.beton'
    loader = Loader(str(path), batch_size=2, order=OrderOption.QUASI_RANDOM, seed=3,
                    order_kwargs={'buffer_size': 1})
    assert isinstance(loader.traversal_order, QuasiRandom)
    order = loader.traversal_order.sample_order(0)
    table = loader.reader.alloc_table
    page = {int(s): int(p) >> 21 for s, p in zip(table['sample_id'], table['ptr'])}
    pages = [page[int(s)] for s in order]
    # With one open page, each page's samples are contiguous in the order.
    changes = sum(1 for a, b in zip(pages, pages[1:]) if a != b)
    assert changes == len(set(pages)) - 1
    assert sorted(order.tolist()) == list(range(46))


def test_golden_multipage_random_order_matches_ffcv(golden_dir):
    """FFCV 1.0.2 recorded its RANDOM order for this file; ours is the same."""
    side = json.loads((golden_dir / 'multipage.json').read_text())
    recorded = side['ffcv_traversal_orders']
    random_entry = next(v for k, v in recorded.items() if 'RANDOM' in k.upper() and 'QUASI' not in k.upper())
    loader = Loader(str(golden_dir / 'multipage.beton'), batch_size=1, order=OrderOption.RANDOM,
                    seed=random_entry.get('seed', 0), drop_last=False,
                    pipelines={'image': None, 'blob': None, 'label': [IntDecoder()]})
    order = loader.traversal_order.sample_order(0)
    assert order.tolist() == list(random_entry['order'])


def test_default_pipelines_and_reader(numbered):
    loader = Loader(str(numbered), batch_size=50)
    assert loader.reader.num_samples == 600
    index, half = next(iter(loader))
    assert isinstance(index, torch.Tensor) and index.dtype == torch.int64 and index.shape == (50, 1)
    assert half.dtype == torch.float64


def test_none_pipeline_drops_field(numbered):
    loader = Loader(str(numbered), batch_size=10, pipelines={'half': None})
    batch = next(iter(loader))
    assert len(batch) == 1 and batch[0].shape == (10, 1)


def test_unknown_backend_lists_registered(numbered):
    with pytest.raises(BackendNotFoundError, match='registered'):
        Loader(str(numbered), batch_size=10, backend='no-such-decoder')


class _Explode(Operation):
    """A Python-level transform that fails on a chosen batch."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def generate_code(self):
        at = self.at

        def explode(inp, dst):
            if int(inp[0, 0]) >= at:
                raise ZeroDivisionError(f"boom at sample {int(inp[0, 0])}")
            return inp
        return explode

    def declare_state_and_memory(self, previous_state):
        return previous_state.replace(jit_mode=False), None


class _JitExplode(Operation):
    """A compiled transform that raises inside Numba code."""

    def generate_code(self):
        def explode(inp, dst):
            for i in range(inp.shape[0]):
                if inp[i, 0] == 100:
                    raise ValueError("compiled op saw sample 100")
                dst[i, 0] = inp[i, 0]
            return dst
        return explode

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


def _threads():
    return {t for t in threading.enumerate() if t.name == 'ffcvx-epoch'}


def _wait_no_epoch_threads(timeout=5.0):
    import gc
    gc.collect()
    deadline = time.monotonic() + timeout
    while _threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _threads()


@pytest.mark.parametrize('op', [_Explode(at=100), _JitExplode()], ids=['python', 'numba'])
def test_pipeline_error_raised_in_training_loop(numbered, op):
    loader = Loader(str(numbered), batch_size=10, num_workers=2,
                    pipelines={'index': [IntDecoder(), op], 'half': None})
    start = time.monotonic()
    with pytest.raises((ZeroDivisionError, ValueError), match='100'):
        for _ in loader:
            pass
    assert time.monotonic() - start < 60
    assert _wait_no_epoch_threads()


def test_leaving_early_and_reiterating_leak_no_thread(numbered):
    loader = _loader(numbered, batch_size=5, batches_ahead=2)
    before = len(_threads())
    for _ in range(5):
        for number, _batch in enumerate(loader):
            if number == 3:
                break
    iterator = iter(loader)
    next(iterator)
    del iterator
    import gc
    gc.collect()
    iter(loader)   # replaces (and stops) any previous epoch
    loader.close()
    assert _wait_no_epoch_threads()
    assert before == 0


def test_batches_are_not_overwritten_too_early(numbered):
    """A batch stays valid while ``batches_ahead + 1`` later batches are produced."""
    loader = _loader(numbered, batch_size=10, batches_ahead=2, drop_last=False)
    held = []
    for number, (index, _) in enumerate(loader):
        held.append((number, index))
        while len(held) > 1:   # keep only the previous batch, as a training loop would
            held.pop(0)
        for n, tensor in held:
            assert tensor[:, 0].tolist() == list(range(n * 10, n * 10 + tensor.shape[0]))


def test_ndarray_pipeline_shapes(tmp_path):
    path = tmp_path / 'arrays.beton'
    rng = np.random.default_rng(0)
    values = rng.standard_normal((30, 4, 5)).astype(np.float16)

    class Data:
        def __len__(self):
            return 30

        def __getitem__(self, i):
            return (values[i],)

    DatasetWriter(str(path), {'x': NDArrayField(np.float16, (4, 5))}, num_workers=1,
                  progress=False).from_indexed_dataset(Data())
    loader = Loader(str(path), batch_size=8, drop_last=False,
                    pipelines={'x': [NDArrayDecoder(), ToTensor()]})
    got = torch.cat([x for (x,) in loader]).numpy()
    assert got.dtype == np.float16
    assert np.array_equal(got.view(np.uint16), values.view(np.uint16))
