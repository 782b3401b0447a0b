"""Every resource of a Loader lives exactly as long as its owner (issue 12, "What to build" 1).

Under each strategy (os, process, shared, redis): an unnamed Loader yields
every batch; close(), garbage collection of an abandoned iterator or Loader
(by reference counting alone: no cycle), gc running on the producer thread
itself, and interpreter exit each give back threads, file descriptors,
shared-memory entries and Redis connections. Also: a SIGKILLed process's
segment is reclaimed by a Loader on another file, and Redis keys expire.
"""
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

from _redis_server import RedisServer
from _resources import (STRATEGIES, cache_options, private_shm_dir, settle, snapshot,
                        write_fashion_like)
from ffcvx.fields.decoders import IntDecoder
from ffcvx.loader import Loader
from ffcvx.memory_managers import shared_memory as shm
from ffcvx.memory_managers.process_cache import ProcessCacheManager
from ffcvx.pipeline import Operation
from ffcvx.reader import Reader
from ffcvx.transforms import ToTensor

SAMPLES = 256
BATCH = 32


@pytest.fixture(scope='module')
def data_file(tmp_path_factory):
    return write_fashion_like(tmp_path_factory.mktemp('lifetime') / 'fashion.beton', SAMPLES)


@pytest.fixture(scope='module')
def other_file(tmp_path_factory):
    return write_fashion_like(tmp_path_factory.mktemp('lifetime-other') / 'other.beton', 64)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    srv = RedisServer(tmp_path_factory.mktemp('lifetime-redis')).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with server.client() as c:
        c.flushall()
        yield c


@pytest.fixture
def shm_dir():
    path = private_shm_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make(data_file, shm_dir, server):
    """``make(strategy, **kwargs)``: a Loader over the module's file."""
    def build(strategy, path=None, **kwargs):
        kwargs.setdefault('batch_size', BATCH)
        kwargs.setdefault('num_workers', 1)
        return Loader(str(path or data_file), cache=strategy,
                      cache_options=cache_options(strategy, shm_dir, server.url), **kwargs)
    return build


