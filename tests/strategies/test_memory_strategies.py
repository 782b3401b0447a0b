"""Memory strategies (OS page cache, process cache, shared memory) against the Reader.

Every strategy must hand decoders exactly the bytes ``Reader.read_sample_region``
returns, for every sample of every golden file and of a writer-made file, in
every traversal order; a Loader must give identical batches whichever strategy
``FFCV_DEFAULT_CACHE_PROCESS`` names; the process cache must keep its memory
bound; the shared-memory cache must keep one copy per node and clean up after
normal exits and after a SIGKILL.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

from ffcvx.fields import BytesField, IntField, NDArrayField
from ffcvx.fields.decoders import BytesDecoder, IntDecoder, NDArrayDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.memory_managers import OSCacheManager
from ffcvx.memory_managers import process_cache as pc
from ffcvx.memory_managers import shared_memory as shm
from ffcvx.memory_managers.select import select_strategy, strategy_name
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

STRATEGIES = ['os', 'process', 'shared']
ORDERS = ['SEQUENTIAL', 'RANDOM', 'QUASI_RANDOM']
PAGE = 1 << 21
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- test data ----------------------------------------------------------------------------


class _Mixed:
    """Sample i: its number, a 300 KB array derived from i, and i % 7 * 1000 bytes."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        return (int(i), rng.integers(0, 256, 300_000, dtype=np.uint8),
                rng.integers(0, 256, (i % 7) * 1000, dtype=np.uint8))


