"""Strategy 3, the Redis cache, against a real ``redis-server`` on loopback.

Bytes must equal the OS cache's for every sample in every order; a file is
filled once however many processes start at once; a half-filled cache is
refilled, never read; a server that is down or dies mid-epoch gives a clear
error in the training loop (or, opted in, a warning and the local file);
the file's identity is content-derived and path-independent.

The tests FAIL (not skip) when ``redis-server`` is not installed.
"""
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from _redis_server import RedisServer, free_port
from ffcvx.errors import CacheUnavailableError
from ffcvx.fields import BytesField, IntField, NDArrayField
from ffcvx.fields.decoders import BytesDecoder, IntDecoder, NDArrayDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.memory_managers.redis_cache import RedisCacheManager, file_identity, redact_url
from ffcvx.memory_managers.select import select_strategy
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

PAGE = 1 << 21          # the smallest page size the writer allows
ARRAY = 200_000         # bytes of each sample's array field
ORDERS = ['SEQUENTIAL', 'RANDOM', 'QUASI_RANDOM']
HANG_GUARD = 30.0       # seconds; anything slower is a hang, not a slow server


class _Mixed:
    """Sample i: its number, ARRAY bytes derived from (seed, i), and (i % 5) * 7000 more."""

    def __init__(self, n, seed=0):
        self.n, self.seed = n, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        return (int(i), rng.integers(0, 256, ARRAY, dtype=np.uint8),
                rng.integers(0, 256, (i % 5) * 7000, dtype=np.uint8))


def _write(path, n=160, seed=0):
    DatasetWriter(str(path), {'index': IntField(), 'array': NDArrayField(np.uint8, (ARRAY,)),
                              'blob': BytesField()},
                  page_size=PAGE, num_workers=1, progress=False).from_indexed_dataset(_Mixed(n, seed))
    return path


@pytest.fixture(scope='module')
def data_file(tmp_path_factory):
    """About 34 MB in 17 pages of 2 MiB, ten samples a page."""
    return _write(tmp_path_factory.mktemp('redis-data') / 'mixed.beton')


@pytest.fixture(scope='module')
def os_hashes(data_file):
    """``os_hashes(order)``: batch hashes of two OS-cache epochs, computed once per order."""
    done = {}

    def hashes(order):
        if order not in done:
            with _loader(data_file, order, cache='os') as loader:
                done[order] = _epoch_hashes(loader, epochs=2)
        return done[order]
    return hashes


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """One redis-server for the module; fails (never skips) if it is not installed."""
    srv = RedisServer(tmp_path_factory.mktemp('redis-server')).start()
    yield srv
    srv.stop()


@pytest.fixture
def url(server):
    """The module's server, emptied before each test."""
    with server.client() as client:
        client.flushall()
    return server.url


@pytest.fixture
def private_server(tmp_path):
    """A server of this test alone, which the test may kill."""
    directory = tmp_path / 'private-redis'
    directory.mkdir()
    srv = RedisServer(directory).start()
    yield srv
    srv.stop()


def _options(url, **extra):
    return {'url': url, 'timeout': 2.0, **extra}


def _client(url):
    import redis
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def _fills(client, manager):
    return int(client.get(f"ffcvx:{manager.identity}:fills") or 0)


def _check_all_samples(reader, manager, batches):
    """Read every sample's regions through ``manager`` in ``batches`` and compare with the Reader."""
    read, state = manager.compile_reader(), manager.state
    fields = [(i, n) for i, n in enumerate(reader.field_names) if n != 'index']
    members = {'array': None, 'blob': 'ptr'}
    compared = 0
    with manager.schedule_epoch(batches):
        for number, batch in enumerate(batches):
            manager.start_batch(number)
            for sample in batch.tolist():
                for index, name in fields:
                    record = reader.metadata[sample][f'f{index}']
                    ptr = int(record[members[name]] if members[name] else record)
                    expected = reader.read_sample_region(sample, name)
                    got = np.asarray(read(np.uint64(ptr), state))[:len(expected)]
                    assert np.array_equal(got, expected), (sample, name)
                    compared += 1
    return compared


def _sequential_batches(reader, size=8):
    order = np.arange(reader.num_samples, dtype=np.uint64)
    return [np.ascontiguousarray(order[i:i + size]) for i in range(0, len(order), size)]


def _loader(path, order='SEQUENTIAL', **kwargs):
    return Loader(str(path), batch_size=8, num_workers=2, order=OrderOption[order], seed=5,
                  pipelines={'index': [IntDecoder()], 'array': [NDArrayDecoder()],
                             'blob': [BytesDecoder()]}, **kwargs)


