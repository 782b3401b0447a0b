"""Servers that answer wrongly, and versions without ETags (spec/remote.md REM-004, REM-013..015).

A loopback server of our own (tests/_misbehaving_server.py) answers range
requests with another range, the whole file, a short or a long body, or
another total size; or sends only ``Last-Modified``, or no validator at all,
while the file is replaced by one of the same size. Every case, with both
clients, either raises or reads the right bytes: a batch that differs from
the local file's is never handed out.
"""
import os
import shutil
import time
import warnings

import numpy as np
import pytest

from _misbehaving_server import MisbehavingServer
from ffcvx.errors import RemoteFileChangedError, RemoteRangeError, RemoteUnavailableError
from ffcvx.fields import BytesField, IntField
from ffcvx.fields.decoders import BytesDecoder, IntDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.storage import CLIENT_ENV

PAGE = 2 << 20
CLIENTS = ['obstore', 'fsspec']
#: Few slots and one reader: most pages are fetched after the first batch.
SLOW = {'max_bytes': 2 * PAGE, 'readers': 1, 'pages_per_read': 1}
PIPELINES = {'index': [IntDecoder()], 'blob': [BytesDecoder()]}


class _FixedBlobs:
    """Samples of one size whatever the salt: versions of a file have the same size."""

    def __init__(self, salt):
        self.salt = salt

    def __len__(self):
        return 320

    def __getitem__(self, i):
        rng = np.random.default_rng(i + 1000 * self.salt)
        return i, np.frombuffer(rng.bytes(30_000), np.uint8)


def _write(path, salt):
    from ffcvx.writer import DatasetWriter
    DatasetWriter(str(path), {'index': IntField(), 'blob': BytesField()}, page_size=PAGE,
                  num_workers=1, progress=False).from_indexed_dataset(_FixedBlobs(salt))
    return path


@pytest.fixture(scope='module')
def versions(tmp_path_factory):
    """Two versions of one dataset, A and B, of exactly the same size."""
    folder = tmp_path_factory.mktemp('versions')
    a, b = _write(folder / 'a.beton', 0), _write(folder / 'b.beton', 1)
    assert os.path.getsize(a) == os.path.getsize(b)
    assert a.read_bytes() != b.read_bytes()
    return a, b


@pytest.fixture(scope='module')
def expected(versions):
    """Each version's batches, read from the local file."""
    return {name: _batches(Loader(str(path), batch_size=8, num_workers=1, cache='remote',
                                  order=OrderOption.SEQUENTIAL, pipelines=PIPELINES))
            for name, path in zip('AB', versions)}


@pytest.fixture
def server(tmp_path):
    root = tmp_path / 'www'
    root.mkdir()
    served = MisbehavingServer(root)
    yield served
    served.stop()


@pytest.fixture(params=CLIENTS)
def client(request, monkeypatch):
    monkeypatch.setenv(CLIENT_ENV, request.param)
    return request.param


def _s3_options(server):
    """storage_options reading the server as a path-style S3 endpoint (it ignores signatures)."""
    return {'key': 'test', 'secret': 'test', 'endpoint_url': f"http://127.0.0.1:{server.port}",
            'client_kwargs': {'region_name': 'us-east-1'}}


def _serve(server, version, name='data.beton', mtime=None):
    """Put ``version`` at ``name`` (atomically), with a given mtime; its URL."""
    target = server.root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f'.{target.name}.tmp'
    shutil.copy(version, temp)
    stamp = mtime if mtime is not None else time.time()
    os.utime(temp, (stamp, stamp))
    os.replace(temp, target)
    return server.url_for(name)


def _batches(loader, limit=None):
    """(indices, blobs) of each batch, copied; the Loader is closed after."""
    out = []
    with loader:
        for index, blob in loader:
            out.append((np.asarray(index).copy(), np.asarray(blob).copy()))
            if limit is not None and len(out) == limit:
                break
    return out


def _loader(url, storage_options=None, **options):
    return Loader(url, batch_size=8, num_workers=1, order=OrderOption.SEQUENTIAL,
                  pipelines=PIPELINES, cache_options={**SLOW, **options},
                  storage_options=storage_options)


def _assert_prefix_of(got, reference):
    """Every batch handed out equals the reference's batch at its position."""
    assert len(got) <= len(reference)
    for (index, blob), (want_index, want_blob) in zip(got, reference):
        np.testing.assert_array_equal(index, want_index)
        np.testing.assert_array_equal(blob, want_blob)


