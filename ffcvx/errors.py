"""Exceptions raised by ffcvx.

Every error a user can cause (a corrupt file, a wrong field type, a missing
backend, a failing decode) is one of these, with a message that says what was
wrong and, where possible, how to fix it.
"""


class FFCVXError(Exception):
    """Base class of every ffcvx-specific error."""


class BetonFormatError(FFCVXError, ValueError):
    """A ``.beton`` file violates the format specification (``spec/beton.md``).

    Parameters
    ----------
    message : str
        What is wrong.
    offset : int or None
        Byte offset in the file where the problem was found, if known.
    clause : str or None
        The spec clause that is violated, e.g. ``"FMT-012"``.
    """

    def __init__(self, message, offset=None, clause=None):
        self.offset = offset
        self.clause = clause
        parts = [message]
        if offset is not None:
            parts.append(f"at byte offset {offset}")
        if clause is not None:
            parts.append(f"[{clause}]")
        super().__init__(" ".join(parts))


class DecodeError(FFCVXError, RuntimeError):
    """A sample's stored bytes could not be decoded (e.g. a corrupt JPEG)."""


class BackendNotFoundError(FFCVXError, ImportError):
    """A decoder or cache backend was requested that is not installed or not usable."""


class WriterError(FFCVXError, RuntimeError):
    """Writing a dataset failed; the partial output was removed."""


class CacheUnavailableError(FFCVXError, ConnectionError):
    """A shared cache server (e.g. Redis) cannot serve the file's bytes.

    Raised when the server cannot be reached, stops answering within the
    timeout, or holds a page that is missing or has the wrong length. The
    message names the server's URL (without its password). Pass
    ``cache_options={'fallback': 'os'}`` to read the local file instead.
    """


class PipelineError(FFCVXError, ValueError):
    """An Operation's declarations or output do not fit the pipeline.

    The message names the pipeline, the step and the Operation, and what it
    declared (its State and AllocationQuery) against what it produced.
    """
