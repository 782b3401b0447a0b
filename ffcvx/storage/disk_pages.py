"""A node's disk cache of remote files' pages (spec/remote.md, REM-009).

Layout: ``<cache_dir>/<key>/<page>.page``, one file per page of one version
of one remote file (``key`` is a hex digest of its URL, size, ETag and
version, so a new version never reads an old one's pages), plus
``source.json`` saying, for people, what the key stands for.

A page file is a 24-byte header, then the page's bytes::

    magic  b'FFCVXPG1'  8 bytes
    page   uint64 little-endian
    length uint64 little-endian   (bytes that follow; the last page may be short)

The rules that make it safe to share between processes without locks:

* a page is written to a temporary file in the same folder and renamed over
  its name, so a reader sees a whole page or none (a killed writer leaves a
  temporary file, removed by later writers once it is an hour old);
* a read checks the header and the file's size, and treats anything else
  (truncated, another page, garbage) as a miss and removes the file;
* ``max_bytes`` bounds the whole ``cache_dir``: after a write that takes the
  running total over it, the folder is listed and the least recently used
  page files (oldest mtime; a hit refreshes it) are removed; a file another
  process removed meanwhile is simply gone;
* a disk that fails (full, read-only) turns writing off with one warning:
  a cache must never fail training.
"""
import json
import os
import re
import struct
import threading
import time
import uuid
import warnings

MAGIC = b'FFCVXPG1'
_HEADER = struct.Struct('<8sQQ')
#: Seconds after which a temporary file is taken to be a killed writer's.
STALE_TEMP_S = 3600.0
_KEY = re.compile(r'^[0-9a-f]{8,128}$')


class DiskPageCache:
    """Pages of one remote file version on local disk, shared by the node's processes.

    Parameters
    ----------
    cache_dir : str or os.PathLike
        Folder of the cache, created if missing; shared by every file and run.
    key : str
        Lower-case hex digest naming the file version (its folder's name).
    page_size : int, bytes
    max_bytes : int or None, bytes
        Bound on the page files under ``cache_dir`` (every key); None: none.
    description : dict or None
        Written once to ``<cache_dir>/<key>/source.json``.

    Attributes
    ----------
    folder : str
    hits, misses, writes, evictions : int
        Counts of this instance.

    Raises
    ------
    ValueError
        If ``key`` is not hex, ``page_size`` not positive or ``max_bytes`` negative.
    OSError
        If ``cache_dir`` cannot be created.
    """

    def __init__(self, cache_dir, key, page_size, max_bytes=None, description=None):
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"disk cache: key must be 8 to 128 lower-case hex digits, got {key!r}")
        if int(page_size) <= 0:
            raise ValueError(f"disk cache: page_size must be positive, got {page_size!r}")
        if max_bytes is not None and int(max_bytes) < 0:
            raise ValueError(f"disk cache: max_cache_bytes must be 0 or more, got {max_bytes!r}")
        self.cache_dir = os.fspath(cache_dir)
        self.key = key
        self.page_size = int(page_size)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self.folder = os.path.join(self.cache_dir, key)
        os.makedirs(self.folder, exist_ok=True)
        self.hits = self.misses = self.writes = self.evictions = 0
        self._lock = threading.Lock()
        self._estimate = None      # bytes under cache_dir, as last listed plus our writes
        self._broken = False
        if description is not None:
            path = os.path.join(self.folder, 'source.json')
            if not os.path.exists(path):
                self._write_file(path, json.dumps(description, indent=1, default=str).encode())

    def _path(self, page):
        return os.path.join(self.folder, f"{int(page)}.page")

    def read_into(self, page, view):
        """Copy the cached ``page`` into the front of ``view``; its length, or None on a miss."""
        path = self._path(page)
        view = memoryview(view).cast('B')
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            self._count('misses')
            return None
        try:
            header = os.pread(fd, _HEADER.size, 0)
            size = os.fstat(fd).st_size
            valid = len(header) == _HEADER.size
            if valid:
                magic, stored_page, length = _HEADER.unpack(header)
                valid = (magic == MAGIC and stored_page == page and 0 < length <= len(view)
                         and size == _HEADER.size + length)
            if valid:
                got = 0
                while got < length:
                    n = os.preadv(fd, [view[got:length]], _HEADER.size + got)
                    if n == 0:
                        break
                    got += n
                valid = got == length
        finally:
            os.close(fd)
        if not valid:
            self._remove(path)
            self._count('misses')
            return None
        try:
            os.utime(path)   # recently used: the last to be evicted
        except OSError:
            pass             # evicted by another process meanwhile; the bytes are read
        self._count('hits')
        return int(length)

    def write(self, page, data):
        """Store ``page``; True if it is stored, False if not (too large, or the disk failed)."""
        data = memoryview(data).cast('B')
        if not 0 < len(data) <= self.page_size:
            raise ValueError(f"disk cache: page {page} has {len(data)} bytes; a page has 1 to "
                             f"{self.page_size}")
        size = _HEADER.size + len(data)
        if self._broken or (self.max_bytes is not None and size > self.max_bytes):
            return False
        if not self._write_file(self._path(page), _HEADER.pack(MAGIC, page, len(data)), data):
            return False
        self._count('writes')
        if self.max_bytes is not None:
            with self._lock:
                if self._estimate is not None:
                    self._estimate += size
                over = self._estimate is None or self._estimate > self.max_bytes
            if over:
                self._evict(keep=self._path(page))
        return True

    def _write_file(self, path, *parts):
        temp = f"{path}.{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(temp, 'wb') as f:
                for part in parts:
                    f.write(part)
            os.rename(temp, path)
            return True
        except OSError as exc:
            self._remove(temp)
            if not self._broken:
                self._broken = True
                warnings.warn(f"disk cache {self.folder}: cannot write ({exc}); pages are no "
                              f"longer stored here in this process (reads go on)", RuntimeWarning)
            return False

    def _listing(self):
        """Page files under cache_dir as (mtime, size, path); removes stale temporary files."""
        entries = []
        now = time.time()
        for folder, _, names in os.walk(self.cache_dir):
            for name in names:
                path = os.path.join(folder, name)
                try:
                    info = os.stat(path)
                except OSError:
                    continue   # removed by another process meanwhile
                if name.endswith('.tmp'):
                    if now - info.st_mtime > STALE_TEMP_S:
                        self._remove(path)
                elif name.endswith('.page'):
                    entries.append((info.st_mtime, info.st_size, path))
        return entries

    def _evict(self, keep):
        entries = sorted(self._listing())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            self._remove(path)
            total -= size
            self._count('evictions')
        with self._lock:
            self._estimate = total

    def bytes_on_disk(self):
        """Bytes of the page files under ``cache_dir`` now (every key)."""
        return sum(size for _, size, _ in self._listing())

    def _count(self, name):
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    @staticmethod
    def _remove(path):
        try:
            os.unlink(path)
        except OSError:
            pass

    def close(self):
        """Nothing is held open between calls; kept for symmetry with the strategies."""
