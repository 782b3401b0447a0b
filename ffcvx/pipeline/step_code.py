"""What ``Operation.generate_code`` returns, as one declared type (spec/pipeline.md PIP-003).

FFCV's Operations return a plain function and say how to call it with
attributes on it (``is_parallel``; ffcvx adds ``with_indices`` and
``with_seed``). The pipeline reads those attributes once, at planning time,
into a :class:`StepCode`, and never probes the function again. An Operation
may also return a ``StepCode`` itself.
"""
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from ..errors import PipelineError
from .allocation_query import allocate_all
from .seeds import EpochSeeds, seed_streams


@dataclass(frozen=True)
class StepCode:
    """A step's code and how the pipeline calls it (PIP-003 to PIP-005).

    Parameters
    ----------
    function : callable
        The code: compiled with Numba when the step's output State is in
        ``jit_mode``, called as it is otherwise.
    with_indices : bool
        A transform's code also takes ``batch_indices`` (PIP-005).
    with_seed : bool
        The code takes a ``seed`` (a ``uint64``, or a tuple of them) after
        its other arguments (PIP-008); a transform's also takes
        ``batch_indices``.
    is_parallel : bool
        Compile with ``parallel=True`` (loops over ``Compiler.get_iterator()``
        spread over the Loader's threads).
    decoder : Operation or None
        Set by a decoder whose code takes a ``shared`` buffer, so that the
        code can also be called as FFCV calls a decoder's code, with four
        arguments (:meth:`__call__`, PIP-013).
    """

    function: Callable
    with_indices: bool = False
    with_seed: bool = False
    is_parallel: bool = False
    decoder: Any = None

    @classmethod
    def of(cls, code, where='this step'):
        """``code`` as a StepCode: itself, or a plain function's attributes read now.

        Raises
        ------
        PipelineError
            When ``code`` is neither a StepCode nor callable (PIP-003).
        """
        if isinstance(code, StepCode):
            return code
        if not callable(code):
            raise PipelineError(f"{where}.generate_code returned {code!r}; expected a function "
                                f"or a ffcvx.pipeline.StepCode (spec/pipeline.md PIP-003)")
        return cls(code, bool(getattr(code, 'with_indices', False)),
                   bool(getattr(code, 'with_seed', False)), bool(getattr(code, 'is_parallel', False)))

    def with_function(self, function):
        """The same declarations around another function (e.g. the compiled one)."""
        return replace(self, function=function)

    def __call__(self, *args):
        """Run the code; a decoder's code may be called FFCV's way, with four arguments (PIP-013).

        ``code(batch_indices, destination, metadata, storage_state)`` on a
        decoder's code runs it with a shared buffer allocated for the call
        and, for seeded code, the seed of step 0 of an output named
        ``'plain'`` under Loader seed 0 and epoch 0; its result is what
        ``finish_batch`` makes of it: the decoded batch (``destination``),
        or the ``DecodeError`` of the first failing sample. Any other
        number of arguments is passed on unchanged.
        """
        if self.decoder is None or len(args) != 4:
            return self.function(*args)
        op = self.decoder
        batch_indices, destination, _, storage_state = args
        seed = (EpochSeeds().for_step(seed_streams(op, 'plain', 0)),) if self.with_seed else ()
        shared = allocate_all(op.declare_shared_memory(None), ())
        tail = seed + (() if shared is None else (shared,))
        result = self.function(*args, *tail)
        return op.finish_batch(result, destination, np.asarray(batch_indices), storage_state)
