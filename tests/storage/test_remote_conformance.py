"""The memory-strategy conformance suite on ``remote``, its files served by real servers.

The suite (:mod:`ffcvx.testing.strategies`) writes its files locally; the
``ffcvx_location`` fixture below puts each one on the server and hands the
suite its URL, so every check (bytes of every region in every order, two
Loaders at once, close) runs over HTTP (nginx) and S3 (moto), with both
clients. Expected bytes come from the local files.
"""
import shutil

import pytest

from ffcvx.storage import CLIENT_ENV
from ffcvx.testing.strategies import *  # noqa: F401,F403 - the suite: tests, fixtures, hook

FFCVX_CACHES = ['remote']
#: Below the suite's largest file (about 20 MiB), so pages are evicted and fetched again.
FFCVX_CACHE_OPTIONS = {'remote': {'max_bytes': 12 << 20}}


@pytest.fixture(params=['http-obstore', 'http-fsspec', 's3-obstore', 's3-fsspec'])
def ffcvx_location(request, nginx_server, s3_server, monkeypatch):
    server, client = request.param.split('-')
    monkeypatch.setenv(CLIENT_ENV, client)
    uploaded = {}

    def location(path):
        if path not in uploaded:
            name = f"{path.parent.name}-{path.name}"
            if server == 'http':
                shutil.copy(path, nginx_server.root / name)
                uploaded[path] = (nginx_server.url_for(name), None)
            else:
                s3_server.put_file(s3_server.bucket, f"conformance/{name}", str(path))
                uploaded[path] = (f"s3://{s3_server.bucket}/conformance/{name}",
                                  s3_server.storage_options())
        return uploaded[path]
    return location


def test_the_suite_reads_through_the_server(ffcvx_location, written_betons, nginx_server):
    """The override is in effect: the strategy's source is remote, with the chosen client."""
    from ffcvx.memory_managers.select import select_strategy
    from ffcvx.reader import Reader
    fname, options = ffcvx_location(written_betons['pages_2mib'])
    reader = Reader(fname, storage_options=options)
    manager = select_strategy(reader)
    try:
        assert manager.source.remote and type(manager).__name__ == 'RemoteCacheManager'
        assert manager.source.client == reader.source.client
    finally:
        manager.close()
