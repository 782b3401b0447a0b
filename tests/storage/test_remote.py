"""Loading from URLs (spec/remote.md): identical batches, bytes fetched, disk cache, ranks, resume.

Every test runs against real servers on loopback, started by the fixtures in
tests/conftest.py: nginx serving files over HTTP with Range and If-Match, and
moto's standalone S3 server. Both clients (obstore, fsspec) are checked; the
client is chosen as a user does, with ``FFCVX_REMOTE_CLIENT``.
"""
import shutil
import subprocess
import sys

import time

import numpy as np
import pytest

from ffcvx.errors import BackendNotFoundError, BetonFormatError
from ffcvx.fields import BytesField, IntField, NDArrayField
from ffcvx.fields.decoders import BytesDecoder, IntDecoder, NDArrayDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.reader import Reader
from ffcvx.storage import CLIENT_ENV
from ffcvx.writer import DatasetWriter

PAGE = 2 << 20
CLIENTS = ['obstore', 'fsspec']
SERVERS = ['http', 's3']


class _Blobs:
    """600 samples: an index, 1 to 60,000 random bytes, a float32 array; about 9 pages of 2 MiB."""

    def __len__(self):
        return 600

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        blob = np.frombuffer(rng.bytes(int(rng.integers(1, 60_000))), np.uint8)
        return i, blob, rng.random(100).astype(np.float32)


def _pipelines():
    return {'index': [IntDecoder()], 'blob': [BytesDecoder()], 'array': [NDArrayDecoder()]}


@pytest.fixture(scope='module')
def local_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('remote') / 'blobs.beton'
    fields = {'index': IntField(), 'blob': BytesField(),
              'array': NDArrayField(np.dtype(np.float32), (100,))}
    DatasetWriter(str(path), fields, page_size=PAGE, num_workers=1,
                  progress=False).from_indexed_dataset(_Blobs())
    return path


@pytest.fixture(scope='module')
def served(local_file, nginx_server, s3_server):
    """``{'http': (url, None), 's3': (url, storage_options)}`` of the same file."""
    shutil.copy(local_file, nginx_server.root / 'blobs.beton')
    s3_server.put_file(s3_server.bucket, 'data/blobs.beton', str(local_file))
    return {'http': (nginx_server.url_for('blobs.beton'), None),
            's3': (f"s3://{s3_server.bucket}/data/blobs.beton", s3_server.storage_options())}


def _epochs(fname, order, epochs=2, **kwargs):
    """Every batch of ``epochs`` epochs, as lists of arrays (copies)."""
    out = []
    with Loader(fname, batch_size=16, order=order, seed=5, num_workers=2, drop_last=False,
                pipelines=_pipelines(), **kwargs) as loader:
        for _ in range(epochs):
            out.extend([np.array(x, copy=True) for x in batch] for batch in loader)
    return out


def _assert_same(got, expected):
    assert len(got) == len(expected)
    for number, (a, b) in enumerate(zip(got, expected)):
        for x, y in zip(a, b):
            assert np.array_equal(x, y), f"batch {number} differs from the local file's"


@pytest.mark.parametrize('order', list(OrderOption), ids=lambda o: o.name)
@pytest.mark.parametrize('client', CLIENTS)
@pytest.mark.parametrize('server', SERVERS)
def test_identical_batches_to_the_local_file(served, local_file, server, client, order,
                                             monkeypatch):
    """REM-001, REM-004, REM-008: every order, two epochs, batch for batch."""
    monkeypatch.setenv(CLIENT_ENV, client)
    url, options = served[server]
    expected = _epochs(str(local_file), order)
    got = _epochs(url, order, storage_options=options)
    _assert_same(got, expected)


@pytest.mark.parametrize('client', CLIENTS)
def test_reader_tables_equal_the_local_ones(served, local_file, client, monkeypatch):
    monkeypatch.setenv(CLIENT_ENV, client)
    local = Reader(str(local_file))
    for server in SERVERS:
        url, options = served[server]
        remote = Reader(url, storage_options=options)
        assert remote.source.remote and remote.source.client == client
        assert remote.file_size == local.file_size
        assert remote.metadata.tobytes() == local.metadata.tobytes()
        assert remote.alloc_table.tobytes() == local.alloc_table.tobytes()
        assert np.array_equal(remote.read_sample_region(17, 'blob'),
                              local.read_sample_region(17, 'blob'))


@pytest.mark.parametrize('order', [OrderOption.RANDOM, OrderOption.QUASI_RANDOM],
                         ids=lambda o: o.name)
