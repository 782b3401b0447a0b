"""Reuse of compiled step code between Loaders whose code is the same.

Numba never frees the machine code it generates: every Loader that compiled
its own pipelines kept ~10 MB for the rest of the process, so a job that
builds Loaders over and over (``filter``, evaluation loops, tests) grew
without bound (issue 12). Operations generate their code as closures, and
Numba freezes everything a closure refers to (cell values, globals, default
arguments, the functions it calls) into the machine code. Two closures with
the same code objects and equal frozen values therefore compile to the same
machine code, and the second can use the first's.

:func:`code_key` builds that identity, recursively and conservatively: a
value of a kind it does not know (a list, a dict, an arbitrary object) makes
the function uncachable, and it is compiled afresh as before. Arrays are
keyed by dtype, shape and a digest of their bytes, module-level
functions (ffcvx's kernels, Numba's own) by identity, ctypes function pointers
by address (the cached code keeps the pointer's owner alive, so the address
is not reused), modules by name.

The cache is the one process-wide mutable object of ffcvx, deliberately: only
a process-wide cache can bound memory that the process never gets back, and
it holds only pure, immutable code under keys that include everything the
code depends on, so no Loader can observe another through it.
"""
import ctypes
import hashlib
import threading
import types

import numpy as np
from numba.core.dispatcher import Dispatcher

_SCALARS = (type(None), bool, int, float, complex, str, bytes)


class Uncachable(Exception):
    """A value whose effect on the compiled code :func:`code_key` cannot capture."""


def _function_key(func, seen):
    if '<locals>' not in func.__qualname__:
        # Defined at module level (ffcvx's kernels, Numba's own functions):
        # the same object for every Loader, alive as long as its module, so
        # its identity is its key.
        return ('defined', func.__module__, func.__qualname__, id(func))
    if id(func) in seen:
        return ('recursive', func.__qualname__)
    seen = seen | {id(func)}
    code = func.__code__
    cells = tuple(_value_key(c.cell_contents, seen) for c in (func.__closure__ or ()))
    defaults = tuple(_value_key(d, seen) for d in (func.__defaults__ or ()))
    return ('function', code, cells, defaults, _globals_key(code, func.__globals__, seen))


def _globals_key(code, namespace, seen):
    # Every global name the code (and the code of functions defined inside it) reads.
    names, stack = set(), [code]
    while stack:
        current = stack.pop()
        names.update(current.co_names)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    found = [(name, namespace[name]) for name in sorted(names) if name in namespace]
    return tuple((name, _value_key(value, seen)) for name, value in found)


def _value_key(value, seen):
    if isinstance(value, _SCALARS):
        return (type(value).__name__, value)
    if isinstance(value, np.generic):
        return ('np', value.dtype.str, value.item())
    if isinstance(value, np.dtype):
        return ('dtype', value.str, str(value))
    if isinstance(value, tuple):
        return ('tuple',) + tuple(_value_key(v, seen) for v in value)
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        digest = hashlib.blake2b(data.view(np.uint8).reshape(-1), digest_size=16).digest()
        return ('array', value.dtype.str, value.shape, value.flags.writeable, digest)
    if isinstance(value, Dispatcher):
        options = tuple(sorted((k, repr(v)) for k, v in value.targetoptions.items()))
        return ('dispatcher', options, _function_key(value.py_func, seen))
    if isinstance(value, types.FunctionType):
        return _function_key(value, seen)
    if isinstance(value, types.ModuleType):
        return ('module', value.__name__)
    if isinstance(value, ctypes._CFuncPtr):
        address = ctypes.cast(value, ctypes.c_void_p).value
        return ('cfunc', address, repr(value.argtypes), repr(value.restype))
    if isinstance(value, type):
        return ('class', value.__module__, value.__qualname__, id(value))
    if isinstance(value, (types.BuiltinFunctionType, np.ufunc)):
        return ('builtin', getattr(value, '__module__', None), value.__name__, id(value))
    raise Uncachable(type(value).__name__)


def code_key(func, options):
    """A hashable identity of what Numba would compile ``func`` to, or None if unknown.

    Parameters
    ----------
    func : function
        A step's generated code (a plain Python function, often a closure).
    options : tuple
        The compile options and signature, part of the key.
    """
    try:
        key = (options, _function_key(func, frozenset()))
        hash(key)
        return key
    except (Uncachable, TypeError, ValueError):
        return None


class CodeCache:
    """Compiled code by :func:`code_key`; thread-safe. One instance per process (``CODE_CACHE``)."""

    def __init__(self):
        self._entries = {}
        self._lock = threading.Lock()

    def get_or_compile(self, func, options, compile_):
        """The compiled code of an equal function compiled before, else ``compile_(func)``, kept."""
        key = code_key(func, options)
        if key is None:
            return compile_(func)
        with self._lock:
            found = self._entries.get(key)
        if found is not None:
            return found
        compiled = compile_(func)
        with self._lock:
            return self._entries.setdefault(key, compiled)

    def __len__(self):
        return len(self._entries)


#: The process's cache (see the module docstring for why it is process-wide).
CODE_CACHE = CodeCache()
