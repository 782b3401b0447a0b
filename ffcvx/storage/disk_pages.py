"""A node's disk cache of remote files' pages (spec/remote.md, REM-009).

Layout: ``<cache_dir>/<key>/<page>.page``, one file per page of one version
of one remote file (``key`` is a hex digest of its URL, size, ETag, version
and Last-Modified, so a new version never reads an old one's pages), plus
``source.json`` saying, for people, what the key stands for.

A page file is a 32-byte header, then the page's bytes (format 2)::

    offset  size  field
         0     8  magic     b'FFCVXPG2'
         8     8  page      uint64 little-endian, the page's number in the file
        16     8  length    uint64 little-endian, bytes that follow (1 to page_size)
        24     4  checksum  uint32 little-endian, CRC-32 (zlib) of the key's ASCII,
                            then page and length as two uint64 LE, then the bytes
        28     4  reserved  0

The checksum covers the key and the page number as well as the bytes, so a
page file copied into another page's name or another key's folder fails it
even when its header's page field was changed to match. Files of format 1
(magic ``b'FFCVXPG1'``, no checksum) are misses, replaced on the refetch.

The rules that make it safe to share between processes without locks:

* a page is written to a temporary file in the same folder, flushed to disk
  (``fsync``) and renamed over its name, then the folder is flushed, so a
  reader sees a whole page or none, even after a power loss (a killed writer
  leaves a temporary file, removed by later writers once it is an hour old);
* every read checks the magic, the page number, the length (the caller
  says how long the page must be: only a file's last page is short), the
  file's size and the checksum. Anything else (a flipped byte, a short or
  renumbered page, zeros, a directory, a symbolic link, a FIFO, a file that
  cannot be opened or read: any ``OSError``) is a miss: the caller fetches
  the page again, the entry is removed where it can be (a non-empty
  directory stays and stays a miss) and the first damaged page of a cache
  instance is reported by one ``RuntimeWarning``;
* ``max_bytes`` bounds the whole ``cache_dir``: after a write that takes the
  running total over it, the folder is listed and the least recently used
  page files (oldest mtime; a hit refreshes it) are removed; a file another
  process removed meanwhile is simply gone;
* a disk that fails (full, read-only) turns writing off with one warning:
  a cache must never fail training.
"""
import errno
import json
import os
import re
import stat
import struct
import threading
import time
import uuid
import warnings
import zlib