def test_one_epoch_fetches_the_data_region_once(served, local_file, nginx_server, order):
    """REM-008: counted by nginx's access log, every data page is fetched exactly once."""
    reader = Reader(str(local_file))
    data_start, data_end = reader.data_region_start, int(reader.header['alloc_table_ptr'])
    url, _ = served['http']
    nginx_server.clear_log()   # before the Loader exists: see _data_gets
    with Loader(url, batch_size=16, order=order, seed=1, num_workers=2, drop_last=False,
                pipelines=_pipelines()) as loader:
        for _ in loader:
            pass
    gets = _data_gets(nginx_server.settled_log(lambda log: sum(
        e['body_bytes'] for e in _data_gets(log, reader)) >= data_end - data_start), reader)
    fetched = sum(entry['body_bytes'] for entry in gets)
    assert fetched == data_end - data_start, (fetched, data_end - data_start)
    ranges = sorted(tuple(int(v) for v in e['range'].split('=')[1].split('-')) for e in gets)
    assert ranges[0][0] == data_start and ranges[-1][1] == data_end - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:])), "a page was fetched twice"
    # Adjacent pages are coalesced, so no more requests than pages (REM-008).
    assert len(gets) <= (data_end - data_start) // PAGE


def test_quasi_random_reads_each_page_once_from_a_small_arena(served, local_file, nginx_server):
    """REM-008: QUASI_RANDOM keeps its page locality: 3 pages of arena, still each page once."""
    reader = Reader(str(local_file))
    data = int(reader.header['alloc_table_ptr']) - reader.data_region_start
    url, _ = served['http']
    nginx_server.clear_log()
    with Loader(url, batch_size=16, order=OrderOption.QUASI_RANDOM, seed=4, num_workers=2,
                order_kwargs={'buffer_size': 2}, cache_options={'max_bytes': 3 * PAGE},
                drop_last=False, pipelines=_pipelines()) as loader:
        seen = [int(i) for b in loader for i in np.asarray(b[0]).ravel()]
        # every sample, so every page is needed (drop_last could leave one page unread)
        assert sorted(seen) == list(range(600))

    def fetched(log):
        return sum(e['body_bytes'] for e in _data_gets(log, reader))
    assert fetched(nginx_server.settled_log(lambda log: fetched(log) >= data)) == data


def test_s3_bytes_fetched_per_epoch(served, local_file, s3_server, fault_proxy):
    """The same count for S3, by a counting proxy in front of moto."""
    reader = Reader(str(local_file))
    data = int(reader.header['alloc_table_ptr']) - reader.data_region_start
    proxy = fault_proxy(s3_server.endpoint + '/')
    url, _ = served['s3']
    with Loader(url, batch_size=16, order=OrderOption.RANDOM, seed=2, num_workers=2,
                drop_last=False, pipelines=_pipelines(),
                storage_options=s3_server.storage_options(endpoint=proxy.url.rstrip('/'))) as loader:
        proxy.clear()
        for _ in loader:
            pass
        assert proxy.bytes_sent() == data


def test_disk_cache_serves_a_second_run(served, local_file, nginx_server, tmp_path):
    """REM-009: a second Loader (a second run) fetches no data page; bytes are the same."""
    url, _ = served['http']
    options = {'cache_dir': str(tmp_path / 'pages')}
    nginx_server.clear_log()
    first = _epochs(url, OrderOption.RANDOM, epochs=1, cache_options=options)
    reader = Reader(str(local_file))
    size = int(reader.header['alloc_table_ptr']) - reader.data_region_start
    # every cold line written before the log is cleared, so none is taken for a warm one
    cold = _data_gets(nginx_server.settled_log(
        lambda log: sum(e['body_bytes'] for e in _data_gets(log, reader)) >= size), reader)
    nginx_server.clear_log()
    second = _epochs(url, OrderOption.RANDOM, epochs=1, cache_options=options)
    data = range(reader.data_region_start, int(reader.header['alloc_table_ptr']))
    warm_data = [e for e in nginx_server.access_log()   # the tables are read by the Reader
                 if e['method'] == 'GET' and int(e['range'].split('=')[1].split('-')[0]) in data]
    _assert_same(second, first)
    _assert_same(first, _epochs(str(local_file), OrderOption.RANDOM, epochs=1))
    assert cold and not warm_data, f"the warm run fetched {len(warm_data)} data ranges"


