"""A damaged disk cache under a real Loader over a real server (spec/remote.md, REM-009).

A first Loader over an nginx URL on loopback fills ``cache_dir``; one page
file is then damaged as a bad disk, a crash or a person would; a second
Loader over the same cache must deliver exactly the local file's batches,
fetch the damaged page (and only it) from the server again, store it sound
again, and say so with one RuntimeWarning. The damages are in
tests/_page_damage.py (the unit tests of the same damages are in
tests/storage/test_disk_pages.py).
"""
import shutil
import warnings

import numpy as np
import pytest

from _page_damage import DAMAGES, STAYS, damage, page_file
from ffcvx.fields import BytesField, IntField
from ffcvx.fields.decoders import BytesDecoder, IntDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter
from _common import Computed

PAGE = 2 << 20


def _blob(i):
    """Of 300 samples: an index and 1 to 60,000 random bytes; about 5 pages of 2 MiB."""
    rng = np.random.default_rng(i)
    return i, np.frombuffer(rng.bytes(int(rng.integers(1, 60_000))), np.uint8)


@pytest.fixture(scope='module')
def local_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('diskcache') / 'blobs.beton'
    DatasetWriter(str(path), {'index': IntField(), 'blob': BytesField()}, page_size=PAGE,
                  num_workers=1, progress=False).from_indexed_dataset(Computed(300, _blob))
    return path


@pytest.fixture(scope='module')
def url(local_file, nginx_server):
    shutil.copy(local_file, nginx_server.root / 'blobs.beton')
    return nginx_server.url_for('blobs.beton')


def _epoch(fname, **kwargs):
    """One RANDOM epoch's batches (copies), and the Loader's disk cache (None for a path)."""
    with Loader(fname, batch_size=16, order=OrderOption.RANDOM, seed=5, num_workers=2,
                drop_last=False, pipelines={'index': [IntDecoder()], 'blob': [BytesDecoder()]},
                **kwargs) as loader:
        batches = [[np.array(x, copy=True) for x in batch] for batch in loader]
        return batches, getattr(loader.memory_manager, 'disk_cache', None)


@pytest.fixture(scope='module')
def expected(local_file):
    return _epoch(str(local_file))[0]


def _assert_same(got, expected):
    assert len(got) == len(expected)
    for number, (a, b) in enumerate(zip(got, expected)):
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), \
            f"batch {number} differs from the local file's"


def _data_pages_fetched(log, reader):
    """Data pages named by the GET ranges of nginx's log (the Reader's table reads left out)."""
    first_byte, end = reader.data_region_start, int(reader.header['alloc_table_ptr'])
    pages = []
    for entry in log:
        if entry['method'] == 'GET' and entry['range']:
            start, last = (int(v) for v in entry['range'].split('=')[1].split('-'))
            if first_byte <= start < end:
                pages.extend(range(start // PAGE, last // PAGE + 1))
    return pages


def _damage_warnings(record):
    return [str(w.message) for w in record
            if issubclass(w.category, RuntimeWarning) and 'is damaged' in str(w.message)]


@pytest.mark.parametrize('kind', list(DAMAGES))
def test_damaged_cache_page_is_fetched_again(url, local_file, expected, nginx_server, tmp_path,
                                             kind):
    """REM-009: a damaged page file is a miss: same batches, that page refetched, one warning."""
    reader = Reader(str(local_file))
    first = reader.data_region_start // PAGE
    last = int(reader.header['alloc_table_ptr']) // PAGE - 1
    assert last - first >= 3, "the file needs several data pages"
    page, other = first + 1, first + 2
    options = {'cache_dir': str(tmp_path / 'pages')}

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        batches, cache = _epoch(url, cache_options=options)
    _assert_same(batches, expected)
    assert not _damage_warnings(record)
    folder = tmp_path / 'pages' / cache.key
    assert {p.name for p in folder.glob('*.page')} >= {f'{n}.page' for n in range(first, last + 1)}

    damage(folder, page, other, kind)
    nginx_server.clear_log()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        batches, cache = _epoch(url, cache_options=options)
    _assert_same(batches, expected)
    log = nginx_server.settled_log(lambda log: _data_pages_fetched(log, reader))
    assert _data_pages_fetched(log, reader) == [page], \
        "only the damaged page, once, is fetched from the server"
    assert cache.damaged == 1 and cache.hits == last - first
    said = _damage_warnings(record)
    assert len(said) == 1 and f'page {page} is damaged' in said[0], said

    path = folder / f'{page}.page'
    if kind in STAYS:
        assert path.is_dir(), "a directory with files in it is left alone"
    else:   # stored again, sound: the next run reads it from disk
        with open(local_file, 'rb') as f:
            f.seek(page * PAGE)
            assert path.read_bytes() == page_file(cache.key, page, f.read(PAGE))


def test_two_damaged_pages_one_warning(url, local_file, expected, nginx_server, tmp_path):
    """One warning per cache instance, however many pages are damaged; each one is refetched."""
    reader = Reader(str(local_file))
    first = reader.data_region_start // PAGE
    options = {'cache_dir': str(tmp_path / 'pages')}
    _, cache = _epoch(url, cache_options=options)
    folder = tmp_path / 'pages' / cache.key
    damage(folder, first, first + 1, 'zero-filled file')
    damage(folder, first + 2, first + 1, 'symlink loop')
    nginx_server.clear_log()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        batches, cache = _epoch(url, cache_options=options)
    _assert_same(batches, expected)
    log = nginx_server.settled_log(lambda log: len(_data_pages_fetched(log, reader)) >= 2)
    assert sorted(_data_pages_fetched(log, reader)) == [first, first + 2]
    assert cache.damaged == 2 and len(_damage_warnings(record)) == 1
