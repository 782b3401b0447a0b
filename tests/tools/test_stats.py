"""Loader.stats(): counts, waits and storage reads of the running and the last epoch."""
import json
import time

import numpy as np
import pytest

from _common import Computed
from ffcvx.fields import IntField, NDArrayField, RGBImageField
from ffcvx.fields.decoders import IntDecoder, NDArrayDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline import Operation
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

N, SHAPE, PAGE = 50, (256, 256), 1 << 21  # 256 KiB a sample: 7 pages


def _image(i):
    return np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8), i


def _sample(i):
    return np.full(SHAPE, i, dtype=np.float32), i


@pytest.fixture(scope='module')
def arrays(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('stats') / 'arrays.beton')
    DatasetWriter(path, {'x': NDArrayField(np.dtype('float32'), SHAPE), 'label': IntField()},
                  page_size=PAGE, num_workers=1, progress=False
                  ).from_indexed_dataset(Computed(N, _sample))
    return path


def _loader(path, **kwargs):
    kwargs.setdefault('pipelines', {'x': [NDArrayDecoder()], 'label': [IntDecoder()]})
    return Loader(path, batch_size=8, num_workers=1, seed=0, **kwargs)


@pytest.mark.parametrize('drop_last', [True, False])
def test_counts_equal_the_epochs_batches_and_samples(arrays, drop_last):
    loader = _loader(arrays, drop_last=drop_last, order=OrderOption.RANDOM)
    assert loader.stats() == {'current': None, 'last': None}
    iterator = iter(loader)
    next(iterator)
    next(iterator)
    current = loader.stats()['current']
    assert current['running'] and current['batches'] == 2 and current['samples'] == 16
    assert loader.stats()['last'] is None
    seen = 16 + sum(len(label) for _, label in iterator)
    stats = loader.stats()
    assert stats['current'] is None
    last = stats['last']
    assert last['completed'] and not last['running']
    assert last['batches'] == last['batches_planned'] == len(loader)
    assert last['samples'] == last['samples_planned'] == seen == (48 if drop_last else N)
    assert last['wall_s'] > 0 and last['samples_per_s'] == pytest.approx(seen / last['wall_s'])
    # the next epoch is 'current' while it runs; the finished one stays 'last'
    iterator = iter(loader)
    next(iterator)
    stats = loader.stats()
    assert stats['current']['epoch'] == 1 and stats['last']['epoch'] == 0
    iterator.close()
    assert loader.stats()['last']['epoch'] == 1 and not loader.stats()['last']['completed']
    json.dumps(loader.stats())  # plain values only


def test_paged_strategy_counts_every_page_read_and_every_hit(arrays):
    reader = Reader(arrays)
    loader = _loader(arrays, drop_last=False, cache='process')
    pages = loader.memory_manager.data_pages()
    list(loader)
    first = loader.stats()['last']
    assert first['pages_read'] == len(pages) > 1
    # bytes: whole pages, the file's last one as long as the file goes
    assert first['bytes_read'] == sum(min(PAGE, reader.file_size - p * PAGE) for p in pages)
    assert first['page_requests'] >= first['pages_read']
    assert first['cache_hits'] == first['page_requests'] - first['pages_read']
    # the process cache frees its pages between epochs: the next one reads them again
    list(loader)
    second = loader.stats()['last']
    assert (second['pages_read'], second['bytes_read']) == (first['pages_read'], first['bytes_read'])
    assert second['cache_hits'] == first['cache_hits']


def test_os_strategy_reports_unknown_reads_as_none(arrays):
    loader = _loader(arrays, cache='os')
    list(loader)
    last = loader.stats()['last']
    assert last['pages_read'] is None and last['bytes_read'] is None
    assert last['cache_hits'] is None and last['batches'] == len(loader)


class _Slow(Operation):
    """Passes the batch through after ``seconds``: a pipeline step of known cost (jit=False)."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def generate_code(self):
        seconds = self.seconds

        def slow(batch, dst):
            time.sleep(seconds)
            return batch
        return slow

    def declare_state_and_memory(self, previous_state):
        return previous_state, None


def _stall(loader, sleep_s):
    for _ in loader:
        time.sleep(sleep_s)
    return loader.stats()['last']


def test_data_stall_fraction_rises_when_the_consumer_is_faster_than_the_batches(arrays):
    batch_s = 0.01
    loader = _loader(arrays, order=OrderOption.RANDOM, batches_ahead=2, jit=False,
                     pipelines={'x': [NDArrayDecoder(), _Slow(batch_s)], 'label': [IntDecoder()]})
    list(loader)  # warm-up
    assert loader.stats()['last']['pipeline_s'] >= batch_s * len(loader)
    slow_consumer = _stall(loader, sleep_s=4 * batch_s)
    fast_consumer = _stall(loader, sleep_s=0.0)
    # A consumer slower than the batches waits little and the producer waits for slots...
    assert slow_consumer['producer_blocked_s'] > slow_consumer['data_stall_s']
    # ...one faster than the batches waits for them: the stall fraction rises.
    assert fast_consumer['data_stall_fraction'] > slow_consumer['data_stall_fraction']
    assert fast_consumer['data_stall_fraction'] > 0.5 > slow_consumer['data_stall_fraction']


def test_a_corrupt_sample_counts_as_a_decode_error(tmp_path):
    path = str(tmp_path / 'jpg.beton')
    DatasetWriter(path, {'image': RGBImageField(write_mode='jpg'), 'label': IntField()},
                  num_workers=1, progress=False
                  ).from_indexed_dataset(Computed(8, _image))
    reader = Reader(path)
    ptr = int(reader.metadata['f0']['data_ptr'][5])
    size = int(reader.region_sizes[np.searchsorted(reader.region_ptrs, ptr)])
    with open(path, 'r+b') as f:  # the JPEG's bytes, not the file's tables: the file still opens
        f.seek(ptr)
        f.write(b'\0' * size)
    loader = Loader(path, batch_size=2, num_workers=1,
                    pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    with pytest.raises(Exception):
        list(loader)
    last = loader.stats()['last']
    assert last['decode_errors'] == 1 and not last['completed']
    assert last['batches'] < len(loader)


def test_a_resumed_epoch_counts_from_its_resume_point(arrays):
    loader = _loader(arrays, order=OrderOption.RANDOM)
    iterator = iter(loader)
    for _ in range(2):
        next(iterator)
    state = loader.state_dict()
    resumed = _loader(arrays, order=OrderOption.RANDOM)
    resumed.load_state_dict(state)
    list(resumed)
    last = resumed.stats()['last']
    assert last['resume_skipped_samples'] == 16 and last['completed']
    assert last['batches'] == last['batches_planned'] == len(resumed) - 2
    assert last['samples'] == 48 - 16