def _replace_after_first_batch_raises(server, url, versions, expected):
    """Version B replaces A after the first batch: RemoteFileChangedError, only A's batches."""
    got = []
    with pytest.raises(RemoteFileChangedError):
        with _loader(url) as loader:
            for index, blob in loader:
                got.append((np.asarray(index).copy(), np.asarray(blob).copy()))
                if len(got) == 1:
                    _serve(server, versions[1])
    _assert_prefix_of(got, expected['A'])


# -- wrong answers to range requests (REM-013) ------------------------------------------------

WRONG = {'shift': RemoteRangeError, 'whole': RemoteRangeError, 'short': RemoteRangeError,
         'long': RemoteRangeError, 'total': RemoteFileChangedError}


@pytest.mark.parametrize('protocol', ['http', 's3'])
@pytest.mark.parametrize('mode', sorted(WRONG))
def test_wrong_range_answer_mid_epoch_raises(client, server, versions, expected, mode, protocol):
    """The server goes wrong after the first batch: an error, and no batch that differs.

    Over plain HTTP and as an S3 endpoint (s3fs's GetObject, obstore's S3 store).
    """
    url, storage = _serve(server, versions[0]), None
    if protocol == 's3':
        url, storage = 's3://bucket/data.beton', _s3_options(server)
        _serve(server, versions[0], name='bucket/data.beton')
    got = []
    with pytest.raises(WRONG[mode]) as caught:
        with _loader(url, storage_options=storage) as loader:
            for index, blob in loader:
                got.append((np.asarray(index).copy(), np.asarray(blob).copy()))
                server.mode = mode
    _assert_prefix_of(got, expected['A'])
    assert len(got) < len(expected['A'])
    assert 'data.beton' in str(caught.value)
    if mode == 'whole':
        assert 'ignores Range' in str(caught.value)
    elif mode != 'total':
        # The message names the range asked for; a wrong range is not retried.
        assert 'bytes ' in str(caught.value)
        asked = [entry for entry in server.ranged_gets() if entry['status'] == 206]
        assert len({entry['range'] for entry in asked}) == len(asked), "a range was retried"


@pytest.mark.parametrize('mode', sorted(WRONG))
def test_wrong_range_answer_while_opening_raises(client, server, versions, mode):
    """The Reader's own range requests (the tables) are checked the same way."""
    url = _serve(server, versions[0])
    server.mode = mode
    with pytest.raises(WRONG[mode]):
        _loader(url)


def test_correct_server_reads_the_local_batches(client, server, versions, expected):
    url = _serve(server, versions[0])
    _assert_prefix_of(_batches(_loader(url)), expected['A'])
    assert len(_batches(_loader(url))) == len(expected['A'])


# -- Last-Modified without an ETag (REM-004, REM-014) -------------------------------------------

@pytest.mark.parametrize('preconditions', [True, False], ids=['honoured', 'ignored'])
def test_same_size_replacement_mid_run_without_etag(client, server, versions, expected,
                                                     preconditions):
    """Only Last-Modified: a same-size replacement after batch 1 raises, never mixes.

    With the server honouring If-Unmodified-Since it answers 412; a server
    that ignores it is caught by the Last-Modified its answer carries.
    """
    server.etag, server.preconditions = False, preconditions
    url = _serve(server, versions[0], mtime=time.time() - 100)
    _replace_after_first_batch_raises(server, url, versions, expected)
    if preconditions:
        assert any(entry['if_unmodified_since'] and entry['status'] == 412
                   for entry in server.ranged_gets())


def test_same_size_replacement_between_runs_with_cache_dir(client, server, versions, expected,
                                                           tmp_path):
    """A new Loader after a same-size replacement reads B's pages, not A's from the disk cache."""
    server.etag = False
    cache = {'cache_dir': str(tmp_path / 'pages')}
    url = _serve(server, versions[0], mtime=time.time() - 100)
    first = _batches(_loader(url, **cache))
    _assert_prefix_of(first, expected['A'])
    assert len(first) == len(expected['A'])
    _serve(server, versions[1])
    second = _batches(_loader(url, **cache))
    _assert_prefix_of(second, expected['B'])
    assert len(second) == len(expected['B'])


def test_same_size_replacement_between_epochs_with_every_page_kept(client, server, versions):
    """The per-epoch HEAD compares Last-Modified when there is no ETag."""
    server.etag = False
    url = _serve(server, versions[0], mtime=time.time() - 100)
    with Loader(url, batch_size=8, num_workers=1, pipelines=PIPELINES) as loader:
        assert loader.memory_manager.keeps_pages
        for _ in loader:
            pass
        _serve(server, versions[1])
        with pytest.raises(RemoteFileChangedError, match='last_modified'):
            for _ in loader:
                pass


