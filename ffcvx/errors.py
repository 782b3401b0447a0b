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


class MergeError(FFCVXError, ValueError):
    """Part files cannot be merged into one ``.beton`` (``ffcvx.merge``, FMT-092).

    Raised when the parts differ in fields, field arguments or page size
    (the message names the first difference and the part), when a part is
    not a valid ``.beton`` file, or when a field cannot say where its data
    pointers are (a custom field without ``Field.relocate``). Nothing is
    written at the target then.
    """


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


class RemoteUnavailableError(CacheUnavailableError):
    """A remote file (object storage, HTTP) cannot be read, after the retries.

    Raised when the server cannot be reached, answers with an error status
    (after retrying 408, 429 and 5xx with backoff), does not answer within
    the timeout, or answers with other bytes than asked for
    (:class:`RemoteRangeError`). ``spec/failures.md``
    lists where it is raised.

    Attributes
    ----------
    url : str
        The file's URL.
    status : int or None
        The last HTTP status, None when no answer came (refused, reset, timeout).
    attempts : int
        Requests made before giving up.
    """

    def __init__(self, message, url=None, status=None, attempts=1):
        self.url = url
        self.status = status
        self.attempts = attempts
        super().__init__(message)


class RemoteFileChangedError(FFCVXError, RuntimeError):
    """A remote file was replaced after it was opened (its size, ETag, version or Last-Modified differs).

    Bytes of two versions are never mixed: a read asks the server for the
    version seen at open (``If-Match``) or checks it after the read. Open the
    file again (a new Loader) to read the new version.

    Attributes
    ----------
    url : str
    expected, found : dict
        ``{'size', 'etag', 'version', 'last_modified'}`` at open and now (``found`` is None
        when only a precondition failure was reported).
    """

    def __init__(self, message, url=None, expected=None, found=None):
        self.url = url
        self.expected = expected
        self.found = found
        super().__init__(message)


class RemoteRangeError(RemoteUnavailableError):
    """A server answered a range request with other bytes than those asked for (REM-013).

    Raised, never retried, when the answer's status, ``Content-Range``
    (start, end or total) or body length does not match the request: a
    proxy or server bug that would otherwise hand another part of the file
    to training. A server that ignores ``Range`` (200 with the whole file)
    is named as such.

    Attributes
    ----------
    asked : tuple of int
        ``(start, end)`` of the request, bytes, end exclusive.
    answered : str
        What came back (``Content-Range``, status and body length).
    """

    def __init__(self, message, url=None, status=None, asked=None, answered=None):
        self.asked = asked
        self.answered = answered
        super().__init__(message, url=url, status=status, attempts=1)
