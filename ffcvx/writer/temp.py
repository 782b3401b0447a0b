"""Temporary files of :class:`ffcvx.writer.DatasetWriter`: naming, creation, stale-file removal.

A write goes to a temporary file in the target's folder, moved into place
with ``os.replace`` only when everything succeeded (``spec/beton.md``,
"Writer faults"). Its name says which process made it::

    .<target name>.ffcvx-<host>-<pid>-<start>-<random>.tmp

``host`` is 8 hex digits of a hash of the host name and pid namespace, ``pid`` the writing
process's id and ``start`` its start time (clock ticks since boot, field 22
of ``/proc/<pid>/stat``), so that a recycled pid is not taken for the
writer. A temporary file is *stale* when it was made on this host by a
process that no longer runs (no such pid, or a pid with another start
time). Stale files are removed by the next write to the same target and by
``ffcvx clean``; a live writer's file, one made on another host (a shared
folder) or in another container, one of another user (unless we are root),
or one whose writer's liveness is hidden from us is never touched.
"""
import hashlib
import os
import re
import secrets
import socket
import warnings

__all__ = ['Staged', 'TempName', 'clean_stale', 'clean_temporary_files', 'create_temp',
           'fsync_directory', 'process_start_time', 'stale_temps', 'temps_of']

_PATTERN = re.compile(r'^\.(?P<target>.+)\.ffcvx-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)'
                      r'-(?P<token>[0-9a-f]+)\.tmp$')


def process_start_time(pid):
    """Start time of process ``pid`` in clock ticks since boot, or None if it does not run.

    Parameters
    ----------
    pid : int

    Returns
    -------
    int or None
        Field 22 of ``/proc/<pid>/stat``; None when the process does not
        exist (or ``/proc`` cannot be read for it); 0 on a system without ``/proc``
        for our own process, which then only matches temporary files made
        there too.
    """
    try:
        with open(f'/proc/{int(pid)}/stat', 'rb') as stat:
            text = stat.read()
    except FileNotFoundError:
        if not os.path.isdir('/proc/self'):
            return 0 if pid == os.getpid() else None
        return None
    except PermissionError:
        raise       # hidden from us (hidepid): the caller must not call it dead
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or ')'
    fields = text[text.rindex(b')') + 2:].split()
    return int(fields[19])   # field 22; fields[0] is field 3


def _host_token():
    # Containers may share a host name but not pids: the pid namespace is part of it
    # (its inode is fixed for a host's initial namespace, so it survives reboots).
    try:
        namespace = os.stat('/proc/self/ns/pid').st_ino
    except OSError:
        namespace = 0
    return hashlib.sha256(f'{socket.gethostname()}/{namespace}'.encode()).hexdigest()[:8]


def _process_runs(pid, start):
    """Whether process ``pid`` with start time ``start`` runs; True when we cannot tell."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass            # it exists, as another user's process
    except OSError:
        return True
    try:
        return process_start_time(pid) == start
    except PermissionError:
        return True


class TempName:
    """What a temporary file's name says (see the module docstring)."""

    __slots__ = ('target', 'host', 'pid', 'start')

    def __init__(self, target, host, pid, start):
        self.target = target
        self.host = host
        self.pid = pid
        self.start = start

    @classmethod
    def parse(cls, name):
        """The parts of ``name``, or None if it is not a writer's temporary file name."""
        match = _PATTERN.match(name)
        if match is None:
            return None
        return cls(match['target'], match['host'], int(match['pid']), int(match['start']))

    def is_stale(self):
        """True when the writer that made this file surely no longer runs on this host.

        False for another host's (or pid namespace's) file, and whenever the
        writer's liveness cannot be read (``/proc`` hidden from us).
        """
        if self.host != _host_token():
            return False        # another machine's writer: its pids mean nothing here
        return not _process_runs(self.pid, self.start)


