"""Remote files when the network or the server fails (spec/remote.md, REM-004, REM-006, REM-007).

A fault-injecting proxy (tests/_object_servers.py) sits between the Loader
and a real server (nginx, or moto's S3 server) and answers 503, resets or
stalls on demand; the servers themselves are killed or have their object
replaced mid-epoch. Each case runs with both clients.
"""
import collections
import os
import shutil
import time

import numpy as np
import pytest

from ffcvx.errors import RemoteFileChangedError, RemoteUnavailableError
from ffcvx.fields import BytesField, IntField
from ffcvx.fields.decoders import BytesDecoder, IntDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.storage import CLIENT_ENV
from ffcvx.writer import DatasetWriter

PAGE = 2 << 20
CLIENTS = ['obstore', 'fsspec']
#: The remote strategy's options in these tests: few slots and one reader, so
#: that most pages are fetched after the first batches (when the faults are set).
SLOW = {'max_bytes': 2 * PAGE, 'readers': 1, 'pages_per_read': 1}


class _Blobs:
    def __init__(self, salt=0):
        self.salt = salt

    def __len__(self):
        return 400

    def __getitem__(self, i):
        rng = np.random.default_rng(i + 1000 * self.salt)
        return i, np.frombuffer(rng.bytes(int(rng.integers(30_000, 50_000))), np.uint8)


def _write(path, salt=0):
    DatasetWriter(str(path), {'index': IntField(), 'blob': BytesField()}, page_size=PAGE,
                  num_workers=1, progress=False).from_indexed_dataset(_Blobs(salt))
    return path


@pytest.fixture(scope='module')
def local_file(tmp_path_factory):
    return _write(tmp_path_factory.mktemp('faults') / 'blobs.beton')


Served = collections.namedtuple('Served', 'path name url')


@pytest.fixture
def http_file(local_file, nginx_server):
    """A fresh copy of the file in nginx's root (tests replace it): path, name, URL."""
    name = f'blobs-{time.monotonic_ns()}.beton'
    shutil.copy(local_file, nginx_server.root / name)
    return Served(nginx_server.root / name, name, nginx_server.url_for(name))


@pytest.fixture(params=CLIENTS)
def client(request, monkeypatch):
    monkeypatch.setenv(CLIENT_ENV, request.param)
    return request.param


def _loader(url, cache_options=None, storage_options=None, order=OrderOption.SEQUENTIAL):
    # cache='remote' for local paths too (the reference runs), the default for URLs.
    return Loader(url, batch_size=8, order=order, num_workers=1, seed=0, cache='remote',
                  pipelines={'index': [IntDecoder()], 'blob': [BytesDecoder()]},
                  cache_options={**SLOW, **(cache_options or {})},
                  storage_options=storage_options)


def _indices(loader):
    return [int(i) for batch in loader for i in np.asarray(batch[0]).ravel()]


def test_two_503s_then_success_completes_the_epoch(client, http_file, nginx_server,
                                                   fault_proxy):
    """REM-006: 503, 503, then 206: retried with backoff, the epoch completes, bytes are right."""
    proxy = fault_proxy(nginx_server.base_url)
    url = proxy.url + http_file.name
    with _loader(str(http_file.path)) as loader:
        expected = [[np.array(x, copy=True) for x in b] for b in loader]
    with _loader(url) as loader:
        proxy.fail_next(2, status=503)
        got = [[np.array(x, copy=True) for x in b] for b in loader]
    injected = [r for r in proxy.requests if r['injected'] == 'status']
    assert len(injected) == 2 and all(r['status'] == 503 for r in injected)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_connection_reset_is_retried(client, http_file, nginx_server, fault_proxy):
    proxy = fault_proxy(nginx_server.base_url)
    with _loader(proxy.url + http_file.name) as loader:
        proxy.reset_next(1)
        assert sorted(_indices(loader)) == list(range(400))
    assert any(r['injected'] == 'reset' for r in proxy.requests)


def test_503_beyond_the_retries_is_a_clear_error(client, http_file, nginx_server, fault_proxy):
    """REM-007: the error names the URL, the status and the attempts, in the loop's thread."""
    proxy = fault_proxy(nginx_server.base_url)
    url = proxy.url + http_file.name
    with _loader(url, cache_options={'retries': 2}) as loader:
        proxy.fail_next(100, status=503)
        start = time.monotonic()
        with pytest.raises(RemoteUnavailableError) as caught:
            _indices(loader)
        elapsed = time.monotonic() - start
    error = caught.value
    assert error.status == 503 and error.attempts == 3 and error.url == url
    assert url in str(error) and 'HTTP 503' in str(error) and 'after 3 attempts' in str(error)
    assert elapsed < 10, elapsed


