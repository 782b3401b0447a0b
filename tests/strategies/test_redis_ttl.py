"""Expiry of the Redis cache's keys (issue 12): the marker never outlives its pages.

* A fill slower than the pages' TTL still leaves every page on the server,
  each living longer than the complete marker (pages are renewed during the
  fill and once more just before the marker is written).
* A renewal that finds any page gone (not only the marker) reports it, and
  the next epoch fills the file again instead of failing on the missing page.
* A ``key_ttl`` too short for a cache to survive from its fill to its first
  renewal is refused with a message naming the minimum.

Against a real ``redis-server`` on loopback; FAILS (not skips) without one.
"""
import time

import pytest

from _redis_server import RedisServer
from _resources import write_fashion_like
from ffcvx.loader import Loader
from ffcvx.memory_managers import redis_fill, redis_keys
from ffcvx.memory_managers.redis_cache import RedisCacheManager
from ffcvx.reader import Reader

#: About 800 bytes a sample in 2 MiB pages: 3 data pages.
SAMPLES = 8000


@pytest.fixture(scope='module')
def data_file(tmp_path_factory):
    return write_fashion_like(tmp_path_factory.mktemp('redis-ttl') / 'fashion.beton', SAMPLES)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    srv = RedisServer(tmp_path_factory.mktemp('redis-ttl-server')).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with server.client() as c:
        c.flushall()
        yield c


def _page_keys(manager):
    return [manager._keys.page(p) for p in manager._data_pages]


def test_a_slow_fill_leaves_every_page_outliving_the_marker(data_file, server, client, monkeypatch):
    """Fill of 3 pages, one per chunk, 0.4 s each: the first is 0.8 s old when the marker is set,
    past its 0.5 s TTL, so without renewal during and after the fill it would be gone."""
    read, calls = redis_fill.read_local_page, []

    def slow_read(pages, page):
        calls.append(page)
        # A second fill means the first one's pages expired while it ran (it would loop forever).
        assert len(calls) <= 3, 'the fill started again'
        time.sleep(0.4)
        return read(pages, page)

    monkeypatch.setattr(redis_fill, '_FILL_CHUNK_BYTES', 1)   # one page per chunk
    monkeypatch.setattr(redis_fill, 'read_local_page', slow_read)
    start = time.monotonic()
    manager = RedisCacheManager(Reader(str(data_file)), url=server.url, key_ttl=0.4)
    try:
        assert manager.filled and len(manager._data_pages) == len(calls) == 3
        assert time.monotonic() - start > 1.0        # the fill really outlasted the pages' TTL
        marker_ttl = client.pttl(manager._keys.complete)
        assert 0 < marker_ttl <= 400
        for key in _page_keys(manager):
            assert client.exists(key), key
            assert client.pttl(key) > marker_ttl, key   # the page dies after the marker
    finally:
        manager.close()


def test_renew_reports_a_missing_page(data_file, server, client):
    manager = RedisCacheManager(Reader(str(data_file)), url=server.url, key_ttl=60)
    try:
        pages = manager._data_pages
        assert manager._keys.renew(client, pages) is True
        client.delete(_page_keys(manager)[1])          # as if it expired before the marker
        assert client.exists(manager._keys.complete)
        assert manager._keys.renew(client, pages) is False
    finally:
        manager.close()


@pytest.mark.parametrize('key_ttl', [60, None])
def test_an_epoch_after_a_page_vanished_refills_instead_of_failing(data_file, server, client,
                                                                   key_ttl):
    options = {'url': server.url, 'key_ttl': key_ttl}
    with Loader(str(data_file), batch_size=500, num_workers=1, cache='redis',
                cache_options=options) as loader:
        manager = loader.memory_manager
        fills = f'ffcvx:{manager.identity}:fills'
        assert int(client.get(fills)) == 1
        client.delete(_page_keys(manager)[0])           # the marker stays
        labels = [int(v) for _, label in loader for v in label.flatten()]
        assert labels == [i % 10 for i in range(SAMPLES)]   # every sample, from the refilled pages
        assert int(client.get(fills)) == 2
        assert not manager.serving_from_file
        assert all(client.exists(k) for k in _page_keys(manager))


def test_key_ttl_below_the_minimum_is_refused(data_file, server, client):
    floor = redis_keys.MIN_KEY_TTL
    with pytest.raises(ValueError, match=f'at least {floor} s'):
        redis_keys.check_key_ttl(0.001)
    assert redis_keys.check_key_ttl(floor) == floor
    assert redis_keys.check_key_ttl(None) is None
    start = time.monotonic()
    with pytest.raises(ValueError, match='key_ttl must be positive seconds or None'):
        RedisCacheManager(Reader(str(data_file)), url=server.url, key_ttl=floor / 10)
    assert time.monotonic() - start < 5.0
    assert client.keys('ffcvx:*') == []                 # refused before touching the server
