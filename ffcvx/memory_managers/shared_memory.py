"""Strategy 2: one copy of the file per node, in shared memory (``/dev/shm``).

Every process that reads the same file maps the same tmpfs file, so a node
holds one copy however many training processes it runs, and reads never touch
the disk after the first fill.

Files in ``shm_dir`` for a dataset with identity key ``K`` (a hash of the
realpath, size and mtime, so two datasets with one base name never collide
and a rewritten file gets a fresh copy):

* ``ffcvx-K.lock``: ``flock``-ed exclusively around every change below, so
  only one process fills and no one attaches to or removes a segment mid-way;
* ``ffcvx-K.filling``: the copy being written;
* ``ffcvx-K.data``: the complete copy. It only ever appears by renaming a
  finished ``.filling`` file, so its existence is the "complete" marker;
* ``ffcvx-K.users/<pid>-<token>``: one file per live user, each held
  ``flock``-ed by its process. The kernel drops a flock when its process dies,
  even by SIGKILL, so a user file that can be locked belongs to a dead
  process; it is removed, and the segment goes when no live user is left.

Every new manager, whatever its file, first sweeps ``shm_dir``
(:func:`reclaim_dead_segments`): the segments of other files whose users are
all dead (killed before they could clean up) are removed, so a SIGKILLed
training job's copy does not stay in RAM until reboot.
"""
import fcntl
import mmap
import os
import re
import shutil
import uuid
import weakref

import numpy as np

from ..storage.identity import path_key
from .os_cache import WholeFileManager

#: Where segments live unless the caller says otherwise.
DEFAULT_SHM_DIR = '/dev/shm'
#: Bytes copied per step while filling.
_COPY_CHUNK = 64 << 20
#: Names this strategy creates in ``shm_dir``; group 1 is the identity key.
_SEGMENT_NAME = re.compile(r'^ffcvx-([0-9a-f]{24})\.(?:lock|data|filling|users)$')


def identity_key(fname):
    """Hash of a file's identity: realpath, size in bytes and mtime in ns.

    Parameters
    ----------
    fname : str or os.PathLike

    Returns
    -------
    str
        24 hex digits (:func:`ffcvx.storage.identity.path_key`).
    """
    return path_key(fname)


def free_bytes(directory):
    """Bytes that unprivileged writers may still put into ``directory``'s filesystem."""
    info = os.statvfs(directory)
    return info.f_bavail * info.f_frsize


def segment_paths(shm_dir, key):
    """The names of key ``key``'s files in ``shm_dir`` (see the module docstring).

    Returns
    -------
    dict of str to str
        ``lock``, ``data``, ``filling`` and ``users`` (a folder).
    """
    base = os.path.join(shm_dir, f'ffcvx-{key}')
    return {'lock': base + '.lock', 'data': base + '.data', 'filling': base + '.filling',
            'users': base + '.users'}


def _remove_segment(paths):
    """Remove a key's copy, user folder and lock file. Caller holds the lock."""
    for key in ('data', 'filling'):
        try:
            os.unlink(paths[key])
        except FileNotFoundError:
            pass
    shutil.rmtree(paths['users'], ignore_errors=True)
    try:
        os.unlink(paths['lock'])
    except FileNotFoundError:
        pass


def reclaim_dead_segments(shm_dir=DEFAULT_SHM_DIR, keep=()):
    """Remove the segments in ``shm_dir`` whose users are all dead.

    A user is alive while its process holds the flock on its user file; the
    kernel drops the lock when the process dies, SIGKILL included. A key
    whose lock is held right now (a live process is filling or attaching)
    is left alone, as are keys this process may not remove (another Unix
    user's segments).

    Parameters
    ----------
    shm_dir : str
        The folder to sweep (``/dev/shm`` by default).
    keep : iterable of str
        Identity keys not to touch (a manager keeps its own, which it reuses).

    Returns
    -------
    list of str
        The identity keys whose files were removed, sorted.

    Raises
    ------
    OSError
        If ``shm_dir`` cannot be listed.
    """
    keep = set(keep)
    keys = sorted({match.group(1) for match in map(_SEGMENT_NAME.match, os.listdir(shm_dir))
                   if match is not None and match.group(1) not in keep})
    reclaimed = []
    for key in keys:
        paths = segment_paths(shm_dir, key)
        try:
            lock_fd = _lock_path(paths['lock'], wait=False)
        except OSError:
            continue  # not ours to open (permissions), or the folder went
        if lock_fd is None:
            continue
        try:
            if not _live_users(paths['users'])[0]:
                _remove_segment(paths)
                reclaimed.append(key)
        except OSError:
            pass  # e.g. another user's files: leave them
        finally:
            os.close(lock_fd)
    return reclaimed


def _lock_path(path, wait=True):
    """Open ``path`` and take an exclusive flock on it; return the fd.

    Retries if the file was removed and recreated while we waited, so that
    two processes never both hold "the" lock on two different inodes.

    With ``wait=False`` never waits: None if another process holds the lock.
    """
    flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _live_users(users_dir):
    """Remove user files of dead processes. Caller holds the lock.

    Returns
    -------
    live : list of str
        Names of the user files of live processes.
    removed : int
        User files of dead processes removed.
    """
    live, removed = [], 0
    try:
        names = os.listdir(users_dir)
    except FileNotFoundError:
        return live, removed
    for name in names:
        path = os.path.join(users_dir, name)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            live.append(name)  # its owner is alive and holds the lock
        else:
            os.unlink(path)
            removed += 1
        finally:
            os.close(fd)
    return live, removed


