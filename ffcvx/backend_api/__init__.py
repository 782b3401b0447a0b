"""What a decoder backend is, and a base class for backends written in Python.

``spec/backends.md`` is the contract; this module holds the pieces of it that
code shares:

* the C prototype of ``decode_region`` (:data:`DECODE_REGION_PROTO`, BKD-010)
  and its status codes (BKD-013);
* the DCT-scale rule and coordinate mapping (:func:`choose_scale`,
  :func:`scaled_range`, BKD-017);
* format sniffing and the completeness checks every Python backend applies
  (:func:`sniff_format`, :func:`check_complete`, BKD-021, BKD-022);
* :class:`PythonDecoderBackend`, the adapter that turns a plain Python
  ``decode(data, crop, target) -> ndarray`` into a ``decode_region`` C
  function that compiled (Numba) code can call (backend kind ``python``,
  BKD-041), and an optional ``decode_gray`` into ``decode_region_gray``
  (BKD-025, BKD-026).

Only ctypes, numpy and ``ffcvx.errors`` are imported here, so a backend
package can import this module cheaply at entry-point load time (BKD-007).
"""
# the contract's shared pieces live in .contract, the Python adapter in .python_backend
from .contract import (BadRegionError, CALLABLE_KINDS, DECODE_BAD_ARGUMENT, DECODE_CAPACITY,
                       DECODE_CORRUPT, DECODE_OK, DECODE_REGION_PROTO, DEVICES, FORMATS,
                       GRAY_FUNCTION, KINDS, PNG_SIGNATURE, STATUS_MEANINGS, check_complete,
                       choose_scale, scaled_range, sniff_format, to_gray8, to_rgb8)
from .python_backend import PythonDecoderBackend

__all__ = [
    'DECODE_REGION_PROTO', 'DECODE_OK', 'DECODE_CORRUPT', 'DECODE_CAPACITY', 'DECODE_BAD_ARGUMENT',
    'STATUS_MEANINGS', 'FORMATS', 'DEVICES', 'KINDS', 'CALLABLE_KINDS', 'PNG_SIGNATURE',
    'BadRegionError', 'choose_scale', 'scaled_range', 'sniff_format', 'check_complete',
    'to_rgb8', 'to_gray8', 'PythonDecoderBackend', 'GRAY_FUNCTION',
]