# -- weak ETags (REM-004) -------------------------------------------------------------------

@pytest.mark.parametrize('weak', ['always', 'head'])
def test_weak_etags_read_the_local_batches_and_see_a_replacement(client, server, versions,
                                                                 expected, weak):
    """A weak ETag is not sent as If-Match (it never matches); W/"x" and "x" are one version."""
    server.weak_etag = weak
    url = _serve(server, versions[0], mtime=time.time() - 100)
    got = _batches(_loader(url))
    _assert_prefix_of(got, expected['A'])
    assert len(got) == len(expected['A'])
    assert not any(entry['if_match'].startswith('W/') for entry in server.ranged_gets())
    _replace_after_first_batch_raises(server, url, versions, expected)


# -- no validator at all (REM-015) -------------------------------------------------------------

def _no_validators(server):
    server.etag = server.last_modified = False


def test_no_validator_warns_once_and_keeps_no_disk_cache(client, server, versions, expected,
                                                         tmp_path):
    _no_validators(server)
    url = _serve(server, versions[0])
    pages = tmp_path / 'pages'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        loader = _loader(url, cache_dir=str(pages))
        disk_cache = loader.memory_manager.disk_cache
        got = _batches(loader)
    messages = [str(w.message) for w in caught if 'no ETag, version or Last-Modified' in
                str(w.message)]
    assert len(messages) == 1, messages
    assert 'immutable' in messages[0]
    assert disk_cache is None
    assert not pages.exists() or not any(pages.rglob('*.page'))
    _assert_prefix_of(got, expected['A'])
    assert len(got) == len(expected['A'])


def test_no_validator_immutable_uses_the_disk_cache(client, server, versions, expected,
                                                    tmp_path):
    _no_validators(server)
    url = _serve(server, versions[0])
    cache = {'cache_dir': str(tmp_path / 'pages'), 'immutable': True}
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)   # no warning: the user said so
        first = _batches(_loader(url, **cache))
    assert any((tmp_path / 'pages').rglob('*.page'))
    before = len(server.ranged_gets())
    second = _batches(_loader(url, **cache))
    tables_only = len(server.ranged_gets()) - before
    for got in (first, second):
        _assert_prefix_of(got, expected['A'])
        assert len(got) == len(expected['A'])
    # The second run's pages came from disk: only the Reader's table reads went out.
    assert tables_only <= 4, tables_only


def test_no_validator_same_size_replacement_between_runs_reads_one_version(
        client, server, versions, expected):
    """Without validators and without a disk cache, each Loader reads one version whole."""
    _no_validators(server)
    url = _serve(server, versions[0])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        first = _batches(_loader(url))
        _serve(server, versions[1])
        second = _batches(_loader(url))
    _assert_prefix_of(first, expected['A'])
    _assert_prefix_of(second, expected['B'])
    assert len(second) == len(expected['B'])


def test_immutable_with_a_local_file_is_refused(versions):
    with pytest.raises(ValueError, match='immutable'):
        Loader(str(versions[0]), batch_size=8, cache='remote',
               cache_options={'immutable': True})


def test_reader_first_reads_follow_the_cache_options_timeout(client, tmp_path):
    """A stalled server: Loader(url) gives up as cache_options say, not after the defaults."""
    import socket
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(16)          # accepts connections, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/data.beton"
        start = time.monotonic()
        with pytest.raises(Exception) as caught:
            Loader(url, batch_size=8, cache_options={'timeout': 0.5, 'retries': 1})
        elapsed = time.monotonic() - start
    finally:
        listener.close()
    assert isinstance(caught.value, RemoteUnavailableError), caught.value
    assert elapsed < 6, elapsed


def test_botocore_connection_failures_are_retried():
    """s3fs raises botocore's errors, not OSError, for a reset or a body cut short (REM-006)."""
    from botocore import exceptions as boto
    from ffcvx.storage.fsspec_source import FsspecSource
    source = object.__new__(FsspecSource)    # _classify reads no state
    for exc in (boto.ResponseStreamingError(error='reset'),
                boto.IncompleteReadError(actual_bytes=1, expected_bytes=2),
                boto.ConnectionClosedError(endpoint_url='http://x'),
                boto.EndpointConnectionError(endpoint_url='http://x'),
                boto.ReadTimeoutError(endpoint_url='http://x')):
        assert source._classify(exc) == ('transient', None), exc
    assert source._classify(ValueError('a bug'))[0] == 'bug'