def _release(paths, user_fd_holder, mapping_holder):
    """Detach one user; remove the segment if it was the last. Safe to call twice."""
    mapping = mapping_holder.pop('mmap', None)
    if mapping is not None:
        try:
            mapping.close()
        except BufferError:
            # Arrays still view the map (a decoder output kept by the caller);
            # the map closes when they go, the file is unlinked regardless.
            pass
    user_fd = user_fd_holder.pop('fd', None)
    if user_fd is None:
        return
    lock_fd = _lock_path(paths['lock'])
    try:
        try:
            os.unlink(paths['user'])
        except FileNotFoundError:
            pass
        os.close(user_fd)
        if not _live_users(paths['users'])[0]:
            _remove_segment(paths)
    finally:
        os.close(lock_fd)


class SharedMemoryManager(WholeFileManager):
    """Serves the file from one shared-memory copy per node (strategy 2).

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    shm_dir : str
        A tmpfs directory shared by the node's processes.

    Attributes
    ----------
    key : str
        The file's identity key (:func:`identity_key`).
    segment_path : str
        Path of the complete copy, ``<shm_dir>/ffcvx-<key>.data``.
    filled : bool
        Whether this process made the copy (False: it attached to one).
    reclaimed_users : int
        User files of dead processes found and removed when attaching.
    reclaimed_segments : list of str
        Keys of other files' segments, all of whose users were dead, that
        this manager removed from ``shm_dir`` (:func:`reclaim_dead_segments`).

    Raises
    ------
    MemoryError
        If the file does not fit in ``shm_dir``'s free space; the message
        says by how many bytes. Nothing is copied in that case.
    OSError
        If ``shm_dir`` is missing or the file cannot be read.
    """

    # One segment per file and node, attached to by every process.
    shared_across_processes = True
    # Segments, locks and user files go to ``shm_dir``; the last user's
    # close() removes them.
    scratch_dir_option = 'shm_dir'

    def __init__(self, reader, shm_dir=DEFAULT_SHM_DIR):
        super().__init__(reader)
        self.key = identity_key(reader.fname)
        # Killed jobs' copies of other files go first: they may hold the
        # space this file needs.
        self.reclaimed_segments = reclaim_dead_segments(shm_dir, keep=(self.key,))
        token = f'{os.getpid()}-{uuid.uuid4().hex}'
        self._paths = segment_paths(shm_dir, self.key)
        self._paths['user'] = os.path.join(self._paths['users'], token)
        self.segment_path = self._paths['data']
        self.filled = False
        self._user = {}
        self._mapping = {}
        size = int(reader.file_size)
        lock_fd = _lock_path(self._paths['lock'])
        try:
            live, self.reclaimed_users = _live_users(self._paths['users'])
            if not live:
                # Nobody alive uses this key: a .filling left by a killed
                # filler is garbage. A complete .data is kept and reused (the
                # key pins size and mtime, so its bytes are still right).
                try:
                    os.unlink(self._paths['filling'])
                except FileNotFoundError:
                    pass
            os.makedirs(self._paths['users'], exist_ok=True)
            user_fd = os.open(self._paths['user'], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            fcntl.flock(user_fd, fcntl.LOCK_EX)
            self._user['fd'] = user_fd
            self._finalizer = weakref.finalize(self, _release, self._paths, self._user,
                                               self._mapping)
            if not os.path.exists(self._paths['data']):
                self._fill(shm_dir, size)
                self.filled = True
        except BaseException:
            os.close(lock_fd)
            lock_fd = None
            if 'fd' in self._user:
                self._finalizer()
            raise
        finally:
            if lock_fd is not None:
                os.close(lock_fd)
        if size > 0:
            with open(self._paths['data'], 'rb') as f:
                self._mapping['mmap'] = mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ)
            memory = np.frombuffer(self._mapping['mmap'], dtype=np.uint8)
        else:
            memory = np.zeros(0, dtype=np.uint8)
        self._state = (memory,
                       *self.region_table())

    def _fill(self, shm_dir, size):
        # Checked before the first byte is written: a half-copied segment
        # would fill /dev/shm for every process on the node.
        available = free_bytes(shm_dir)
        if size > available:
            raise MemoryError(
                f"shared-memory cache: {self.reader.fname} ({size} bytes) does not fit in "
                f"{shm_dir} ({available} bytes free); {size - available} bytes short. Free "
                f"space there, enlarge it, or use another strategy (cache='process')")
        with open(self.reader.fname, 'rb') as src, open(self._paths['filling'], 'wb') as dst:
            while True:
                chunk = src.read(_COPY_CHUNK)
                if not chunk:
                    break
                dst.write(chunk)
        if os.path.getsize(self._paths['filling']) != size:
            os.unlink(self._paths['filling'])
            raise OSError(f"shared-memory cache: {self.reader.fname} changed size while being copied")
        os.rename(self._paths['filling'], self._paths['data'])

    def close(self):
        self._state = None
        finalizer = getattr(self, '_finalizer', None)
        if finalizer is not None:
            finalizer()
