"""The disk cache of remote pages (ffcvx/storage/disk_pages.py, REM-009)."""
import errno
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from _page_damage import DAMAGES, STAYS, damage, page_file
from ffcvx.storage.disk_pages import _HEADER, STALE_TEMP_S, DiskPageCache

PAGE = 1024
KEY = 'ab' * 16


def _page(number, length=PAGE):
    return np.random.default_rng(number).integers(0, 256, length, dtype=np.uint8).tobytes()


def _read(cache, page, expected=None):
    buffer = bytearray(PAGE)
    got = cache.read_into(page, buffer, expected)
    return None if got is None else bytes(buffer[:got])


def _quiet():
    """Within it, a warning fails the test: the one warning per cache was given already."""
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter('error')
    return context


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


@pytest.mark.parametrize('kind', ['truncated', 'other page', 'garbage', *DAMAGES])
def test_damaged_page_file_is_a_miss_and_removed(tmp_path, kind):
    """REM-009: each damage is a miss with one warning; the entry goes and the page is stored again."""
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    cache.write(1, _page(1))
    cache.write(2, _page(2))
    folder = tmp_path / KEY
    path = folder / '1.page'
    if kind == 'truncated':
        os.truncate(path, _HEADER.size + 10)
    elif kind == 'other page':
        os.replace(folder / '2.page', path)
    elif kind == 'garbage':
        path.write_bytes(b'x' * 300)
    else:
        damage(folder, 1, 2, kind)
    with pytest.warns(RuntimeWarning, match='page 1 is damaged') as record:
        assert _read(cache, 1, PAGE) is None
    assert len(record) == 1
    assert (cache.damaged, cache.misses, cache.hits) == (1, 1, 0)
    quiet = _quiet()
    try:
        if kind in STAYS:   # a directory with files in it is left, and the page not stored
            assert path.is_dir() and not cache.write(1, _page(1))
            assert _read(cache, 1, PAGE) is None and cache.damaged == 2
            assert cache.write(3, _page(3)) and _read(cache, 3, PAGE) == _page(3)
        else:
            assert not os.path.lexists(path), "the damaged entry was left"
            assert cache.write(1, _page(1)) and _read(cache, 1, PAGE) == _page(1)
        if kind != 'other page':
            assert _read(cache, 2, PAGE) == _page(2)
    finally:
        quiet.__exit__(None, None, None)


def test_page_file_layout_is_the_documented_one(tmp_path):
    """The module docstring's format 2: header fields and a CRC-32 over key, page, length, bytes."""
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    cache.write(5, _page(5, 700))
    assert (tmp_path / KEY / '5.page').read_bytes() == page_file(KEY, 5, _page(5, 700))


def test_a_page_of_another_key_or_number_fails_the_checksum(tmp_path):
    """The checksum covers the key and page number: a sound file moved elsewhere is damage."""
    other = 'cd' * 16
    DiskPageCache(tmp_path, other, PAGE).write(4, _page(4))
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    (tmp_path / KEY / '4.page').write_bytes((tmp_path / other / '4.page').read_bytes())
    with pytest.warns(RuntimeWarning, match='checksum'):
        assert _read(cache, 4, PAGE) is None
    # a whole file of page 3 with only its header's page field changed to 4
    cache.write(3, _page(3))
    data = bytearray((tmp_path / KEY / '3.page').read_bytes())
    data[8:16] = (4).to_bytes(8, 'little')
    (tmp_path / KEY / '4.page').write_bytes(bytes(data))
    assert _read(cache, 4, PAGE) is None and cache.damaged == 2


def test_a_short_page_is_a_miss_when_its_length_is_known(tmp_path):
    """Only a file's last page is short; the caller's expected length tells a cut page."""
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    (tmp_path / KEY / '6.page').write_bytes(page_file(KEY, 6, _page(6, 400)))
    assert _read(cache, 6) == _page(6, 400)        # a consistent file: without a length, a hit
    assert _read(cache, 6, 400) == _page(6, 400)   # the file's last page, 400 bytes long
    with pytest.warns(RuntimeWarning, match='400 bytes where the page has 1024'):
        assert _read(cache, 6, PAGE) is None
    assert not (tmp_path / KEY / '6.page').exists()
    with pytest.raises(ValueError, match='cannot be'):
        cache.read_into(6, bytearray(PAGE), PAGE + 1)


def test_a_read_error_is_a_miss_not_an_exception(tmp_path, monkeypatch):
    """EIO from the disk (any OSError while reading) is a miss; training never sees it."""
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    cache.write(0, _page(0))

    def failing(*args):
        raise OSError(errno.EIO, 'Input/output error')

    monkeypatch.setattr(os, 'preadv', failing)
    with pytest.warns(RuntimeWarning, match='Input/output error'):
        assert _read(cache, 0, PAGE) is None
    monkeypatch.undo()
    assert cache.write(0, _page(0)) and _read(cache, 0, PAGE) == _page(0)


def test_one_warning_per_cache_instance(tmp_path):
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    for page in range(3):
        cache.write(page, _page(page))
        damage(tmp_path / KEY, page, (page + 1) % 3, 'flipped byte')
    with pytest.warns(RuntimeWarning) as record:
        assert [_read(cache, page, PAGE) for page in range(2)] == [None, None]
    assert len(record) == 1 and cache.damaged == 2
    with pytest.warns(RuntimeWarning, match='page 2 is damaged'):   # another instance: another run
        assert _read(DiskPageCache(tmp_path, KEY, PAGE), 2, PAGE) is None


def test_a_format_1_page_is_a_silent_miss(tmp_path):
    """Files of the format before checksums are misses without a warning, and replaced."""
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    path = tmp_path / KEY / '2.page'
    path.write_bytes(b'FFCVXPG1' + (2).to_bytes(8, 'little') + PAGE.to_bytes(8, 'little')
                     + _page(2))
    quiet = _quiet()
    try:
        assert _read(cache, 2, PAGE) is None and not path.exists() and cache.damaged == 0
    finally:
        quiet.__exit__(None, None, None)


def test_a_page_is_synced_before_its_rename_and_the_folder_after(tmp_path, monkeypatch):
    """A power loss leaves the old name or the whole page, never a renamed file of zeros."""
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        kind = 'folder' if os.path.isdir(f'/proc/self/fd/{fd}') else 'file'
        events.append(('fsync', kind, os.fstat(fd).st_size))
        real_fsync(fd)

    def rename(src, dst):
        events.append(('rename', os.path.basename(dst)))
        real_rename(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'rename', rename)
    cache.write(9, _page(9))
    assert events == [('fsync', 'file', _HEADER.size + PAGE), ('rename', '9.page'),
                      ('fsync', 'folder', events[-1][2])]


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


def test_out_of_file_descriptors_is_a_plain_miss(tmp_path):
    """EMFILE says nothing of the page: it is kept, no warning, and the cache stays on."""
    import resource
    cache = DiskPageCache(tmp_path, KEY, PAGE)
    cache.write(0, _page(0))
    path = tmp_path / KEY / '0.page'
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    opened = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            while True:
                try:
                    opened.append(os.open(os.devnull, os.O_RDONLY))
                except OSError as exc:
                    assert exc.errno == errno.EMFILE
                    break
            assert _read(cache, 0, PAGE) is None
            assert not cache.write(1, _page(1))
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert path.exists() and cache.damaged == 0
    assert _read(cache, 0, PAGE) == _page(0)
    assert cache.write(1, _page(1)) and _read(cache, 1, PAGE) == _page(1)