def create_temp(target):
    """Create the temporary file for ``target`` in its folder; return ``(fd, path)``.

    Created with ``os.open(..., O_CREAT | O_EXCL, 0o666)`` so the process's
    umask gives it the mode any new file gets (no process-wide umask change).

    Raises
    ------
    OSError
        If the folder cannot be written to.
    """
    folder, name = os.path.split(os.path.abspath(target))
    me = os.getpid()
    start = process_start_time(me) or 0   # 0: no /proc here
    while True:
        path = os.path.join(folder, f'.{name}.ffcvx-{_host_token()}-{me}-{start}-'
                                    f'{secrets.token_hex(4)}.tmp')
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0),
                         0o666)
        except FileExistsError:   # one in 4 billion: draw another token
            continue
        return fd, path


class Staged:
    """A new file for ``target``, written in a temporary file and moved onto it at the end.

    Creating one removes the stale temporary files of killed writes to
    ``target`` and creates this write's own. Used as a context manager
    around the writing: on a clean exit the file is fsynced, renamed onto
    ``target`` (``os.replace``) and the folder fsynced; on an exception it is
    closed and removed, and ``target`` stays as it was.

    Attributes
    ----------
    fd : int
        The temporary file, open for reading and writing.
    path : str
        Its path.

    Raises
    ------
    WriterError
        If the temporary file cannot be created (nothing was written).
    OSError
        From the fsync or the rename on exit.
    """

    def __init__(self, target):
        from ..errors import WriterError
        self.target = os.fspath(target)
        clean_stale(self.target)
        try:
            self.fd, self.path = create_temp(self.target)
        except OSError as exc:
            folder = os.path.dirname(os.path.abspath(self.target))
            raise WriterError(f"cannot create the temporary file for {self.target} in {folder}: "
                              f"{exc}; nothing was written") from exc

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        success = False
        try:
            if kind is None:
                os.fsync(self.fd)
                os.close(self.fd)
                self.fd = -1
                os.replace(self.path, self.target)
                success = True
                fsync_directory(os.path.dirname(os.path.abspath(self.target)))
        finally:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            if not success:
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                # Writer processes stopped by this failure (e.g. workers that imported an
                # unguarded main module and began writing the same target themselves) may
                # have left theirs; their pids are gone now, so they are stale.
                clean_stale(self.target)
        return False


def temps_of(target):
    """``(path, TempName)`` of every writer temporary file of ``target``, live or stale.

    ``target`` may also be a folder: then the temporary files of every target in it.
    """
    path = os.path.abspath(target)
    if os.path.isdir(path):
        folder, name = path, None
    else:
        folder, name = os.path.split(path)
    try:
        entries = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in sorted(entries):
        parsed = TempName.parse(entry)
        if parsed is not None and (name is None or parsed.target == name):
            found.append((os.path.join(folder, entry), parsed))
    return found


def _ours(path):
    """Whether this process may judge ``path``: our own user's file, or we are root."""
    try:
        return os.getuid() == 0 or os.stat(path).st_uid == os.getuid()
    except OSError:
        return False


def stale_temps(target):
    """Paths of the stale temporary files of ``target`` (see :meth:`TempName.is_stale`).

    Only this user's files (every user's for root): another user's writer may
    run where its ``/proc`` entry is hidden from us.
    """
    return [path for path, parsed in temps_of(target) if _ours(path) and parsed.is_stale()]


def clean_stale(target):
    """Remove the stale temporary files of ``target`` (a file path or a folder); return them.

    A file that vanishes meanwhile (another cleaner) is skipped; one that
    cannot be removed (a sticky folder, a read-only mount) is skipped with a
    ``RuntimeWarning`` naming it, so it never stops a write.
    """
    removed = []
    for path in stale_temps(target):
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            warnings.warn(f"cannot remove the stale temporary file {path}: {exc}",
                          RuntimeWarning, stacklevel=2)
            continue
        removed.append(path)
    return removed


def fsync_directory(path):
    """``fsync`` the folder ``path`` so a rename in it is durable; errors are ignored."""
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def clean_temporary_files(target):
    """Remove the temporary files that killed writers left for ``target``.

    Only files whose writer no longer runs are removed (pid and process
    start time, see the top of this module); a running write is never
    disturbed. The target itself is never touched. ``ffcvx clean`` calls this.

    Parameters
    ----------
    target : str or os.PathLike
        The ``.beton`` path a write was aimed at (it need not exist), or a
        folder: then the stale temporary files of every target in it.

    Returns
    -------
    list of str
        The paths removed.
    """
    return clean_stale(os.fspath(target))