def test_server_killed_mid_epoch(client, local_file, tmp_path_factory):
    """REM-007: nginx SIGKILLed after the first batch: an error within the timeout, no hang."""
    from _http_servers import NginxServer
    server = NginxServer(tmp_path_factory.mktemp('doomed')).start()
    try:
        shutil.copy(local_file, server.root / 'blobs.beton')
        timeout, retries = 2.0, 2
        with _loader(server.url_for('blobs.beton'),
                     cache_options={'timeout': timeout, 'retries': retries}) as loader:
            iterator = iter(loader)
            next(iterator)
            server.kill()
            start = time.monotonic()
            with pytest.raises(RemoteUnavailableError) as caught:
                for _ in iterator:
                    pass
            elapsed = time.monotonic() - start
    finally:
        server.stop()
    assert caught.value.status is None and 'no answer' in str(caught.value)
    # Every attempt is bounded by the timeout; the backoffs add under a second.
    assert elapsed < (retries + 1) * timeout + 2, elapsed


def test_stalled_server_times_out(client, http_file, nginx_server, fault_proxy):
    """REM-006: a server that accepts but never answers costs at most timeout per attempt."""
    proxy = fault_proxy(nginx_server.base_url)
    with _loader(proxy.url + http_file.name, cache_options={'timeout': 1.0, 'retries': 1}) \
            as loader:
        proxy.hang_next(100, seconds=30)
        start = time.monotonic()
        with pytest.raises(RemoteUnavailableError, match='after 2 attempts'):
            _indices(loader)
        elapsed = time.monotonic() - start
    assert elapsed < 6, elapsed


def test_http_object_replaced_mid_run(client, http_file, tmp_path):
    """REM-004: a new file at the URL after the first batch: an error, never mixed bytes."""
    replacement = _write(tmp_path / 'other.beton', salt=1)
    with _loader(http_file.url) as loader:
        iterator = iter(loader)
        next(iterator)
        # nginx's ETag is mtime and size: make the new file's mtime differ for certain.
        os.utime(replacement, (time.time() + 5, time.time() + 5))
        os.replace(replacement, http_file.path)
        with pytest.raises(RemoteFileChangedError) as caught:
            for _ in iterator:
                pass
    assert 'changed after it was opened' in str(caught.value)


def test_s3_object_replaced_mid_run(client, local_file, s3_server, tmp_path):
    """REM-004 on S3: the ETag (content MD5) of the new object differs."""
    key = f'replaced-{time.monotonic_ns()}.beton'
    s3_server.put_file(s3_server.bucket, key, str(local_file))
    replacement = _write(tmp_path / 'other.beton', salt=2)
    with _loader(f's3://{s3_server.bucket}/{key}',
                 storage_options=s3_server.storage_options()) as loader:
        iterator = iter(loader)
        next(iterator)
        s3_server.put_file(s3_server.bucket, key, str(replacement))
        with pytest.raises(RemoteFileChangedError):
            for _ in iterator:
                pass


def test_replaced_before_the_strategy_opened(client, http_file, tmp_path):
    """REM-004: the Reader saw one version; a Loader built on it refuses the next."""
    from ffcvx.memory_managers.select import select_strategy
    from ffcvx.reader import Reader
    reader = Reader(http_file.url)
    replacement = _write(tmp_path / 'other.beton', salt=3)
    os.utime(replacement, (time.time() + 5, time.time() + 5))
    os.replace(replacement, http_file.path)
    with pytest.raises(RemoteFileChangedError):
        select_strategy(reader)


def test_refused_credentials_fail_at_once(client, http_file, nginx_server, fault_proxy):
    """REM-007: 403 is not retried; the message points at storage_options."""
    proxy = fault_proxy(nginx_server.base_url)
    # fsspec's HTTP info() tries a GET after a failed HEAD: both are refused.
    proxy.fail_next(2, status=403, methods=('HEAD', 'GET'))
    from ffcvx.reader import Reader
    with pytest.raises(RemoteUnavailableError, match='storage_options') as caught:
        Reader(proxy.url + http_file.name)
    assert caught.value.status == 403 and caught.value.attempts == 1


def test_replaced_between_epochs_with_every_page_kept(client, http_file, tmp_path):
    """REM-004, REM-008: pages kept across epochs; a replaced file is found at the next epoch."""
    replacement = _write(tmp_path / 'other.beton', salt=4)
    with Loader(http_file.url, batch_size=8, num_workers=1,
                pipelines={'index': [IntDecoder()], 'blob': [BytesDecoder()]}) as loader:
        assert loader.memory_manager.keeps_pages
        first = _indices(loader)
        received = loader.memory_manager.source.bytes_received
        assert sorted(_indices(loader)) == sorted(first)
        assert loader.memory_manager.source.bytes_received == received, "epoch 1 fetched pages"
        os.utime(replacement, (time.time() + 5, time.time() + 5))
        os.replace(replacement, http_file.path)
        with pytest.raises(RemoteFileChangedError):
            _indices(loader)
