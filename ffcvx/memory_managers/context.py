"""FFCV 1.0's memory-manager protocol, given to every strategy by its base class.

FFCV code (its tests and benchmarks among it) drives a memory manager like
this::

    manager = OSCacheManager(reader)
    context = manager.schedule_epoch(batches)   # a MemoryContext
    read = manager.compile_reader()             # read(address, state) -> uint8[::1]
    with context:
        context.start_batch(0)                  # before each batch, in order
        data = read(reader.alloc_table['ptr'][k], context.state)

``address`` is the start of a region of the allocation table (what a
field's metadata records as ``ptr`` / ``data_ptr``); the result is that
region's bytes. ``compile_reader`` gives Numba-compiled code while
:attr:`ffcvx.pipeline.compiler.Compiler.is_enabled` is True and the same
function as plain Python after ``Compiler.set_enabled(False)``.

ffcvx strategies implement the smaller interface of
:class:`~ffcvx.memory_managers.base.MemoryManager` (``state``,
``schedule_epoch`` as any context manager, ``start_batch``, a jitted
``compile_reader``). :func:`adopt` wraps the ``schedule_epoch`` and
``compile_reader`` a subclass defines, so that every strategy, third-party
ones included, answers FFCV's protocol without code of its own; a strategy
that already returns a :class:`MemoryContext` (FFCV's style) is left as it is.
"""
import functools
import sys
import types
from abc import ABCMeta, abstractmethod
from contextlib import AbstractContextManager

__all__ = ['MemoryContext', 'EpochContext', 'adopt']

#: The module of :class:`~ffcvx.pipeline.compiler.Compiler`.
_COMPILER = __name__.rsplit('.', 2)[0] + '.pipeline.compiler'

#: Marks a method already wrapped by :func:`adopt` (a subclass inheriting it
#: without redefining it is not wrapped again).
_ADOPTED = '_ffcvx_protocol'


class MemoryContext(AbstractContextManager, metaclass=ABCMeta):
    """One epoch of a memory manager, as FFCV 1.0 defines it.

    Used as ``with context:``; inside, :attr:`state` is the second argument
    of the function ``compile_reader()`` returns, and :meth:`start_batch`
    is called before each batch, in order. Subclasses (FFCV-style
    strategies) implement ``state``, ``__enter__`` and ``__exit__``.
    """

    @property
    @abstractmethod
    def state(self):
        """The tuple of arrays handed to ``read(address, state)``."""

    @abstractmethod
    def __enter__(self):
        return super().__enter__()

    def start_batch(self, batch):
        """Called before batch number ``batch`` (0, 1, ... in order) is read."""

    @abstractmethod
    def __exit__(self, exc_type, exc_value, traceback):
        return super().__exit__(exc_type, exc_value, traceback)


class EpochContext(MemoryContext):
    """The :class:`MemoryContext` of an ffcvx strategy's epoch.

    Parameters
    ----------
    manager : ffcvx.memory_managers.MemoryManager
        Whose ``state`` and ``start_batch`` the context exposes.
    epoch : context manager or None
        What the strategy's own ``schedule_epoch`` returned (it plans the
        epoch and starts its readers on entry, stops them on exit); None for
        a strategy with nothing to prepare.

    Notes
    -----
    ``with context:`` gives the context itself, as FFCV's base does. Like
    the strategy's epoch, a context is entered once.
    """

    def __init__(self, manager, epoch=None):
        self.manager = manager
        self._epoch = epoch

    @property
    def state(self):
        """The strategy's ``state``: valid from ``__enter__`` to ``__exit__`` (and, for
        strategies that map the whole file, before and after)."""
        return self.manager.state

    def __enter__(self):
        if self._epoch is not None:
            self._epoch.__enter__()
        return self

    def start_batch(self, batch):
        """The strategy's ``start_batch``: waits until batch ``batch``'s pages are in memory."""
        self.manager.start_batch(batch)

    def __exit__(self, exc_type, exc_value, traceback):
        if self._epoch is not None:
            return self._epoch.__exit__(exc_type, exc_value, traceback)
        return None


def _context_of(schedule_epoch):
    @functools.wraps(schedule_epoch)
    def wrapped(self, batches):
        epoch = schedule_epoch(self, batches)
        return epoch if isinstance(epoch, MemoryContext) else EpochContext(self, epoch)
    setattr(wrapped, _ADOPTED, True)
    return wrapped


def _plain_when_disabled(compile_reader):
    @functools.wraps(compile_reader)
    def wrapped(self, *args, **kwargs):
        read = compile_reader(self, *args, **kwargs)
        # Not imported here: ffcvx.pipeline brings torch, and a strategy stays
        # light without it. Never imported means never disabled.
        compiler = sys.modules.get(_COMPILER)
        if compiler is not None and not compiler.Compiler.is_enabled and hasattr(read, 'py_func'):
            return read.py_func   # a Numba dispatcher's Python function (FFCV's Compiler.compile)
        return read
    setattr(wrapped, _ADOPTED, True)
    return wrapped


def adopt(cls):
    """Give ``cls`` FFCV's protocol on top of the ``schedule_epoch`` / ``compile_reader`` it defines.

    Called for every subclass of the strategy base (``__init_subclass__``).
    ``schedule_epoch`` then returns a :class:`MemoryContext` (the strategy's
    own, or an :class:`EpochContext` around the context manager it returned),
    and ``compile_reader`` returns the Python function of a Numba-compiled
    reader while ``Compiler.is_enabled`` is False.

    Parameters
    ----------
    cls : type
        The class being created; changed in place.
    """
    for name, wrap in (('schedule_epoch', _context_of), ('compile_reader', _plain_when_disabled)):
        method = cls.__dict__.get(name)
        if isinstance(method, types.FunctionType) and not getattr(method, _ADOPTED, False) \
                and not getattr(method, '__isabstractmethod__', False):
            setattr(cls, name, wrap(method))
