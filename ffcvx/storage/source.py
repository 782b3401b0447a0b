"""Random access to one file's bytes, local or remote (spec/remote.md, REM-001 to REM-012).

A :class:`Source` answers three questions: how large the file is, which
version of it this is, and what bytes lie in a range. The Reader reads the
file's tables through one, and the remote memory strategy its pages.

:class:`LocalSource` reads a path with ``pread``. :class:`RemoteSource` is
the part every remote client shares (the clients are in
:mod:`.obstore_source` and :mod:`.fsspec_source`): retries with backoff for
transient failures, one error type per outcome, and the check that every
read comes from the version seen when the file was opened.
"""
import os
import random
from abc import ABC, abstractmethod
import re
import threading
import time
import warnings

from ..errors import RemoteFileChangedError, RemoteRangeError, RemoteUnavailableError
from .validators import check_answer, describe, has_validator, identity, same_version

#: Seconds one request may take (connect, or wait for bytes) by default.
DEFAULT_TIMEOUT = 30.0
#: Retries of a transient failure by default (so at most 5 requests).
DEFAULT_RETRIES = 4
#: First backoff, seconds; it doubles per retry (with jitter) up to MAX_BACKOFF.
BASE_BACKOFF = 0.1
MAX_BACKOFF = 5.0
#: HTTP statuses worth retrying: request timeout, too many requests, server errors.
_RETRY_STATUSES = frozenset({408, 429})
_STATUS_IN_TEXT = re.compile(r'(?:status code|status)[^0-9]{0,4}([1-5][0-9][0-9])\b', re.I)


def redact(url):
    """``url`` without its query string and user info (which may hold credentials)."""
    scheme, sep, rest = url.partition('://')
    if not sep:
        return url
    host, slash, path = rest.partition('/')
    host = host.rsplit('@', 1)[-1]
    return f"{scheme}://{host}{slash}{path.split('?', 1)[0]}"


class Source(ABC):
    """Bytes of one file, read by offset.

    Attributes
    ----------
    location : str
        The path or URL, as given.
    remote : bool
        Whether reads go over the network.
    """

    remote = False

    def __init__(self, location):
        self.location = location

    @abstractmethod
    def stat(self):
        """Size of the file now, bytes (a remote source answers from its open-time HEAD)."""

    @abstractmethod
    def read_into(self, offset, view):
        """Fill ``view`` (writable, ``n`` bytes) from ``offset``; return the bytes read.

        Fewer than ``n`` only where the file ends first.
        """

    def read(self, offset, size):
        """``size`` bytes from ``offset`` as bytes (fewer where the file ends first)."""
        buffer = bytearray(size)
        got = self.read_into(offset, memoryview(buffer))
        return bytes(buffer[:got])

    def identity(self):
        """``{'size', 'etag', 'version', 'last_modified'}`` of the version being read."""
        return identity(self.stat())

    #: Whether a replacement of the file could go unseen (a remote file without validators).
    unversioned = False

    def close(self):
        """Release connections; reading afterwards is an error."""


