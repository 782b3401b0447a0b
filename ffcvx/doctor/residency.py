"""How much of a local file is in the OS page cache: ``mincore(2)`` on a read-only mmap of it.

The answer decides whether a storage-bound local Loader waits on the disk
(cold cache: ``cache='process'`` reads ahead) or not.
"""
import ctypes
import ctypes.util
import mmap
import os

import numpy as np

__all__ = ['page_cache_residency']


def _libc():
    name = ctypes.util.find_library('c')
    if name is None:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte))
    libc.mincore.restype = ctypes.c_int
    return libc


def page_cache_residency(path):
    """The fraction of ``path``'s bytes in the page cache, and why not when it cannot say.

    Parameters
    ----------
    path : str
        A local file (a URL is "not local").

    Returns
    -------
    (float or None, str)
        The fraction in 0..1 (None when unknown) and a short note: ``''`` on
        success, else the reason (``'not local'``, the failing call and errno).
    """
    from ..storage import is_url
    if is_url(path):
        return None, 'not local'
    libc = _libc()
    if libc is None or not hasattr(libc, 'mincore'):
        return None, 'mincore is not available'
    try:
        size = os.path.getsize(path)
        if size == 0:
            return 1.0, ''
        with open(path, 'rb') as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as m:
            page = mmap.PAGESIZE
            pages = (size + page - 1) // page
            vector = (ctypes.c_ubyte * pages)()
            address = _address(m)
            if libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vector) != 0:
                errno = ctypes.get_errno()
                return None, f"mincore failed: {os.strerror(errno)}"
            resident = int((np.frombuffer(vector, dtype=np.uint8) & 1).sum())
            return resident / pages, ''
    except (OSError, ValueError) as exc:
        return None, f"cannot map the file: {exc}"


def _address(mapping):
    """The address of ``mapping``'s first byte (read-only maps cannot lend a writable buffer)."""
    return np.frombuffer(mapping, dtype=np.uint8, count=1).ctypes.data