MAGIC = b'FFCVXPG2'
#: Magic of format 1 (no checksum): a miss, not damage, and replaced on the refetch.
OLD_MAGIC = b'FFCVXPG1'
_HEADER = struct.Struct('<8sQQII')
_SUMMED = struct.Struct('<QQ')   # page and length, as the checksum covers them
_OLD_FORMAT = 'format 1'
#: A write that fails for these reasons concerns one page's name (e.g. a directory
#: in its place), not the disk: that page is not stored, the others still are.
_NAME_ERRORS = (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR)
#: errno of a process or system out of a resource for now: says nothing of the entry,
#: so a read is a plain miss (the file is kept) and a write skips only this page.
_BUSY_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR, errno.EAGAIN)
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
    damaged : int
        Misses of this instance that found a damaged or unreadable entry.

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
        self.hits = self.misses = self.writes = self.evictions = self.damaged = 0
        self._lock = threading.Lock()
        self._estimate = None      # bytes under cache_dir, as last listed plus our writes
        self._broken = False
        self._warned_damage = False
        self._key_bytes = key.encode('ascii')
        if description is not None:
            path = os.path.join(self.folder, 'source.json')
            if not os.path.exists(path):
                self._write_file(path, json.dumps(description, indent=1, default=str).encode())

    def _path(self, page):
        return os.path.join(self.folder, f"{int(page)}.page")

    def checksum(self, page, data):
        """CRC-32 of this cache's key, ``page``, the length of ``data`` and ``data`` (format 2)."""
        prefix = zlib.crc32(self._key_bytes + _SUMMED.pack(int(page), len(data)))
        return zlib.crc32(data, prefix)

    def read_into(self, page, view, expected_length=None):
        """Copy the cached ``page`` into the front of ``view``, checked; a miss is None.

        Parameters
        ----------
        page : int
            Page number in the file.
        view : writable buffer
            At least the page's length; on a miss its bytes are undefined.
        expected_length : int or None, bytes
            The page's length in the file (``page_size`` but for the file's last
            page). A page file of any other length is a miss. None: any length
            from 1 to ``page_size`` that fits ``view`` (for tools; the
            ``remote`` strategy always says).

        Returns
        -------
        int or None
            The page's length, or None on a miss: no file, or a damaged or
            unreadable entry (removed where possible and, the first time for
            this instance, reported with a ``RuntimeWarning``). Never raises
            ``OSError`` (REM-009).

        Raises
        ------
        ValueError
            If ``expected_length`` is not 1 to ``page_size`` or exceeds ``view``.
        """
        view = memoryview(view).cast('B')
        limit = min(self.page_size, len(view))
        if expected_length is not None:
            if not 0 < int(expected_length) <= limit:
                raise ValueError(f"disk cache: page {page} cannot be {expected_length} bytes "
                                 f"(page_size {self.page_size}, buffer {len(view)})")
            limit = int(expected_length)
        path = self._path(page)
        try:
            # O_NOFOLLOW: a symbolic link is never a page we wrote. O_NONBLOCK: opening
            # a FIFO must not wait for a writer (no effect on regular files).
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            self._count('misses')
            return None
        except OSError as exc:   # a symbolic link (ELOOP), no permission, EIO...
            if exc.errno in _BUSY_ERRORS:
                self._count('misses')
                return None
            return self._damaged(page, path, None, f"cannot open it: {exc}")
        info = None
        try:
            info = os.fstat(fd)
            length, damage = self._check(fd, info, page, view, limit, expected_length is not None)
        except OSError as exc:   # EIO, or EISDIR: a directory opens but cannot be read
            damage = f"cannot read it: {exc}"
        finally:
            os.close(fd)
        if damage == _OLD_FORMAT:   # stale, not damaged: replaced when the page is fetched
            self._remove(path, info)
            self._count('misses')
            return None
        if damage is not None:
            return self._damaged(page, path, info, damage)
        try:
            os.utime(path)   # recently used: the last to be evicted
        except OSError:
            pass             # evicted by another process meanwhile; the bytes are read
        self._count('hits')
        return length

    def _check(self, fd, info, page, view, limit, exact):
        """``(length, None)`` for a sound page read into ``view``, else ``(0, what is wrong)``."""
        if not stat.S_ISREG(info.st_mode):
            return 0, "not a regular file"
        header = os.pread(fd, _HEADER.size, 0)
        if len(header) < _HEADER.size:
            return 0, f"{info.st_size} bytes, shorter than a header"
        magic, stored_page, length, checksum, reserved = _HEADER.unpack(header)
        if magic == OLD_MAGIC:
            return 0, _OLD_FORMAT
        if magic != MAGIC or reserved != 0:
            return 0, "no page header (zeros, or another file)"
        if stored_page != page:
            return 0, f"its header names page {stored_page}"
        if exact and length != limit:
            return 0, f"{length} bytes where the page has {limit}"
        if not 0 < length <= limit:
            return 0, f"{length} bytes where a page has 1 to {limit}"
        if info.st_size != _HEADER.size + length:
            return 0, f"{info.st_size - _HEADER.size} bytes follow a header saying {length}"
        got = 0
        while got < length:
            n = os.preadv(fd, [view[got:length]], _HEADER.size + got)
            if n == 0:
                return 0, f"it ended after {got} of {length} bytes"
            got += n
        if self.checksum(page, view[:length]) != checksum:
            return 0, "checksum mismatch: damaged bytes, or another page's or file's"
        return int(length), None

    def _damaged(self, page, path, info, why):
        """Count a damaged entry as a miss, remove it where possible, warn once."""
        self._remove(path, info)
        with self._lock:
            self.misses += 1
            self.damaged += 1
            first, self._warned_damage = not self._warned_damage, True
        if first:
            warnings.warn(f"disk cache {self.folder}: page {page} is damaged ({why}); it is "
                          f"fetched again from the source. Further damaged pages of this "
                          f"cache are misses too, without another warning", RuntimeWarning)
        return None

    def write(self, page, data):
        """Store ``page`` durably (fsync); True if stored, False if not.

        Not stored: larger than ``max_bytes``, writing turned off by a failed
        disk, or something other than a page file in the page's place.

        Raises
        ------
        ValueError
            If ``data`` is empty or longer than ``page_size``.
        """
        data = memoryview(data).cast('B')
        if not 0 < len(data) <= self.page_size:
            raise ValueError(f"disk cache: page {page} has {len(data)} bytes; a page has 1 to "
                             f"{self.page_size}")
        size = _HEADER.size + len(data)
        if self._broken or (self.max_bytes is not None and size > self.max_bytes):
            return False
        header = _HEADER.pack(MAGIC, page, len(data), self.checksum(page, data), 0)
        if not self._write_file(self._path(page), header, data):
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
        """Write ``parts`` to ``path`` atomically and durably; False if not written."""
        temp = f"{path}.{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(temp, 'wb') as f:
                for part in parts:
                    f.write(part)
                f.flush()
                # Without it a crash after the rename can leave the name with zeros or
                # nothing in it (ext4, xfs write the data later than the rename).
                os.fsync(f.fileno())
            os.rename(temp, path)
        except OSError as exc:
            self._remove(temp)
            if exc.errno in _NAME_ERRORS or exc.errno in _BUSY_ERRORS:
                return False    # a directory in the page's place, no fd free: only this page
            if not self._broken:
                self._broken = True
                warnings.warn(f"disk cache {self.folder}: cannot write ({exc}); pages are no "
                              f"longer stored here in this process (reads go on)", RuntimeWarning)
            return False
        self._sync_folder()
        return True

    def _sync_folder(self):
        """Make the renames in the folder durable; a file system that cannot is left as is."""
        try:
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass   # e.g. EINVAL where folders cannot be synced; the page file itself is
        finally:
            os.close(fd)

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
    def _remove(path, info=None):
        """Remove ``path`` if it is still the entry ``info`` describes (any entry if None).

        Another process may have renamed a sound page over a damaged one since
        it was read; that one stays. A directory goes only if empty.
        """
        try:
            now = os.lstat(path)
            if info is not None and (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
                return
            if stat.S_ISDIR(now.st_mode):
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError:
            pass

    def close(self):
        """Nothing is held open between calls; kept for symmetry with the strategies."""
