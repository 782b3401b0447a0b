"""Compiling Operation code with Numba (FFCV's ``Compiler``).

FFCV keeps two process-wide switches here, ``Compiler.is_enabled`` and
``Compiler.num_threads``, and every Loader overwrites the thread count. ffcvx
keeps FFCV's names with their documented meaning but decides both per
Loader: ``set_enabled`` / ``set_num_threads`` set the *defaults* for Loaders
created afterwards, and while a Loader plans its pipelines (``planning``)
the two attributes read that Loader's own values, so Operations that consult
them in ``generate_code`` see the Loader they are compiled for.
"""
import contextlib
import contextvars
import os

import numba
from numba import njit, prange

from .code_cache import CODE_CACHE
from .step_code import StepCode

# The Loader being planned in this thread (its jit flag and thread count), or
# None outside planning. A ContextVar is per thread, so two Loaders built at
# once in two threads never see each other's values.
_PLANNING = contextvars.ContextVar('ffcvx_compiler_planning', default=None)


class _CompilerMeta(type):
    # Class-level properties: FFCV code reads ``Compiler.is_enabled`` and
    # ``Compiler.num_threads`` as plain attributes.

    @property
    def is_enabled(cls):
        """Whether Operations are compiled (True) or run as plain Python (False)."""
        planning = _PLANNING.get()
        return cls._default_enabled if planning is None else planning[0]

    @property
    def num_threads(cls):
        """Threads of the compiled per-sample loops: the planned Loader's ``num_workers``."""
        planning = _PLANNING.get()
        return cls._default_threads if planning is None else planning[1]


class Compiler(metaclass=_CompilerMeta):
    """Numba compilation as Operations use it (FFCV 1.0's names)."""

    _default_enabled = True
    _default_threads = 1

    @classmethod
    def set_enabled(cls, enabled):
        """Compile (True, the default) or run Operations as plain Python (False).

        Applies to Loaders created afterwards (``Loader(jit=...)`` decides
        per Loader and is the recommended way). Plain Python runs are slow
        but give ordinary tracebacks and allow ``pdb`` inside Operations.
        """
        cls._default_enabled = bool(enabled)

    @classmethod
    def set_num_threads(cls, n):
        """Threads for compiled loops of this thread and for torch, as FFCV does.

        Parameters
        ----------
        n : int
            ``< 1`` means every CPU this process may run on. Capped at
            ``NUMBA_NUM_THREADS``. Loaders use their own ``num_workers``
            regardless.
        """
        import torch
        n = int(n)
        if n < 1:
            n = len(os.sched_getaffinity(0))
        n = min(n, numba.config.NUMBA_NUM_THREADS)
        cls._default_threads = n
        numba.set_num_threads(n)
        torch.set_num_threads(n)

    @staticmethod
    @contextlib.contextmanager
    def planning(enabled, num_threads):
        """Within the block, ``is_enabled`` and ``num_threads`` give these values.

        Used by the Loader around planning its pipelines.
        """
        token = _PLANNING.set((bool(enabled), int(num_threads)))
        try:
            yield
        finally:
            _PLANNING.reset(token)

    @classmethod
    def compile(cls, code, signature=None):
        """``code`` compiled with Numba (nopython, releasing the GIL), or unchanged.

        ``code.is_parallel = True`` asks for ``parallel=True`` so that loops
        written with :meth:`get_iterator` run on the Loader's threads. Code
        equal to code compiled before in this process gets that compiled
        function (:mod:`ffcvx.pipeline.code_cache`). When
        compilation is disabled (:attr:`is_enabled` False) ``code`` is
        returned as it is. A :class:`~ffcvx.pipeline.step_code.StepCode`
        (PIP-003) gives the same StepCode around its compiled function.
        """
        if not cls.is_enabled:
            return code
        if isinstance(code, StepCode):
            return code.with_function(cls._compile(code.function, code.is_parallel, signature))
        return cls._compile(code, bool(getattr(code, 'is_parallel', False)), signature)

    @staticmethod
    def _compile(code, parallel, signature):
        options = dict(nogil=True, fastmath=True, error_model='numpy', parallel=parallel)
        if signature is not None:
            compile_ = njit(signature, **options)
        else:
            compile_ = njit(**options)
        # Equal code compiled by an earlier Loader is reused: Numba never frees machine code.
        key_options = (tuple(sorted(options.items())), repr(signature))
        return CODE_CACHE.get_or_compile(code, key_options, compile_)

    @staticmethod
    def get_iterator():
        """The loop iterator for per-sample loops: ``numba.prange``.

        In a parallel compiled function it spreads iterations over the
        Loader's threads; elsewhere (and in plain Python) it behaves like
        ``range``.
        """
        return prange

    @staticmethod
    def thread_id():
        """``numba.get_thread_id``: index of the executing thread, in ``[0, NUMBA_NUM_THREADS)``."""
        return numba.get_thread_id
