"""Calling a decoder backend from a check: ctypes caller, outcomes, the check context.

A check is a function of a :class:`Context` that returns a summary of what it
covered, or raises :class:`CheckSkipped` (it does not apply: a capability not
declared, the backend unavailable) or :class:`CheckFailed` (the backend broke a
BKD clause; the message says how).
"""
import numpy as np

from ...backend_api import (CALLABLE_KINDS, DECODE_CAPACITY, DECODE_OK, DECODE_REGION_PROTO,
                            GRAY_FUNCTION)

__all__ = ['CheckFailed', 'CheckSkipped', 'Caller', 'Context', 'decode_c', 'max_mean_diff',
           'needs_callable', 'require', 'samples_of']


class CheckSkipped(Exception):
    """Raised inside a check: the check does not apply (message: the reason)."""


class CheckFailed(AssertionError):
    """Raised inside a check: the backend broke the contract (message: how)."""


def require(condition, message):
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


class Caller:
    """Calls a backend's C ``decode_region`` (or ``decode_region_gray``) through ctypes (BKD-010)."""

    def __init__(self, backend, function='decode_region'):
        self.function = DECODE_REGION_PROTO(backend.function_address(function))
        #: bytes per output pixel (BKD-012, BKD-026)
        self.channels = 1 if function == GRAY_FUNCTION else 3

    def __call__(self, data, crop, target=(0, 0), capacity=None, null_out=False):
        """``(status, out_hw, out)``: one call with a fresh output buffer of ``capacity`` bytes."""
        src = np.frombuffer(data, dtype=np.uint8)
        if capacity is None:
            capacity = max(crop[2] * crop[3] * self.channels, 1)
        # 64 guard bytes past the capacity catch writes beyond out_capacity (BKD-006).
        out = np.full(capacity + 64, 0xA5, dtype=np.uint8)
        hw = np.full(2, -7, dtype=np.int64)
        status = self.function(src.ctypes.data if src.size else None, src.size,
                               *crop, *target, None if null_out else out.ctypes.data, capacity,
                               hw.ctypes.data)
        return status, hw, out


def decode_c(caller, data, crop, target=(0, 0)):
    """Pixels from ``decode_region``, growing the buffer once on status -2 (BKD-014).

    ``(h, w, 3)``, or ``(h, w)`` when ``caller`` calls ``decode_region_gray``.
    """
    c = caller.channels
    status, hw, out = caller(data, crop, target)
    if status == DECODE_CAPACITY:
        status, hw, out = caller(data, crop, target, capacity=int(hw[0] * hw[1] * c))
    require(status == DECODE_OK, f"decode_region{'_gray' if c == 1 else ''} returned {status} "
                                  f"for crop {crop}, target {target}")
    require(np.all(out[out.size - 64:] == 0xA5), "decode_region wrote past out_capacity")
    h, w = int(hw[0]), int(hw[1])
    return out[:h * w * c].reshape((h, w) if c == 1 else (h, w, 3)).copy()


def samples_of(vectors, backend, formats=('jpeg', 'png')):
    """Vector samples of the declared image formats."""
    return [s for fmt in formats if fmt in backend.formats for s in vectors.samples[fmt]]


def max_mean_diff(a, b):
    """``(max, mean)`` absolute difference of two uint8 arrays of one shape."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(d.max()), float(d.mean())


def needs_callable(ctx):
    """Skip unless the backend has ``decode_region`` (a callable kind) and is available."""
    if ctx.backend.kind not in CALLABLE_KINDS:
        raise CheckSkipped(f"kind is {ctx.backend.kind!r}: no decode_region (BKD-042)")
    ctx.require_available()


class Context:
    """What every check reads: the backend, its registered name and the inputs.

    Parameters
    ----------
    backend : object
        The backend object (what the entry point loads).
    name : str or None
        Its registered name; None when the backend was given as an object
        only (the corrupt-data checks then run in this process).
    golden_dir : pathlib.Path or None
        FFCV 1.0.2 golden files; None skips the golden check.
    vectors : Vectors
        The spec vectors.
    isolate : bool
        Run the corrupt-data decodes in a child process (needs ``name``).
    """

    def __init__(self, backend, name, golden_dir, vectors, isolate):
        self.backend = backend
        self.name = name
        self.golden_dir = golden_dir
        self.vectors = vectors
        self.isolate = isolate
        try:
            self.availability = backend.available()
        except BaseException as exc:  # noqa: B036 -- BKD-005 says it must not raise; report it
            self.availability = (False, f"available() raised {type(exc).__name__}: {exc}")

    def require_available(self):
        """Skip the running check when ``available()`` said no (or did not answer a tuple)."""
        ok, why = self.availability if isinstance(self.availability, tuple) else (False, '')
        if not ok:
            raise CheckSkipped(f"unavailable: {why}")
