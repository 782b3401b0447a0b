"""Compiling Operation code with Numba.

Stateless by design: FFCV kept a process-wide "JIT enabled" switch and thread
count here; ffcvx decides both per Loader.
"""
import numba
from numba import njit, prange


class Compiler:
    """Numba compilation as Operations use it (FFCV's names)."""

    @staticmethod
    def compile(code, signature=None):
        """Compile ``code`` with Numba in nopython mode, releasing the GIL.

        ``code.is_parallel = True`` asks for ``parallel=True`` so that loops
        written with :meth:`get_iterator` run on the Loader's threads.
        """
        parallel = bool(getattr(code, 'is_parallel', False))
        options = dict(nogil=True, fastmath=True, error_model='numpy', parallel=parallel)
        if signature is not None:
            return njit(signature, **options)(code)
        return njit(**options)(code)

    @staticmethod
    def get_iterator():
        """The loop iterator for per-sample loops: ``numba.prange``.

        In a parallel compiled function it spreads iterations over the
        Loader's threads; elsewhere it behaves like ``range``.
        """
        return prange

    @staticmethod
    def thread_id():
        """``numba.get_thread_id``: index of the executing thread, in ``[0, NUMBA_NUM_THREADS)``."""
        return numba.get_thread_id