def _hash(batch):
    h = hashlib.sha256()
    for part in batch:
        h.update(np.ascontiguousarray(np.asarray(part)).tobytes())
    return h.hexdigest()


def _epoch_hashes(loader, epochs=1):
    return [_hash(batch) for _ in range(epochs) for batch in loader]


# -- bytes identical to the OS cache ------------------------------------------------------


@pytest.mark.parametrize('order', ORDERS)
def test_loader_batches_identical_to_os_cache(data_file, url, order, os_hashes):
    expected = os_hashes(order)
    # A bound of 8 pages (of 17) makes every epoch fetch from Redis as it goes.
    with _loader(data_file, order, cache='redis',
                 cache_options=_options(url, max_bytes=8 * PAGE, readers=3)) as loader:
        manager = loader.memory_manager
        assert isinstance(manager, RedisCacheManager) and manager.filled
        got = _epoch_hashes(loader, epochs=2)
        assert manager.pages_read > manager.num_slots  # pages were fetched mid-epoch
        assert not manager.serving_from_file
    assert len(expected) == 2 * (160 // 8)
    assert len(set(expected[:20])) == 20  # the hash sees differences between batches
    assert got == expected


def test_every_sample_byte_for_byte_with_one_page_per_fetch(data_file, url):
    reader = Reader(str(data_file))
    manager = RedisCacheManager(reader, url=url, max_bytes=6 * PAGE, readers=2, pages_per_read=1)
    try:
        assert _check_all_samples(reader, manager, _sequential_batches(reader)) == 2 * 160
        assert manager.peak_resident_pages <= 6
    finally:
        manager.close()


def test_number_3_and_url_from_the_environment(data_file, url, monkeypatch):
    monkeypatch.setenv('FFCV_REDIS_URL', url)  # read at construction, not import
    reader = Reader(str(data_file))
    manager = select_strategy(reader, environ={'FFCV_DEFAULT_CACHE_PROCESS': '3'})
    try:
        assert isinstance(manager, RedisCacheManager)
        assert manager.url == url and manager.filled
        keys = {k.decode() for k in _client(url).keys('*')}
        prefix = f"ffcvx:{manager.identity}:"
        memo = {k for k in keys if k.startswith('ffcvx:local:')}  # the node's identity memo
        assert [_client(url).get(k).decode() for k in memo] == [manager.identity]
        keys -= memo
        assert all(k.startswith(prefix) for k in keys)
        assert prefix + 'complete' in keys and prefix + 'lock' not in keys
        marker = json.loads(_client(url).get(prefix + 'complete'))
        assert marker == {'pages': sum(k.startswith(prefix + 'page:') for k in keys),
                          'page_size': PAGE, 'file_size': reader.file_size}
    finally:
        manager.close()


# -- filled once, under a lock ------------------------------------------------------------


_FILL_SCRIPT = textwrap.dedent('''
    import json, os, sys, time
    import numpy as np
    from ffcvx.reader import Reader
    from ffcvx.memory_managers.redis_cache import RedisCacheManager
    path, url, go = sys.argv[1], sys.argv[2], sys.argv[3]
    reader = Reader(path)
    while not os.path.exists(go):
        time.sleep(0.002)  # start line, so that both processes race for the fill
    manager = RedisCacheManager(reader, url=url, timeout=5.0)
    print(json.dumps({'filled': manager.filled, 'identity': manager.identity}), flush=True)
    manager.close()
''')


def test_two_processes_started_together_fill_once(data_file, url, tmp_path):
    go = tmp_path / 'go'
    procs = [subprocess.Popen([sys.executable, '-c', _FILL_SCRIPT, str(data_file), url, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    time.sleep(1.0)  # both import and parse, then wait at the start line
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]['identity'] == results[1]['identity']
    assert sorted(r['filled'] for r in results) == [False, True]
    client = _client(url)
    assert int(client.get(f"ffcvx:{results[0]['identity']}:fills")) == 1


def test_waits_while_a_live_filler_holds_the_lock(data_file, url):
    reader = Reader(str(data_file))
    identity = file_identity(reader)
    client = _client(url)
    client.set(f"ffcvx:{identity}:lock", 'someone-else', px=60_000)
    made = {}
    thread = threading.Thread(target=lambda: made.setdefault('m', RedisCacheManager(reader, url=url)))
    thread.start()
    time.sleep(0.6)
    assert thread.is_alive()  # waiting for the other filler, not filling
    assert client.get(f"ffcvx:{identity}:fills") is None
    client.delete(f"ffcvx:{identity}:lock")  # as if the filler gave up: this one takes over
    thread.join(timeout=HANG_GUARD)
    manager = made['m']
    try:
        assert manager.filled and _fills(client, manager) == 1
        assert _check_all_samples(reader, manager, _sequential_batches(reader)) == 2 * 160
    finally:
        manager.close()


def test_half_filled_cache_of_a_dead_filler_is_refilled(data_file, url):
    reader = Reader(str(data_file))
    client = _client(url)
    first = RedisCacheManager(reader, url=url)
    first.close()
    base = f"ffcvx:{first.identity}:"
    # A filler that died mid-way: some pages, no complete marker, a lock about to expire.
    client.delete(base + 'complete', base + 'page:5')
    client.set(base + 'page:6', b'garbage')
    client.set(base + 'lock', 'dead-filler', px=300)
    start = time.monotonic()
    manager = RedisCacheManager(reader, url=url, max_bytes=6 * PAGE)
    try:
        assert time.monotonic() - start >= 0.2  # it waited for the lock to expire
        assert manager.filled and _fills(client, manager) == 2
        assert client.get(base + 'lock') is None
        assert _check_all_samples(reader, manager, _sequential_batches(reader)) == 2 * 160
    finally:
        manager.close()
    # A marker that does not describe this file (e.g. another page size) is not trusted either.
    client.set(base + 'complete', json.dumps({'pages': 1, 'page_size': PAGE, 'file_size': 1}))
    again = RedisCacheManager(reader, url=url)
    assert again.filled and _fills(client, again) == 3
    again.close()


def test_identity_is_content_derived_and_path_independent(data_file, tmp_path):
    copy = tmp_path / 'elsewhere' / 'renamed.beton'
    copy.parent.mkdir()
    shutil.copyfile(data_file, copy)
    # Same layout, metadata and allocation table; only the array bytes differ.
    other = _write(tmp_path / 'other.beton', seed=1)
    original, duplicate, different = Reader(str(data_file)), Reader(str(copy)), Reader(str(other))
    assert np.array_equal(original.alloc_table, different.alloc_table)
    for mode in ('sampled', 'full'):
        assert file_identity(original, mode) == file_identity(duplicate, mode)
        assert file_identity(original, mode) != file_identity(different, mode)
    assert file_identity(original, 'sampled') != file_identity(original, 'full')
    with pytest.raises(ValueError, match='identity'):
        file_identity(original, 'path')


def test_default_identity_tells_apart_a_one_byte_change(data_file, url, tmp_path):
    """Two versions of a dataset that differ in one sample byte never share keys (wrong bytes)."""
    changed = tmp_path / 'v2.beton'
    shutil.copyfile(data_file, changed)
    reader = Reader(str(changed))
    ptr = int(reader.alloc_table['ptr'][len(reader.alloc_table) // 2]) + 123
    with open(changed, 'r+b') as f:
        f.seek(ptr)
        byte = f.read(1)
        f.seek(ptr)
        f.write(bytes([byte[0] ^ 0xFF]))
    first = RedisCacheManager(Reader(str(data_file)), url=url)
    second = RedisCacheManager(Reader(str(changed)), url=url)
    try:
        assert first.identity != second.identity
        assert second.filled  # its own copy, not the first file's pages
    finally:
        first.close()
        second.close()


def test_full_identity_is_hashed_once_per_node(data_file, url, monkeypatch):
    """The whole-file hash is kept on the server by this node's view of the file."""
    from ffcvx.storage.identity import FileIdentity

    first = RedisCacheManager(Reader(str(data_file)), url=url)
    first.close()
    monkeypatch.setattr(FileIdentity, 'content_key',
                        lambda *a, **k: pytest.fail('hashed the file again'))
    second = RedisCacheManager(Reader(str(data_file)), url=url)
    try:
        assert second.identity == first.identity and not second.filled
    finally:
        second.close()


def test_copy_at_another_path_uses_the_same_cache(data_file, url, tmp_path):
    copy = tmp_path / 'copy.beton'
    shutil.copyfile(data_file, copy)
    first = RedisCacheManager(Reader(str(data_file)), url=url)
    second = RedisCacheManager(Reader(str(copy)), url=url)
    try:
        assert first.filled and not second.filled
        assert first.identity == second.identity
    finally:
        first.close()
        second.close()


# -- a server that is down, silent or wrong ------------------------------------------------


def test_server_down_at_construction_names_the_url(data_file):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    start = time.monotonic()
    with pytest.raises(CacheUnavailableError, match=dead.replace('/', '.')) as info:
        _loader(data_file, cache='redis', cache_options=_options(dead))
    assert time.monotonic() - start < HANG_GUARD
    assert isinstance(info.value, ConnectionError)
    assert "fallback" in str(info.value)


def test_server_that_never_answers_times_out(data_file):
    with socket.socket() as silent:  # accepts connections (kernel backlog), never replies
        silent.bind(('127.0.0.1', 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(CacheUnavailableError, match=f"127.0.0.1:{port}"):
            RedisCacheManager(Reader(str(data_file)), url=f"redis://127.0.0.1:{port}/0",
                              timeout=0.5, retries=0)
        assert time.monotonic() - start < HANG_GUARD


def test_server_down_at_construction_falls_back_when_asked(data_file, os_hashes):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.warns(RuntimeWarning, match=f"redis cache at {dead} is unavailable"):
        loader = _loader(data_file, cache='redis', cache_options=_options(dead, fallback='os'))
    with loader:
        assert loader.memory_manager.serving_from_file
        assert _epoch_hashes(loader) == os_hashes('SEQUENTIAL')[:20]


def test_missing_or_short_page_is_an_error_not_wrong_bytes(data_file, url):
    reader = Reader(str(data_file))
    client = _client(url)
    for damage, message in ((lambda key: client.delete(key), 'missing'),
                            (lambda key: client.set(key, b'x' * 100), 'has 100 bytes')):
        manager = RedisCacheManager(reader, url=url, max_bytes=2 * PAGE)
        try:
            page, schedule = manager._data_pages[-1], manager.schedule_epoch

            def schedule_then_damage(batches, key=manager._keys.page(page), damage=damage):
                # After the epoch's renewal (which refills a missing page) and before the
                # 2-page buffer reaches the last page: it vanishes mid-epoch.
                plan = schedule(batches)
                damage(key)
                return plan
            manager.schedule_epoch = schedule_then_damage
            with pytest.raises(CacheUnavailableError, match=message):
                _check_all_samples(reader, manager, _sequential_batches(reader))
        finally:
            manager.close()
        client.flushall()


def _kill_after_first_batch(server, loader):
    """Iterate ``loader``, killing ``server`` once the first batch is out; return the hashes."""
    hashes = []
    for batch in loader:
        hashes.append(_hash(batch))
        if len(hashes) == 1:
            server.kill()
    return hashes


def test_server_killed_mid_epoch_raises_in_the_loop(data_file, private_server):
    options = _options(private_server.url, max_bytes=6 * PAGE, readers=2)
    with _loader(data_file, cache='redis', cache_options=options, batches_ahead=1) as loader:
        start = time.monotonic()
        with pytest.raises(CacheUnavailableError, match=private_server.url.replace('/', '.')):
            _kill_after_first_batch(private_server, loader)
        assert time.monotonic() - start < HANG_GUARD


def test_server_killed_mid_epoch_falls_back_when_asked(data_file, private_server, os_hashes):
    expected = os_hashes('SEQUENTIAL')[:20]
    options = _options(private_server.url, max_bytes=6 * PAGE, readers=2, fallback='os')
    with _loader(data_file, cache='redis', cache_options=options, batches_ahead=1) as loader:
        assert not loader.memory_manager.serving_from_file
        with pytest.warns(RuntimeWarning, match='unavailable'):
            got = _kill_after_first_batch(private_server, loader)
        assert loader.memory_manager.serving_from_file
    assert got == expected


# -- options --------------------------------------------------------------------------------


@pytest.mark.parametrize('options, message', [
    ({'fallback': 'disk'}, 'fallback'),
    ({'timeout': 0}, 'timeout'),
    ({'url': 'http://127.0.0.1:1/'}, 'cannot use URL'),
])
def test_bad_options(data_file, options, message):
    with pytest.raises(ValueError, match=message):
        RedisCacheManager(Reader(str(data_file)), **options)


def test_password_is_not_shown():
    assert redact_url('redis://user:secret@host:6380/1') == 'redis://user:***@host:6380/1'
    assert redact_url('redis://127.0.0.1:6379/0') == 'redis://127.0.0.1:6379/0'


def test_missing_client_names_the_extra(data_file, monkeypatch):
    """redis is the optional extra ffcvx[redis]: without it the strategy says what to install."""
    import importlib
    import sys

    from ffcvx.errors import BackendNotFoundError
    from ffcvx.memory_managers.select import select_strategy
    for name in list(sys.modules):
        if name.split('.')[0] == 'redis' or name.startswith('ffcvx.memory_managers.redis_'):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, 'redis', None)   # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'ffcvx\[redis\]'"):
        importlib.import_module('ffcvx.memory_managers.redis_cache')
    with pytest.raises(BackendNotFoundError, match=r"pip install 'ffcvx\[redis\]'"):
        select_strategy(Reader(str(data_file)), cache='redis')
    # every other strategy, and the file's identities, work without it
    select_strategy(Reader(str(data_file)), cache='process').close()
