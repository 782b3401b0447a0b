"""The disk cache of remote pages (ffcvx/storage/disk_pages.py, REM-009)."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from ffcvx.storage.disk_pages import _HEADER, STALE_TEMP_S, DiskPageCache

PAGE = 1024
KEY = 'ab' * 16


def _page(number, length=PAGE):
    return np.random.default_rng(number).integers(0, 256, length, dtype=np.uint8).tobytes()


def _read(cache, page):
    buffer = bytearray(PAGE)
    got = cache.read_into(page, buffer)
    return None if got is None else bytes(buffer[:got])


def test_write_then_read_full_and_short_pages(tmp_path):
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    assert _read(cache, 0) is None and cache.misses == 1
    assert cache.write(0, _page(0)) and cache.write(7, _page(7, 100))
    assert _read(cache, 0) == _page(0)
    assert _read(cache, 7) == _page(7, 100)
    assert (cache.hits, cache.writes) == (2, 2)


def test_another_instance_sees_the_pages_another_key_does_not(tmp_path):
    DiskPageCache(tmp_path, KEY, PAGE).write(3, _page(3))
    assert _read(DiskPageCache(tmp_path, KEY, PAGE), 3) == _page(3)
    assert _read(DiskPageCache(tmp_path, 'cd' * 16, PAGE), 3) is None


@pytest.mark.parametrize('damage', ['truncated', 'other page', 'garbage'])
def test_damaged_page_file_is_a_miss_and_removed(tmp_path, damage):
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    cache.write(1, _page(1))
    cache.write(2, _page(2))
    path = tmp_path / KEY / '1.page'
    if damage == 'truncated':
        os.truncate(path, _HEADER.size + 10)
    elif damage == 'other page':
        os.replace(tmp_path / KEY / '2.page', path)
    else:
        path.write_bytes(b'x' * 300)
    assert _read(cache, 1) is None and not path.exists()


def test_least_recently_used_pages_go_first(tmp_path):
    entry = _HEADER.size + PAGE
    cache = DiskPageCache(tmp_path, KEY, PAGE, max_bytes=4 * entry)
    now = time.time()
    for page in range(4):
        cache.write(page, _page(page))
        os.utime(tmp_path / KEY / f'{page}.page', (now - 100 + page, now - 100 + page))
    assert _read(cache, 0) == _page(0)          # page 0 becomes the most recent
    other = DiskPageCache(tmp_path, 'cd' * 16, PAGE, max_bytes=4 * entry)
    other.write(9, _page(9))                    # one budget for the whole folder
    assert cache.bytes_on_disk() <= 4 * entry
    assert _read(cache, 1) is None, "page 1 was the least recently used"
    assert _read(cache, 0) == _page(0) and _read(other, 9) == _page(9)
    assert other.evictions == 1


def test_a_page_larger_than_the_bound_is_not_stored(tmp_path):
    cache = DiskPageCache(tmp_path, KEY, PAGE, max_bytes=PAGE)
    assert not cache.write(0, _page(0))
    assert _read(cache, 0) is None


_WORKER = """
import sys, numpy as np
from ffcvx.storage.disk_pages import DiskPageCache
folder, seed = sys.argv[1], int(sys.argv[2])
cache = DiskPageCache(folder, 'ab' * 16, 1024, max_bytes=20 * 1048)
rng = np.random.default_rng(seed)
wrong = 0
for _ in range(3000):
    page = int(rng.integers(0, 40))
    data = np.random.default_rng(page).integers(0, 256, 1024, dtype=np.uint8).tobytes()
    buffer = bytearray(1024)
    got = cache.read_into(page, buffer)
    if got is None:
        cache.write(page, data)
    elif bytes(buffer[:got]) != data:
        wrong += 1
print(wrong, cache.hits)
"""


def test_two_processes_share_the_folder(tmp_path):
    runs = [subprocess.Popen([sys.executable, '-c', _WORKER, str(tmp_path), str(seed)],
                             stdout=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [run.communicate(timeout=120)[0].split() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert [int(r[0]) for r in results] == [0, 0], "a process read a wrong page"
    assert all(int(r[1]) > 0 for r in results)
    assert DiskPageCache(tmp_path, KEY, PAGE).bytes_on_disk() <= 20 * 1048 + 2 * 1048


def test_a_failing_disk_warns_once_and_reads_go_on(tmp_path, monkeypatch):
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    cache.write(0, _page(0))

    def full(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'rename', full)
    with pytest.warns(RuntimeWarning, match='No space left'):
        assert not cache.write(1, _page(1))
    assert not cache.write(2, _page(2))         # no second warning: writing is off
    assert _read(cache, 0) == _page(0)
    assert not list((tmp_path / KEY).glob('*.tmp')), "a temporary file was left"


def test_stale_temporary_files_are_removed(tmp_path):
    cache = DiskPageCache(tmp_path, KEY, PAGE, max_bytes=10 * PAGE)
    stale, fresh = tmp_path / KEY / '5.page.1-2-x.tmp', tmp_path / KEY / '6.page.1-2-y.tmp'
    stale.write_bytes(b'partial')
    fresh.write_bytes(b'partial')
    old = time.time() - STALE_TEMP_S - 10
    os.utime(stale, (old, old))
    cache.bytes_on_disk()
    assert not stale.exists() and fresh.exists()


@pytest.mark.parametrize('key', ['../x', 'ABCDEF0123', '', 'ab'])
def test_bad_key_is_refused(tmp_path, key):
    with pytest.raises(ValueError, match='key'):
        DiskPageCache(tmp_path, key, PAGE)


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match='page_size'):
        DiskPageCache(tmp_path, KEY, 0)
    with pytest.raises(ValueError, match='max_cache_bytes'):
        DiskPageCache(tmp_path, KEY, PAGE, max_bytes=-1)