class _Big:
    """Sample i: 1 MiB of bytes derived from i (two samples per 2 MiB page)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return (np.full(1 << 20, i % 251, dtype=np.uint8),)


@pytest.fixture(scope='module')
def mixed_file(tmp_path_factory):
    """About 48 MB in 2 MiB pages: many pages, samples of different sizes."""
    path = tmp_path_factory.mktemp('strategies') / 'mixed.beton'
    DatasetWriter(str(path), {'index': IntField(), 'array': NDArrayField(np.uint8, (300_000,)),
                              'blob': BytesField()},
                  page_size=PAGE, num_workers=1, progress=False).from_indexed_dataset(_Mixed(160))
    return path


@pytest.fixture(scope='module')
def big_file(tmp_path_factory):
    """256 MiB: much larger than the memory bounds the tests set."""
    path = tmp_path_factory.mktemp('strategies-big') / 'big.beton'
    DatasetWriter(str(path), {'data': NDArrayField(np.uint8, (1 << 20,))},
                  page_size=PAGE, num_workers=1, progress=False).from_indexed_dataset(_Big(256))
    return path


@pytest.fixture
def clean_shm():
    """Fails the test if it leaves any ffcvx segment in /dev/shm."""
    before = {n for n in os.listdir('/dev/shm') if n.startswith('ffcvx-')}
    yield
    after = {n for n in os.listdir('/dev/shm') if n.startswith('ffcvx-')}
    assert after <= before, f"left in /dev/shm: {sorted(after - before)}"


def _order(reader, name, batch_size, seed=3):
    """Sample order of one epoch from the real traversal-order classes."""
    loader_like = types.SimpleNamespace(
        reader=reader, indices=np.arange(reader.num_samples, dtype=np.uint64), seed=seed,
        distributed=False, rank=0, world_size=1, batch_size=batch_size)
    return OrderOption[name].value(loader_like).sample_order(0)


def _region_fields(reader):
    """(field index, name, metadata member holding the pointer) of fields with data regions."""
    found = []
    for index, name in enumerate(reader.field_names):
        mtype = reader.handlers[name].metadata_type
        if mtype.names and 'data_ptr' in mtype.names:
            found.append((index, name, 'data_ptr'))
        elif mtype.names and 'ptr' in mtype.names:
            found.append((index, name, 'ptr'))
        elif isinstance(reader.handlers[name], NDArrayField):
            found.append((index, name, None))
    return found


def _check_all_samples(reader, manager, order_name, batch_size=5):
    """Read every sample through ``manager`` in ``order_name`` and compare with the Reader."""
    order = _order(reader, order_name, batch_size)
    assert sorted(order.tolist()) == list(range(reader.num_samples))
    batches = [np.ascontiguousarray(order[i:i + batch_size], dtype=np.uint64)
               for i in range(0, len(order), batch_size)]
    read, state = manager.compile_reader(), manager.state
    fields = _region_fields(reader)
    compared = 0
    with manager.schedule_epoch(batches):
        for number, batch in enumerate(batches):
            manager.start_batch(number)
            for sample in batch.tolist():
                for index, name, member in fields:
                    record = reader.metadata[sample][f'f{index}']
                    ptr = int(record[member] if member else record)
                    expected = reader.read_sample_region(sample, name)
                    got = np.asarray(read(np.uint64(ptr), state))[:len(expected)]
                    assert np.array_equal(got, expected), (order_name, sample, name)
                    compared += 1
    return compared


# -- bytes identical to the Reader --------------------------------------------------------


def _golden_files(golden_dir):
    return sorted(golden_dir.glob('*.beton'))


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_golden_files_bytes_identical(golden_dir, strategy, clean_shm):
    total = 0
    for path in _golden_files(golden_dir):
        reader = Reader(str(path))
        for order_name in ORDERS:
            manager = select_strategy(reader, cache=strategy)
            try:
                total += _check_all_samples(reader, manager, order_name)
            finally:
                manager.close()
    assert total > 0


@pytest.mark.parametrize('order_name', ORDERS)
@pytest.mark.parametrize('strategy, options', [('os', {}), ('process', {}),
                                               ('process', {'max_bytes': 8 * PAGE, 'readers': 3}),
                                               ('shared', {})])
def test_writer_file_bytes_identical(mixed_file, strategy, options, order_name, clean_shm):
    reader = Reader(str(mixed_file))
    manager = select_strategy(reader, cache=strategy, options=options)
    try:
        assert _check_all_samples(reader, manager, order_name, batch_size=8) == 2 * 160
        if strategy == 'process':
            assert manager.resident_pages == 0  # every page freed after its last use
            assert manager.peak_resident_pages * PAGE <= manager.max_bytes
    finally:
        manager.close()


# -- the Loader gives the same batches whatever the strategy ------------------------------


def _batch_hashes(path, order, **kwargs):
    loader = Loader(str(path), batch_size=16, num_workers=2, order=OrderOption[order], seed=11,
                    pipelines={'index': [IntDecoder()], 'array': [NDArrayDecoder()],
                               'blob': [BytesDecoder()]}, **kwargs)
    try:
        hashes = []
        for _ in range(2):  # two epochs: the strategy is reused across epochs
            for batch in loader:
                h = hashlib.sha256()
                for part in batch:
                    h.update(np.ascontiguousarray(np.asarray(part)).tobytes())
                hashes.append(h.hexdigest())
        return hashes
    finally:
        loader.close()


def test_loader_identical_batches_for_every_strategy(mixed_file, monkeypatch, clean_shm):
    order = 'RANDOM'  # the other orders are covered byte for byte above
    results = {}
    for value in ('0', '1', '2'):
        monkeypatch.setenv('FFCV_DEFAULT_CACHE_PROCESS', value)
        results[value] = _batch_hashes(mixed_file, order)
    results['tight'] = _batch_hashes(mixed_file, order, cache='process',
                                     cache_options={'max_bytes': 16 * PAGE})
    assert len(results['0']) == 2 * (160 // 16)
    assert len(set(results['0'])) == len(results['0'])  # the hash sees differences
    for value, hashes in results.items():
        assert hashes == results['0'], value


# -- selection ----------------------------------------------------------------------------


@pytest.mark.parametrize('env, cache, os_cache, expected', [
    (None, None, None, 'os'),
    ('0', None, None, 'os'),
    ('1', None, None, 'process'),
    ('2', None, None, 'shared'),
    ('3', None, None, 'redis'),
    ('process', None, None, 'process'),
    (' Shared ', None, None, 'shared'),
    ('2', 'os', None, 'os'),          # the argument overrides the environment
    ('0', 1, None, 'process'),
    ('2', None, True, 'os'),          # os_cache=True overrides the environment
    (None, None, False, 'process'),   # FFCV: os_cache=False is the process cache
    ('0', None, False, 'process'),
    ('2', None, False, 'shared'),     # ... or the non-OS strategy the environment names
    ('1', 'shared', True, 'shared'),  # cache beats os_cache
])
def test_strategy_precedence(env, cache, os_cache, expected):
    environ = {} if env is None else {'FFCV_DEFAULT_CACHE_PROCESS': env}
    assert strategy_name(cache, os_cache, environ)[0] == expected


def test_loader_reads_environment_at_construction(mixed_file, monkeypatch, clean_shm):
    monkeypatch.setenv('FFCV_DEFAULT_CACHE_PROCESS', '1')
    with Loader(str(mixed_file), batch_size=8, num_workers=1) as loader:
        assert isinstance(loader.memory_manager, pc.ProcessCacheManager)
    monkeypatch.setenv('FFCV_DEFAULT_CACHE_PROCESS', 'shared')
    with Loader(str(mixed_file), batch_size=8, num_workers=1) as loader:
        assert isinstance(loader.memory_manager, shm.SharedMemoryManager)
    with Loader(str(mixed_file), batch_size=8, num_workers=1, os_cache=True) as loader:
        assert isinstance(loader.memory_manager, OSCacheManager)
    monkeypatch.delenv('FFCV_DEFAULT_CACHE_PROCESS')
    with Loader(str(mixed_file), batch_size=8, num_workers=1, os_cache=False) as loader:
        assert isinstance(loader.memory_manager, pc.ProcessCacheManager)


@pytest.mark.parametrize('env, cache', [('7', None), ('memcache', None), (None, 'nope')])
def test_unknown_strategy_lists_registered(mixed_file, monkeypatch, env, cache):
    if env is not None:
        monkeypatch.setenv('FFCV_DEFAULT_CACHE_PROCESS', env)
    with pytest.raises(ValueError) as info:
        Loader(str(mixed_file), batch_size=8, cache=cache)
    message = str(info.value)
    assert (env or cache) in message
    for name in ('0/os', '1/process', '2/shared'):
        assert name in message


def test_options_the_strategy_does_not_take(mixed_file):
    with pytest.raises(ValueError, match="does not accept options.*max_bytes"):
        select_strategy(Reader(str(mixed_file)), cache='os', options={'max_bytes': 1})


# -- process cache: the memory bound ------------------------------------------------------


def test_bound_smaller_than_a_batch_says_the_minimum(mixed_file):
    reader = Reader(str(mixed_file))
    manager = pc.ProcessCacheManager(reader, max_bytes=2 * PAGE)
    batches = [np.arange(0, 32, dtype=np.uint64)]  # ~10 MB of samples: several pages
    minimum = manager.minimum_bytes(batches)
    assert minimum > 2 * PAGE
    with pytest.raises(ValueError, match=f"the minimum is {minimum} bytes"):
        with manager.schedule_epoch(batches):
            pass
    manager.close()
    with pytest.raises(ValueError, match="smaller than one page"):
        pc.ProcessCacheManager(reader, max_bytes=PAGE - 1)


def test_plan_never_exceeds_slots_and_reads_each_page_once_when_it_fits():
    rng = np.random.default_rng(0)
    pages_per_batch = [np.unique(rng.integers(0, 40, 6)) for _ in range(200)]
    for slots in (6, 9, 40):
        plan = pc.plan_epoch(pages_per_batch, slots)
        assert plan.jobs[:, 2].max() < slots
        # Replay: a batch's pages are all resident when it starts, and a slot
        # is only reused after the batch that last used its old page.
        slot_page, slot_free_after = {}, {}
        for b, pages in enumerate(pages_per_batch):
            for batch, page, slot, after in plan.jobs[(plan.jobs[:, 0] == b)].tolist():
                assert after < b and after >= slot_free_after.get(slot, -1)
                slot_page[slot] = page
            for p in pages.tolist():
                assert p in slot_page.values()
            for slot, page in slot_page.items():
                if page in pages:
                    slot_free_after[slot] = b
        if slots == 40:
            assert len(plan.jobs) == len(set().union(*map(set, pages_per_batch)))
        else:
            assert len(plan.jobs) > 40


_RSS_SCRIPT = textwrap.dedent('''
    import json, resource, sys, threading, time
    import numpy as np, psutil
    from ffcvx.reader import Reader
    from ffcvx.memory_managers.select import select_strategy
    path, strategy, bound, order = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    reader = Reader(path)
    options = {'max_bytes': bound} if strategy == 'process' else {}
    manager = select_strategy(reader, cache=strategy, options=options)
    read, state = manager.compile_reader(), manager.state
    # Compile before measuring (LLVM's memory is not the cache's). For the
    # process cache no page is mapped yet: the view is never touched.
    read(np.uint64(reader.region_ptrs[-1]), state)
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()
    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)
    watcher = threading.Thread(target=watch); watcher.start()
    rng = np.random.default_rng(0)
    samples = np.arange(reader.num_samples)
    if order == 'random':
        rng.shuffle(samples)
    batches = [np.ascontiguousarray(samples[i:i + 4], dtype=np.uint64) for i in range(0, len(samples), 4)]
    ptrs = reader.metadata['f0']
    total = 0
    start = time.perf_counter()
    with manager.schedule_epoch(batches):
        for n, batch in enumerate(batches):
            manager.start_batch(n)
            for s in batch.tolist():
                total += int(read(np.uint64(ptrs[s]), state)[::4096].sum())
    seconds = time.perf_counter() - start
    stop.set(); watcher.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    out = {'base_rss': base, 'peak_rss': peak[0], 'seconds': seconds, 'checksum': total,
           'peak_resident_pages': getattr(manager, 'peak_resident_pages', None),
           'pages_read': getattr(manager, 'pages_read', None)}
    manager.close()
    print(json.dumps(out))
''')


def _run_rss(path, strategy, bound, order):
    result = subprocess.run([sys.executable, '-c', _RSS_SCRIPT, str(path), strategy, str(bound), order],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('order', ['sequential', 'random'])
def test_process_cache_rss_stays_under_bound_on_a_larger_file(big_file, order):
    bound = 16 * PAGE  # 32 MiB, an eighth of the 256 MiB file
    expected = sum((i % 251) * 256 for i in range(256))  # every 4096th byte of every sample
    result = _run_rss(big_file, 'process', bound, order)
    assert result['checksum'] == expected
    assert result['peak_resident_pages'] * PAGE <= bound
    margin = 16 << 20  # allocator slack, Python objects, thread stacks
    grown = result['peak_rss'] - result['base_rss']
    assert grown <= bound + margin, f"RSS grew {grown} bytes with a bound of {bound}"
    if order == 'sequential':
        assert result['pages_read'] == 128  # each page once


# -- shared memory ------------------------------------------------------------------------


_SHM_SCRIPT = textwrap.dedent('''
    import json, os, sys, time
    import numpy as np, psutil
    from ffcvx.reader import Reader
    from ffcvx.memory_managers.shared_memory import SharedMemoryManager
    path, hold, go = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    while go != '-' and not os.path.exists(go):
        time.sleep(0.005)  # start line, so that both processes race for the fill
    manager = SharedMemoryManager(Reader(path))
    read, state = manager.compile_reader(), manager.state
    total = int(state[0][::4096].sum())  # touch every page of the copy
    print(json.dumps({'filled': manager.filled, 'segment': manager.segment_path,
                      'reclaimed': manager.reclaimed_users, 'checksum': total}), flush=True)
    time.sleep(hold)
    info = psutil.Process().memory_full_info()
    print(json.dumps({'rss': info.rss, 'pss': info.pss, 'shared': info.shared}), flush=True)
    manager.close()
''')


def _spawn(path, hold, go='-'):
    return subprocess.Popen([sys.executable, '-c', _SHM_SCRIPT, str(path), str(hold), go],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _segments():
    return sorted(n for n in os.listdir('/dev/shm') if n.startswith('ffcvx-'))


def test_two_processes_share_one_segment(big_file, tmp_path, clean_shm, capsys):
    go = tmp_path / 'go'
    procs = [_spawn(big_file, 2.0, str(go)) for _ in range(2)]
    time.sleep(0.2)
    go.touch()
    firsts = [json.loads(p.stdout.readline()) for p in procs]
    # Both attached: exactly one segment file in /dev/shm, made by exactly one of them.
    data = [n for n in _segments() if n.endswith('.data')]
    assert data == [os.path.basename(firsts[0]['segment'])]
    assert firsts[0]['segment'] == firsts[1]['segment']
    assert sorted(f['filled'] for f in firsts) == [False, True]
    assert os.path.getsize(firsts[0]['segment']) == os.path.getsize(big_file)
    seconds = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()
    size = os.path.getsize(big_file)
    # Each maps all 256 MiB (RSS counts it), but proportional set sizes split
    # the shared pages: together they hold about one copy, not two.
    for s in seconds:
        assert s['rss'] > size
    total_pss = sum(s['pss'] for s in seconds)
    baseline = sum(s['rss'] for s in seconds) - 2 * size
    assert total_pss < size + baseline / 2 + (64 << 20), (total_pss, size)
    with capsys.disabled():
        print(f"\n[shared memory] file {size} B; per-process RSS {[s['rss'] for s in seconds]}, "
              f"PSS {[s['pss'] for s in seconds]}, sum PSS {total_pss}")
    assert _segments() == []  # the last user removed everything


def test_segment_of_a_killed_process_is_reclaimed(mixed_file, clean_shm):
    victim = _spawn(mixed_file, 60.0)
    first = json.loads(victim.stdout.readline())
    assert first['filled']
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert os.path.exists(first['segment'])  # SIGKILL runs no clean-up
    reader = Reader(str(mixed_file))
    manager = shm.SharedMemoryManager(reader)
    assert manager.reclaimed_users == 1  # the dead user was detected ...
    assert not manager.filled             # ... and its complete copy reused
    assert _check_all_samples(reader, manager, 'RANDOM') == 2 * 160
    manager.close()
    assert not any(n.startswith(f'ffcvx-{manager.key}') for n in _segments())


def test_file_that_does_not_fit_fails_before_copying(mixed_file, monkeypatch, clean_shm):
    size = os.path.getsize(mixed_file)
    monkeypatch.setattr(shm, 'free_bytes', lambda directory: size - 12345)
    with pytest.raises(MemoryError, match="12345 bytes short"):
        shm.SharedMemoryManager(Reader(str(mixed_file)))


def test_identity_key_is_not_the_base_name(mixed_file, tmp_path):
    other = tmp_path / mixed_file.name
    other.write_bytes(mixed_file.read_bytes())
    assert shm.identity_key(other) != shm.identity_key(mixed_file)
    key = shm.identity_key(other)
    os.utime(other, ns=(0, 10**9))
    assert shm.identity_key(other) != key