@pytest.fixture
def no_auto_gc():
    """Only reference counting frees objects during the test (gc.collect still works)."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def _first_pixels(image):
    return image.reshape(image.shape[0], -1)[:, 0].tolist()


# -- an unnamed Loader ------------------------------------------------------------------


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_unnamed_loader_yields_every_batch(make, strategy):
    pixels = []
    for image, label in make(strategy):
        gc.collect()  # the Loader has no name: only its iterator keeps it alive
        pixels.extend(_first_pixels(image))
    assert pixels == [i % 251 for i in range(SAMPLES)]


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_next_of_iter_of_unnamed_loader(make, strategy, shm_dir, client):
    baseline = snapshot(shm_dir, client)
    image, label = next(iter(make(strategy)))
    assert _first_pixels(image) == list(range(BATCH))
    assert label[:, 0].tolist() == [i % 10 for i in range(BATCH)]
    # The iterator was a temporary: it and its Loader are gone, and all they held.
    assert settle(baseline, shm_dir, client) == baseline


def test_iter_after_close_is_a_clear_error(make):
    loader = make('process')
    before = iter(loader)
    next(before)
    loader.close()
    loader.close()  # idempotent
    with pytest.raises(StopIteration):
        next(before)  # close() ended the running epoch
    with pytest.raises(RuntimeError, match='was closed.*make a new Loader'):
        iter(loader)


# -- close() and garbage collection ------------------------------------------------------


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_close_releases_everything(make, strategy, shm_dir, client):
    baseline = snapshot(shm_dir, client)
    loader = make(strategy)
    iterator = iter(loader)
    next(iterator)
    held = snapshot(shm_dir, client)
    assert 'ffcvx-epoch' in held['threads']  # what is released was really held
    loader.close()
    assert settle(baseline, shm_dir, client) == baseline
    del iterator


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_abandoned_iterator_stops_at_once(make, strategy, shm_dir, client, no_auto_gc):
    loader = make(strategy)
    baseline = snapshot(shm_dir, client)   # what the Loader itself holds between epochs
    for _ in range(5):
        iterator = iter(loader)
        next(iterator)
        assert 'ffcvx-epoch' in snapshot(shm_dir)['threads']
        del iterator
        assert settle(baseline, shm_dir, client) == baseline
    for number, _ in enumerate(loader):  # leaving with break
        if number == 2:
            break
    assert settle(baseline, shm_dir, client) == baseline
    loader.close()


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_abandoned_loader_is_freed_without_gc(make, strategy, shm_dir, client, no_auto_gc):
    baseline = snapshot(shm_dir, client)
    loader = make(strategy)
    iterator = iter(loader)
    next(iterator)
    alive = weakref.ref(loader)
    del loader, iterator
    assert alive() is None, "a reference cycle keeps the Loader alive"
    assert settle(baseline, shm_dir, client) == baseline


def test_process_cache_file_descriptor_closed_on_gc(data_file, no_auto_gc):
    fds = len(os.listdir('/proc/self/fd'))
    manager = ProcessCacheManager(Reader(str(data_file)))
    assert len(os.listdir('/proc/self/fd')) == fds + 1
    del manager
    assert len(os.listdir('/proc/self/fd')) == fds


class _CollectOnProducer(Operation):
    """At its second batch, waits for ``go`` and then runs gc on the producer thread."""

    def __init__(self, go, collected):
        super().__init__()
        self.go, self.collected = go, collected

    def generate_code(self):
        go, collected, calls = self.go, self.collected, []

        def collect(inp, dst):
            calls.append(threading.current_thread().name)
            if len(calls) == 2:
                go.wait(20)
                gc.collect()   # frees the abandoned iterator and Loader, here
                collected.set()
            return inp
        return collect

    def declare_state_and_memory(self, previous_state):
        return previous_state.replace(jit_mode=False), None


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_gc_on_the_producer_thread_does_not_deadlock(make, strategy, shm_dir, client, no_auto_gc):
    baseline = snapshot(shm_dir, client)
    go, collected = threading.Event(), threading.Event()
    iterator = iter(make(strategy, pipelines={
        'label': [IntDecoder(), _CollectOnProducer(go, collected), ToTensor()]}))
    next(iterator)
    # Only a garbage cycle holds the iterator (and through it the Loader), so
    # the collection on the producer thread runs their finalizers there.
    cycle = [iterator]
    cycle.append(cycle)
    del iterator, cycle
    go.set()
    assert collected.wait(30), "the finalizers deadlocked on the producer thread"
    assert settle(baseline, shm_dir, client) == baseline


# -- interpreter exit -------------------------------------------------------------------

_EXIT_SCRIPT = textwrap.dedent('''
    import sys
    from ffcvx.loader import Loader
    path, shm_dir, url = sys.argv[1:4]
    options = {'os': {}, 'process': {}, 'shared': {'shm_dir': shm_dir}, 'redis': {'url': url}}
    keep = []
    for strategy, opts in options.items():
        loader = Loader(path, batch_size=8, num_workers=1, cache=strategy, cache_options=opts)
        iterator = iter(loader)
        next(iterator)
        keep.append((loader, iterator))   # mid-epoch, never closed
    print('running', flush=True)
''')


def test_interpreter_exit_mid_epoch_releases_everything(data_file, shm_dir, server, client):
    baseline = snapshot(shm_dir, client)
    start = time.monotonic()
    done = subprocess.run([sys.executable, '-c', _EXIT_SCRIPT, str(data_file), shm_dir,
                           server.url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == 'running'
    assert time.monotonic() - start < 100
    now = settle(baseline, shm_dir, client)
    assert now['shm'] == baseline['shm'] and now['redis'] == baseline['redis']


# -- shared memory: segments of killed processes ------------------------------------------

_HOLD_SCRIPT = textwrap.dedent('''
    import json, sys, time
    from ffcvx.memory_managers.shared_memory import SharedMemoryManager
    from ffcvx.reader import Reader
    manager = SharedMemoryManager(Reader(sys.argv[1]), shm_dir=sys.argv[2])
    print(json.dumps({'key': manager.key}), flush=True)
    time.sleep(120)
''')


def _holder(path, shm_dir):
    process = subprocess.Popen([sys.executable, '-c', _HOLD_SCRIPT, str(path), shm_dir],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, json.loads(process.stdout.readline())['key']


def _entries(shm_dir, key):
    return sorted(n for n in os.listdir(shm_dir) if n.startswith(f'ffcvx-{key}'))


def test_killed_segment_is_reclaimed_by_a_loader_on_another_file(data_file, other_file, shm_dir,
                                                                  make):
    victim, dead_key = _holder(data_file, shm_dir)
    survivor, live_key = _holder(_copy_with_new_identity(other_file, shm_dir), shm_dir)
    try:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        left = _entries(shm_dir, dead_key)
        assert f'ffcvx-{dead_key}.data' in left  # SIGKILL ran no clean-up
        loader = make('shared', path=other_file)
        try:
            manager = loader.memory_manager
            assert manager.key not in (dead_key, live_key)
            assert manager.reclaimed_segments == [dead_key]
            assert _entries(shm_dir, dead_key) == []
            # A live process's segment stays, and still serves it.
            assert f'ffcvx-{live_key}.data' in _entries(shm_dir, live_key)
            assert sum(len(batch[0]) for batch in loader) == 64
        finally:
            loader.close()
    finally:
        survivor.kill()
        survivor.wait(timeout=10)
    # The survivor is dead now too: the public helper reclaims it.
    assert shm.reclaim_dead_segments(shm_dir) == [live_key]
    assert os.listdir(shm_dir) == []


def _copy_with_new_identity(path, directory):
    """A byte copy of ``path`` elsewhere: the same content, another identity key."""
    copy = os.path.join(os.path.dirname(str(path)), 'copy-' + os.path.basename(str(path)))
    if not os.path.exists(copy):
        shutil.copyfile(path, copy)
    return copy


def test_reclaim_leaves_a_segment_whose_lock_is_held(data_file, shm_dir):
    manager = shm.SharedMemoryManager(Reader(str(data_file)), shm_dir=shm_dir)
    try:
        # Simulate a filler: a live holder of the key's lock and no user file yet.
        user_files = os.listdir(manager._paths['users'])
        assert len(user_files) == 1
        lock_fd = shm._lock_path(manager._paths['lock'])
        try:
            assert shm.reclaim_dead_segments(shm_dir) == []
        finally:
            os.close(lock_fd)
        assert shm.reclaim_dead_segments(shm_dir) == []  # its user is alive
        assert os.path.exists(manager.segment_path)
    finally:
        manager.close()
    assert os.listdir(shm_dir) == []


# -- Redis: expiry and connections --------------------------------------------------------


def _file_keys(client, manager):
    keys = {k.decode() for k in client.keys(f'ffcvx:{manager.identity}:*')}
    return keys | {k.decode() for k in client.keys('ffcvx:local:*')}


def test_redis_keys_carry_the_ttl(make, client):
    loader = make('redis')
    try:
        manager = loader.memory_manager
        keys = _file_keys(client, manager)
        assert any(':page:' in k for k in keys) and any(k.endswith(':complete') for k in keys)
        day_ms = 86400 * 1000
        for key in keys:
            ttl = client.pttl(key)
            limit = day_ms * 5 // 4 if ':page:' in key else day_ms
            assert day_ms * 0.99 < ttl <= limit, (key, ttl)
    finally:
        loader.close()


def test_redis_connections_closed_on_close_and_gc(make, client, no_auto_gc):
    baseline = _connections(client)
    loader = make('redis')
    sum(1 for _ in loader)
    assert _connections(client) > baseline
    loader.close()
    assert _wait_connections(client, baseline) == baseline
    loader = make('redis')
    sum(1 for _ in loader)
    del loader
    assert _wait_connections(client, baseline) == baseline


def _connections(client):
    return len(client.client_list()) - 1


def _wait_connections(client, expected, timeout=10.0):
    deadline = time.monotonic() + timeout
    while _connections(client) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return _connections(client)


def _pixels(loader):
    return [p for image, _ in loader for p in _first_pixels(image)]


def test_redis_ttl_renewed_each_epoch(data_file, server, client):
    options = {'url': server.url, 'key_ttl': 3.0}
    with Loader(str(data_file), batch_size=BATCH, num_workers=1, cache='redis',
                cache_options=options) as loader:
        complete = f'ffcvx:{loader.memory_manager.identity}:complete'
        time.sleep(1.0)
        aged = client.pttl(complete)
        assert 1000 < aged <= 2000
        assert _pixels(loader) == [i % 251 for i in range(SAMPLES)]
        assert client.pttl(complete) > 2500  # the epoch pushed the expiry back


def test_redis_cache_expires_and_is_filled_again(data_file, server, client):
    options = {'url': server.url, 'key_ttl': 0.4}
    with Loader(str(data_file), batch_size=BATCH, num_workers=1, cache='redis',
                cache_options=options) as loader:
        identity = loader.memory_manager.identity
        assert client.keys(f'ffcvx:{identity}:*')
        time.sleep(1.0)   # past key_ttl and the pages' extra quarter
        assert client.keys('ffcvx:*') == []  # nobody renewed: the server dropped it all
        assert _pixels(loader) == [i % 251 for i in range(SAMPLES)]
        assert int(client.get(f'ffcvx:{identity}:fills')) == 1  # refilled (counter expired too)


class _Slow(Operation):
    """Sleeps per batch, so that one epoch outlasts a short key_ttl."""

    def generate_code(self):
        def slow(inp, dst):
            time.sleep(0.05)
            return inp
        return slow

    def declare_state_and_memory(self, previous_state):
        return previous_state.replace(jit_mode=False), None


def test_redis_keys_renewed_during_a_long_epoch(data_file, server, client):
    options = {'url': server.url, 'key_ttl': 0.4}
    with Loader(str(data_file), batch_size=4, num_workers=1, cache='redis', cache_options=options,
                pipelines={'label': [IntDecoder(), _Slow(), ToTensor()]}) as loader:
        identity = loader.memory_manager.identity
        start = time.monotonic()
        assert len(_pixels(loader)) == SAMPLES   # 64 batches, >= 3.2 s: 8 key_ttl
        assert time.monotonic() - start > 3.0
        assert client.exists(f'ffcvx:{identity}:complete')
        assert int(client.get(f'ffcvx:{identity}:fills')) == 1  # renewed, never refilled


def test_redis_key_ttl_none_and_bad_values(data_file, server, client):
    with pytest.raises(ValueError, match='key_ttl must be positive seconds or None'):
        Loader(str(data_file), batch_size=BATCH, cache='redis',
               cache_options={'url': server.url, 'key_ttl': 0})
    with Loader(str(data_file), batch_size=BATCH, num_workers=1, cache='redis',
                cache_options={'url': server.url, 'key_ttl': None}) as loader:
        complete = f'ffcvx:{loader.memory_manager.identity}:complete'
        assert client.pttl(complete) == -1   # no expiry
        assert len(_pixels(loader)) == SAMPLES
