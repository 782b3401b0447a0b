"""Ways a disk-cache page file gets damaged, for tests/storage/test_disk_pages.py and tests/storage/test_disk_cache.py.

Each damage takes the cache's key folder, the page to damage and another
page already cached there, and leaves on disk what a bad write, a bad disk
or a careless person would. The page-file layout is written out here from
the module docstring of ffcvx/storage/disk_pages.py (format 2), not taken
from the module, so the tests also pin the documented format.
"""
import os
import struct
import zlib

HEADER = struct.Struct('<8sQQII')   # magic, page, length, CRC-32, reserved


def page_file(key, page, data, magic=b'FFCVXPG2'):
    """The bytes of a sound page file of ``page`` holding ``data``, under ``key``."""
    crc = zlib.crc32(data, zlib.crc32(key.encode() + struct.pack('<QQ', page, len(data))))
    return HEADER.pack(magic, page, len(data), crc, 0) + data


def _flip_byte(path, page, other):
    data = bytearray(path.read_bytes())
    data[HEADER.size + len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))


def _short_page(path, page, other):
    """Cut to 4 KiB (half a page of under 8 KiB) with a header that agrees in every
    field, checksum included: only the page's expected length tells."""
    data = path.read_bytes()[HEADER.size:]
    data = data[:4096 if len(data) >= 8192 else len(data) // 2]
    key = path.parent.name
    path.write_bytes(page_file(key, page, data))


def _renumbered(path, page, other):
    """Another page's file copied in, its header's page field changed to this page."""
    data = bytearray((path.parent / f'{other}.page').read_bytes())
    struct.pack_into('<Q', data, 8, page)
    path.write_bytes(bytes(data))


def _directory(path, page, other):
    path.unlink()
    path.mkdir()


def _full_directory(path, page, other):
    """A directory that cannot be removed without deleting what is in it."""
    _directory(path, page, other)
    (path / 'keep').write_bytes(b'not ours')


def _symlink_loop(path, page, other):
    """Opening it fails with ELOOP, even for root (chmod 000 would not stop root)."""
    path.unlink()
    os.symlink(path.name, path)


def _fifo(path, page, other):
    """A FIFO: an open that waited for a writer would hang the reader thread."""
    path.unlink()
    os.mkfifo(path)


def _zero_filled(path, page, other):
    """What a power loss can leave of a file renamed before its data reached the disk."""
    path.write_bytes(bytes(path.stat().st_size))


def _zeroed_bytes(path, page, other):
    data = path.read_bytes()
    path.write_bytes(data[:HEADER.size] + bytes(len(data) - HEADER.size))


DAMAGES = {
    'flipped byte': _flip_byte,
    'short page': _short_page,
    'renumbered page': _renumbered,
    'directory': _directory,
    'non-empty directory': _full_directory,
    'symlink loop': _symlink_loop,
    'fifo': _fifo,
    'zero-filled file': _zero_filled,
    'zeroed bytes': _zeroed_bytes,
}
#: Damages after which the entry cannot be removed, so the page is never stored again.
STAYS = {'non-empty directory'}


def damage(folder, page, other, kind):
    """Damage ``<folder>/<page>.page`` in the way ``kind`` (a key of DAMAGES) names."""
    DAMAGES[kind](folder / f'{page}.page', page, other)

