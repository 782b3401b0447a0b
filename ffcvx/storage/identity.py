"""One file's identity, and every name derived from it.

The strategies and the Loader name a file in four places, each with the
recipe its sharing needs; all four are computed here, from one
:class:`FileIdentity` (what :meth:`.pages.PageSource.identity` returns):

* :meth:`FileIdentity.path_key`: the shared-memory segment's name (one node,
  one path): realpath, size and mtime; 24 hex digits.
* :meth:`FileIdentity.content_key`: the Redis keys (every node, every path)
  and, ``'sampled'``, the resume digest of a checkpoint: a hash of the
  file's bytes; 32 hex digits.
* :meth:`FileIdentity.node_key`: which content key this node already
  computed for this version of the file (the Redis memo ``P:local:<L>``).
* :meth:`FileIdentity.version_key`: the disk page cache's folder (a remote
  file's URL and validators, REM-009); 32 hex digits.

The recipes are those of earlier releases, byte for byte: segments, keys on
a server, folders on disk and checkpoints made by them keep their names.
"""
import hashlib
import json
import os
import socket

import numpy as np

from .source import redact

#: Bytes read per request while hashing a whole file.
_HASH_CHUNK_BYTES = 32 << 20
#: Data chunks hashed by the ``sampled`` content key, and their size in bytes.
_SAMPLED_CHUNKS = 64
_SAMPLED_CHUNK_BYTES = 4096
#: Version of the content key's recipe (it was first the Redis key layout's).
_CONTENT_LAYOUT = b'ffcvx-redis-v1'
#: The content key's modes.
CONTENT_MODES = ('sampled', 'full')


def _hex(text, digits):
    return hashlib.sha256(text.encode('utf-8', 'surrogateescape')).hexdigest()[:digits]


def path_key(fname):
    """Hash of a local file's realpath, size in bytes and mtime in ns: 24 hex digits.

    Parameters
    ----------
    fname : str or os.PathLike

    Raises
    ------
    OSError
        If the file cannot be stat'ed.
    """
    path = os.path.realpath(fname)
    info = os.stat(path)
    return _hex(f"{path}\0{info.st_size}\0{info.st_mtime_ns}", 24)


def node_key(fname):
    """Hash of host name, realpath, device, inode, size and mtime (ns) of a local file: 32 hex digits.

    A rewritten or moved file gets a new one.
    """
    info = os.stat(fname)
    return _hex('\0'.join(map(str, (socket.gethostname(), os.path.realpath(fname), info.st_dev,
                                    info.st_ino, info.st_size, info.st_mtime_ns))), 32)


class FileIdentity:
    """Names of the file a Reader opened (see the module docstring).

    Parameters
    ----------
    reader : ffcvx.reader.Reader or None
        Its layout says what the ``sampled`` content key covers; None for
        :meth:`version` and :meth:`version_key` of a bare ``source``.
    source : ffcvx.storage.Source or None
        Where the bytes and the version come from; None: ``reader.source``
        (a URL's file too).
    """

    def __init__(self, reader, source=None):
        self.reader = reader
        self.source = source if source is not None else reader.source

    def version(self):
        """``{'size', 'etag', 'version', 'last_modified'}`` of the version being read."""
        return self.source.identity()

    def path_key(self):
        """The shared-memory name of a local file (:func:`path_key`)."""
        return path_key(self.reader.fname)

    def node_key(self):
        """This node's view of a local file (:func:`node_key`)."""
        return node_key(self.reader.fname)

    def version_key(self):
        """Hex digest (32) of a file's URL (without credentials), size, ETag, version and Last-Modified.

        A replacement that changes any of them never reads the old pages (REM-009).
        """
        source = self.source
        found = source.identity()
        return _hex(json.dumps({'url': redact(source.location), 'size': int(found['size']),
                                'etag': found.get('etag'), 'version': found.get('version'),
                                'last_modified': found.get('last_modified')}, sort_keys=True), 32)

    def content_key(self, mode='full'):
        """A content-derived name of the file, the same on every node and at every path.

        Parameters
        ----------
        mode : {'full', 'sampled'}
            ``'full'``: SHA-256 of every byte of the file (it reads the
            whole file). ``'sampled'`` (cheap: a few MB read at most):
            SHA-256 of the file size, the bytes before the data region
            (header, field descriptors, the metadata table), the allocation
            table, and 64 chunks of 4 KiB spread evenly over the data
            region; two files of one layout that differ only between the
            sampled chunks share it.

        Returns
        -------
        str
            32 hex digits.

        Raises
        ------
        ValueError
            If ``mode`` is not one of the above.
        OSError
            If the file cannot be read.
        """
        if mode not in CONTENT_MODES:
            raise ValueError(f"redis cache: identity must be 'sampled' or 'full', got {mode!r}")
        reader = self.reader
        digest = hashlib.sha256(_CONTENT_LAYOUT + b'\0' + mode.encode() + b'\0')
        size = int(reader.file_size)
        digest.update(size.to_bytes(8, 'little'))
        read = self.source.read   # a URL's file too (resume's identity, REM-011)
        if mode == 'full':
            for offset in range(0, size, _HASH_CHUNK_BYTES):
                digest.update(read(offset, min(_HASH_CHUNK_BYTES, size - offset)))
            return digest.hexdigest()[:32]
        data_start = min(int(reader.data_region_start), size)
        digest.update(read(0, data_start))
        digest.update(np.ascontiguousarray(reader.alloc_table).tobytes())
        # Data bytes, sampled: the structure above is identical for two
        # files of same-shaped arrays, so some content must enter too.
        data_end = max(int(reader.header['alloc_table_ptr']), data_start)
        span = data_end - data_start
        if span > 0:
            step = max(span // _SAMPLED_CHUNKS, 1)
            for offset in range(data_start, data_end, step):
                digest.update(read(offset, min(_SAMPLED_CHUNK_BYTES, data_end - offset)))
        return digest.hexdigest()[:32]