def test_disk_cache_bound(served, tmp_path):
    url, _ = served['http']
    folder = tmp_path / 'pages'
    bound = 3 * PAGE + 4096
    with Loader(url, batch_size=16, order=OrderOption.SEQUENTIAL, num_workers=1,
                pipelines=_pipelines(),
                cache_options={'cache_dir': str(folder), 'max_cache_bytes': bound}) as loader:
        for _ in loader:
            pass
        assert loader.memory_manager.disk_cache.bytes_on_disk() <= bound
    stored = sum(p.stat().st_size for p in folder.rglob('*.page'))
    assert 0 < stored <= bound


def _data_gets(log, reader):
    """The logged GETs of data pages; the Reader's table reads (before and after) left out.

    Tests clear the log before the Loader exists, since a page fetch may start
    as soon as it does, and count only these.
    """
    start, end = reader.data_region_start, int(reader.header['alloc_table_ptr'])
    return [entry for entry in log if entry['method'] == 'GET' and entry['range']
            and start <= int(entry['range'].split('=')[1].split('-')[0]) < end]


def _pages_fetched(log):
    pages = set()
    for entry in log:
        if entry['method'] == 'GET' and entry['range']:
            first, last = (int(v) for v in entry['range'].split('=')[1].split('-'))
            pages.update(range(first // PAGE, last // PAGE + 1))
    return pages


def test_each_rank_fetches_only_its_shard(served, local_file, nginx_server, monkeypatch):
    """REM-012: a rank fetches the pages of its own samples, no other (checked by nginx's log)."""
    from ffcvx.memory_managers.page_plan import sample_pages
    url, _ = served['http']
    local_reader = Reader(str(local_file))
    indptr, pages = sample_pages(local_reader)
    shards = []
    for rank in range(2):
        monkeypatch.setenv('RANK', str(rank))
        monkeypatch.setenv('WORLD_SIZE', '2')
        # A third of the file: the ranks' shards interleave, so both need these pages only.
        nginx_server.clear_log()
        with Loader(url, batch_size=16, order=OrderOption.RANDOM, num_workers=1, seed=0,
                    distributed=True, indices=np.arange(200), drop_last=False,
                    pipelines=_pipelines()) as loader:
            mine = loader.next_traversal_order().astype(np.int64)
            seen = [int(i) for batch in loader for i in np.asarray(batch[0]).ravel()]
        assert sorted(seen) == sorted(mine.tolist())
        needed = {int(p) for s in mine for p in pages[indptr[s]:indptr[s + 1]]}
        fetched = _pages_fetched(_data_gets(nginx_server.settled_log(
            lambda log: _pages_fetched(_data_gets(log, local_reader)) >= needed),
            local_reader))
        assert fetched == needed, (rank, sorted(fetched), sorted(needed))
        shards.append(set(seen))
    assert not shards[0] & shards[1] and len(shards[0] | shards[1]) == 200
    reader = Reader(str(local_file))
    data_pages = (int(reader.header['alloc_table_ptr']) - reader.data_region_start) // PAGE
    assert len(needed) < data_pages


def test_resume_from_a_url(served, local_file):
    """REM-012: a state saved half-way by a Loader of the local file resumes a Loader of the URL."""
    url, _ = served['http']
    kwargs = dict(batch_size=16, order=OrderOption.RANDOM, seed=8, num_workers=1,
                  pipelines=_pipelines())
    with Loader(str(local_file), **kwargs) as loader:
        batches = [[np.array(x, copy=True) for x in b] for b in loader]
    with Loader(str(local_file), **kwargs) as loader:
        iterator = iter(loader)
        for _ in range(10):
            next(iterator)
        state = loader.state_dict()
        del iterator
    with Loader(url, **kwargs) as loader:
        loader.load_state_dict(state)
        rest = [[np.array(x, copy=True) for x in b] for b in loader]
    _assert_same(rest, batches[10:])


def test_url_strategy_choice(served, monkeypatch):
    """REM-005."""
    url, _ = served['http']
    monkeypatch.setenv('FFCV_DEFAULT_CACHE_PROCESS', '1')
    with Loader(url, batch_size=4, num_workers=1, pipelines=_pipelines()) as loader:
        assert type(loader.memory_manager).__name__ == 'RemoteCacheManager'
    with Loader(url, batch_size=4, num_workers=1, os_cache=False,
                pipelines=_pipelines()) as loader:
        assert type(loader.memory_manager).__name__ == 'RemoteCacheManager'
    with pytest.raises(ValueError, match='no OS page cache'):
        Loader(url, batch_size=4, num_workers=1, os_cache=True)
    with pytest.raises(ValueError, match="reads local files only.*'remote'"):
        Loader(url, batch_size=4, num_workers=1, cache='process')


def test_missing_client_names_the_extra(monkeypatch):
    """REM-010: without fsspec's s3fs (and obstore), the error says which pip install fixes it."""
    import builtins
    real_import = builtins.__import__

    def no_remote(name, *args, **kwargs):
        if name.split('.')[0] in ('obstore', 's3fs', 'fsspec'):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_remote)
    with pytest.raises(BackendNotFoundError, match=r"pip install 'ffcvx\[s3\]'"):
        Reader('s3://bucket/train.beton')
    with pytest.raises(BackendNotFoundError, match=r"pip install 'ffcvx\[gcs\]'"):
        Reader('gs://bucket/train.beton')


@pytest.mark.parametrize('client', CLIENTS)
def test_missing_object(nginx_server, s3_server, client, monkeypatch):
    monkeypatch.setenv(CLIENT_ENV, client)
    with pytest.raises(FileNotFoundError, match='no such file'):
        Reader(nginx_server.url_for('nothing-here.beton'))
    with pytest.raises(FileNotFoundError, match='no such file'):
        Reader(f"s3://{s3_server.bucket}/nothing-here.beton",
               storage_options=s3_server.storage_options())


@pytest.mark.parametrize('client', CLIENTS)
def test_truncated_remote_file_is_a_format_error(local_file, nginx_server, client, monkeypatch):
    """REM-011: the same clause and offset as the same bytes on disk."""
    monkeypatch.setenv(CLIENT_ENV, client)
    data = local_file.read_bytes()
    for cut in (20, 3000, len(data) - 5):
        path = nginx_server.root / f'cut-{cut}.beton'
        path.write_bytes(data[:cut])
        with pytest.raises(BetonFormatError) as on_disk:
            Reader(str(path))
        with pytest.raises(BetonFormatError) as remote:
            Reader(nginx_server.url_for(path.name))
        assert (remote.value.clause, remote.value.offset) == \
            (on_disk.value.clause, on_disk.value.offset)


def test_info_of_a_url(served, s3_server):
    url, _ = served['s3']
    import json
    result = subprocess.run(
        [sys.executable, '-m', 'ffcvx', 'info', url, '--storage-options',
         json.dumps(s3_server.storage_options())], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'samples:           600' in result.stdout and url in result.stdout


def test_readme_example_runs_against_an_s3_server(served, local_file, s3_server, tmp_path,
                                                  monkeypatch):
    """The README's "Loading from object storage" example, pointed at moto, loads batches."""
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / 'README.md').read_text()
    section = readme.split('## Loading from object storage', 1)[1].split('\n## ', 1)[0]
    code = re.search(r'```py\n(.*?)```', section, flags=re.S).group(1)
    for placeholder in ('https://s3.example.internal:9000', 's3://my-bucket/train.beton',
                        '/tmp/ffcvx-pages'):
        assert placeholder in code, placeholder
    from _common import write_labelled
    from ffcvx.fields import RGBImageField
    images = [np.random.default_rng(i).integers(0, 256, (64, 80, 3), dtype=np.uint8)
              for i in range(70)]
    write_labelled(tmp_path / 'train.beton', images, RGBImageField(write_mode='jpg'))
    s3_server.put_file(s3_server.bucket, 'readme/train.beton', str(tmp_path / 'train.beton'))
    code = (code.replace('https://s3.example.internal:9000', s3_server.endpoint)
                .replace('s3://my-bucket/train.beton', f's3://{s3_server.bucket}/readme/train.beton')
                .replace('/tmp/ffcvx-pages', str(tmp_path / 'pages')))
    namespace = {}
    exec(compile(code, 'README.md', 'exec'), namespace)
    with namespace['loader'] as loader:
        images, labels = next(iter(loader))
    assert tuple(images.shape) == (64, 224, 224, 3) and images.dtype == np.uint8
    assert list((tmp_path / 'pages').rglob('*.page')), "the disk cache was not used"


def test_network_options_with_a_local_file_are_refused(local_file):
    with pytest.raises(ValueError, match='timeout, retries apply to URLs'):
        Loader(str(local_file), batch_size=4, cache='remote',
               cache_options={'timeout': 1, 'retries': 0})
    with pytest.raises(ValueError, match='storage_options are for URLs'):
        Loader(str(local_file), batch_size=4, storage_options={'anon': True})
