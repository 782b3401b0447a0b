"""A merge into a local (or shared-filesystem) file: :func:`write_local` (FMT-092).

The head and the table of a :class:`~.merge.Plan` are written, and the
pages move with ``os.copy_file_range`` (a read/write loop where that is
missing or refused), into a temporary file that replaces ``out``
atomically, as the writer does (:class:`.temp.Staged`). A part given as a
URL has its pages downloaded in pieces of :data:`~.merge_plan.COPY_CHUNK` bytes.
"""
import os

from ..errors import MergeError, WriterError
from ..types import HeaderType
from . import temp
from .merge_plan import COPY_CHUNK, PartEnded
from .pages import pwrite_all

__all__ = ['write_local']


def _copy_range(src, dst, count, src_at, dst_at):
    """Copy ``count`` bytes from ``src`` at ``src_at`` to ``dst`` at ``dst_at`` (descriptors).

    ``os.copy_file_range`` first (the kernel moves the bytes, or shares the
    blocks on filesystems that can); where it is missing or refuses (another
    filesystem on an old kernel: EXDEV, ENOSYS, EINVAL, ...) the rest is
    copied with a pread/pwrite loop, which raises again if the error was real.

    Raises
    ------
    OSError
        From the copy (ENOSPC, EIO), or when the source ends early.
    """
    try:
        while count:
            done = os.copy_file_range(src, dst, count, src_at, dst_at)
            if done == 0:
                raise PartEnded(f"the part ended {count} bytes early (changed while merging?)")
            count, src_at, dst_at = count - done, src_at + done, dst_at + done
        return
    except PartEnded:
        raise
    except (AttributeError, OSError):
        pass            # go on from where the kernel copy stopped
    while count:
        chunk = os.pread(src, min(count, COPY_CHUNK), src_at)
        if not chunk:
            raise PartEnded(f"the part ended {count} bytes early (changed while merging?)")
        pwrite_all(dst, chunk, dst_at)
        count, src_at, dst_at = count - len(chunk), src_at + len(chunk), dst_at + len(chunk)


def _copy_part(fd, part, start, length, at):
    if part.url:
        for data in part.chunks(start, length):
            pwrite_all(fd, data, at)
            at += len(data)
        return
    src = os.open(part.path, os.O_RDONLY | getattr(os, 'O_CLOEXEC', 0))
    try:
        if os.fstat(src).st_size != part.file_size:
            raise MergeError(f"part {part.path} changed size while being merged")
        _copy_range(src, fd, length, start, at)
    finally:
        os.close(src)


def write_local(plan, out):
    """Write ``plan`` (a :class:`~.merge.Plan`) into the local file ``out``, atomically.

    The header is written last (FMT-010, FMT-092), into a temporary file
    renamed onto ``out`` only once everything is there.

    Raises
    ------
    MergeError
        If a local part changed size since it was opened.
    WriterError
        If writing fails (a full disk, a part that changes meanwhile); no
        file is left at ``out`` but the old one, and no temporary file.
    """
    staged = temp.Staged(out)       # also removes what killed merges left
    try:
        with staged:
            pwrite_all(staged.fd, plan.head[HeaderType.itemsize:], HeaderType.itemsize)
            at = len(plan.head)
            for part, start, length in plan.ranges:
                _copy_part(staged.fd, part, start, length, at)
                at += length
            pwrite_all(staged.fd, plan.table, at)
            os.ftruncate(staged.fd, at + len(plan.table))
            pwrite_all(staged.fd, plan.head[:HeaderType.itemsize], 0)
    except OSError as exc:
        raise WriterError(f"merging into {out} failed: {type(exc).__name__}: {exc}; nothing was "
                          f"written there and an existing file was left as it was") from exc
    return out