class LocalSource(Source):
    """A local file, opened for every call (the Reader's tables are read once).

    Parameters
    ----------
    path : str or os.PathLike
    keep_open : bool
        Open the file once, now, and read that descriptor until :meth:`close`
        (a page source reads the file many times; it stays the file opened
        even if the path is replaced).

    Raises
    ------
    OSError
        If ``keep_open`` and the file cannot be opened.
    """

    def __init__(self, path, keep_open=False):
        super().__init__(os.fspath(path))
        self._fd = os.open(self.location, os.O_RDONLY) if keep_open else None

    def stat(self):
        return os.stat(self.location).st_size

    def read_into(self, offset, view):
        view = memoryview(view).cast('B')
        if self._fd is not None:
            return _pread_into(self._fd, offset, view)
        fd = os.open(self.location, os.O_RDONLY)
        try:
            return _pread_into(fd, offset, view)
        finally:
            os.close(fd)

    def close(self):
        """Close a descriptor held since construction (``keep_open``); idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _pread_into(fd, offset, view):
    """Fill ``view`` from ``offset`` of ``fd``; the bytes read (fewer only at the end of the file)."""
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)
        if n == 0:
            break
        got += n
    return got


class RemoteSource(Source):
    """What every remote client shares: the policy, the version check, the errors.

    Subclasses implement ``_head() -> dict`` (an identity:
    :func:`.validators.identity`) and ``_get(start, end) -> (bytes-like,
    answer)`` (one request for ``[start, end)``, asking for the open-time
    version where the protocol allows, REM-004; ``answer`` holds what the
    client can tell of the response: ``status``, ``range``, ``found``, as
    :func:`.validators.check_answer` takes them), and say how they fail
    through ``_classify(exc)``.

    Parameters
    ----------
    url : str
    storage_options : dict or None
        Options of the URL's filesystem (fsspec's keys).
    timeout : float or None, seconds
        Per request; :data:`DEFAULT_TIMEOUT` when None.
    retries : int or None
        Retries of a transient failure (REM-006); :data:`DEFAULT_RETRIES` when None.
    expect : dict or None
        The version to read (``identity()`` of another source of this file);
        None: the one the first HEAD finds.
    immutable : bool
        The user's word that the file is never replaced: with a server that
        sends no validator (no ETag, version or Last-Modified), no warning,
        and the disk cache may keep its pages (REM-015).

    Attributes
    ----------
    unversioned : bool
        True when the server sends no validator and ``immutable`` is False:
        a replacement of the same size cannot be detected (warned once).

    Raises
    ------
    RemoteUnavailableError
        If the HEAD fails after the retries; 404 and 403 at once.
    RemoteFileChangedError
        If ``expect`` is given and the file now differs.
    ValueError
        If ``timeout`` is not positive or ``retries`` negative.
    """

    remote = True
    #: Name of the client, for messages and ``client=`` of :func:`ffcvx.storage.reopen_source`.
    client = None

    def __init__(self, url, storage_options=None, timeout=None, retries=None, expect=None,
                 immutable=False):
        super().__init__(url)
        self.immutable = bool(immutable)
        self.storage_options = dict(storage_options or {})
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        self.retries = DEFAULT_RETRIES if retries is None else int(retries)
        if not self.timeout > 0:
            raise ValueError(f"{redact(url)}: timeout must be a positive number of seconds, "
                             f"got {timeout!r}")
        if self.retries < 0:
            raise ValueError(f"{redact(url)}: retries must be 0 or more, got {retries!r}")
        self._expected = dict(expect) if expect else None
        self._lock = threading.Lock()
        #: Requests made and bytes received, for tests and tuning.
        self.requests = 0
        self.bytes_received = 0

    # -- the client's part ----------------------------------------------------------------

    @abstractmethod
    def _head(self):
        """One HEAD: the identity of the file now (:func:`.validators.identity`)."""

    @abstractmethod
    def _get(self, start, end):
        """One GET of bytes ``[start, end)`` of the pinned version: ``(bytes-like, answer dict)``."""

    def _classify(self, exc):
        """``(kind, status)``: 'changed', 'missing', 'denied', 'range', 'transient', 'fatal' or 'bug'."""
        return classify(exc)

    # -- shared ---------------------------------------------------------------------------

    def _open(self):
        """The first HEAD: the version this source reads from now on."""
        found = self._retrying('HEAD', self._head)
        if self._expected is None:
            self._expected = found
            if not has_validator(found) and not self.immutable:
                warnings.warn(
                    f"{redact(self.location)}: the server sends no ETag, version or "
                    f"Last-Modified, so a replacement of this file by one of the same size "
                    f"cannot be detected, and no disk cache (cache_dir) keeps its pages; if the "
                    f"file never changes, say so with cache_options={{'immutable': True}} "
                    f"(REM-015)", RuntimeWarning, stacklevel=4)
        elif not same_version(self._expected, found):
            raise self._changed(found)

    @property
    def unversioned(self):
        return not has_validator(self._expected) and not self.immutable

    def stat(self):
        return int(self._expected['size'])

    def identity(self):
        return dict(self._expected)

    def check_version(self):
        """HEAD the file again; RemoteFileChangedError if it is another version now."""
        found = self._retrying('HEAD', self._head)
        if not same_version(self._expected, found):
            raise self._changed(found)

    def read_into(self, offset, view):
        view = memoryview(view).cast('B')
        size = self.stat()
        end = min(offset + len(view), size)
        if end <= offset:
            return 0
        data, answer = self._retrying(f'GET bytes {offset}-{end - 1}', self._get, offset, end)
        data = memoryview(data).cast('B')
        # Exactly the range asked for, of the version opened, or nothing (REM-013, REM-004).
        check_answer(redact(self.location), self.client, self._expected, offset, end, len(data),
                     **answer)
        view[:len(data)] = data
        with self._lock:
            self.bytes_received += len(data)
        return len(data)

    def _changed(self, found):
        return RemoteFileChangedError(
            f"{redact(self.location)} changed after it was opened (was {describe(self._expected)}"
            f", now {describe(found) if found else 'another version'}); bytes of two versions "
            f"are never mixed: open it again (a new Loader) to read the new version",
            url=redact(self.location), expected=self._expected, found=found)

    def _retrying(self, what, call, *args):
        """``call(*args)`` with retries of transient failures (REM-006, REM-007)."""
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self.requests += 1
            try:
                return call(*args)
            except Exception as exc:  # sorted by _classify; re-raised as ffcvx errors
                kind, status = self._classify(exc)
                if kind == 'bug':
                    raise
                url = redact(self.location)
                where = f"{url}: {what} ({self.client}"
                if kind == 'changed':
                    raise self._changed(None) from exc
                if kind == 'range':
                    why = ("the server ignores Range (it answers 200 with the whole file); a "
                           "remote .beton needs a server that answers range requests"
                           if status == 200 else "the server answered another range than the "
                           "one asked for; these bytes are not used")
                    raise RemoteRangeError(f"{where}): {why}: {first_line(exc)}", url=url,
                                           status=status, answered=first_line(exc)) from exc
                if kind == 'missing':
                    raise FileNotFoundError(f"{where}): no such file (HTTP {status or 404})") \
                        from exc
                if kind == 'transient' and attempt <= self.retries:
                    delay = min(MAX_BACKOFF, BASE_BACKOFF * 2 ** (attempt - 1))
                    time.sleep(delay * (0.5 + random.random() / 2))
                    continue
                status_text = f"HTTP {status}" if status else "no answer"
                tries = f"after {attempt} attempts" if attempt > 1 else "on the first attempt"
                hint = {'denied': " (check the credentials in storage_options)",
                        'transient': f" (timeout {self.timeout:g} s per request, {self.retries} "
                                     f"retries; cache_options 'timeout' and 'retries' change them)"
                        }.get(kind, '')
                raise RemoteUnavailableError(
                    f"{where}) failed {tries}: {status_text}: {first_line(exc)}{hint}",
                    url=url, status=status, attempts=attempt) from exc




def first_line(exc):
    if isinstance(exc, FileNotFoundError) and exc.__cause__ is not None:
        exc = exc.__cause__   # fsspec's HTTP info() wraps every failure in FileNotFoundError
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def status_of(exc):
    """The HTTP status an exception reports, from its attributes or its text, else None."""
    for attribute in ('status', 'status_code', 'code'):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, 'response', None)
    if isinstance(response, dict):  # botocore's ClientError
        value = response.get('ResponseMetadata', {}).get('HTTPStatusCode')
        if isinstance(value, int):
            return value
    match = _STATUS_IN_TEXT.search(str(exc))
    return int(match.group(1)) if match else None


def classify(exc):
    """``(kind, status)`` of a failed request, for :meth:`RemoteSource._retrying`.

    412 is a changed file (the If-Match of REM-004); 404 and
    FileNotFoundError a missing one; 401 and 403 refused credentials; 408,
    429 and 5xx, and failures with no status (refused, reset, timed out)
    transient; other statuses fatal; an exception that is neither an answer
    nor OSError ('bug') is not the server's doing.
    """
    if isinstance(exc, (RemoteUnavailableError, RemoteFileChangedError)):
        return 'bug', None     # already decided by a nested request: raised as it is
    status = status_of(exc)
    if status == 412:
        return 'changed', status
    if status == 404 or (status is None and isinstance(exc, FileNotFoundError)):
        return 'missing', status
    if status in (401, 403) or (status is None and isinstance(exc, PermissionError)):
        return 'denied', status
    if status is None:
        # No answer: refused, reset or timed out. Anything else without a
        # status is not the network's fault and is raised as it is.
        return ('transient' if isinstance(exc, (OSError, TimeoutError)) else 'bug'), None
    if status in _RETRY_STATUSES or status >= 500:
        return 'transient', status
    return 'fatal', status
