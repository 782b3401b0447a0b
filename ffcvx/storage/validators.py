"""What makes a remote answer trustworthy: its version and its range (REM-004, REM-013, REM-014).

A version of a remote file is named by its size and whichever validators the
server gives: the ETag, the object version id, and ``Last-Modified`` (an HTTP
date, second resolution). Many static servers and CDNs send only
``Last-Modified``; a few send nothing, and then a replacement of the same
size cannot be seen (REM-015).

A range answer is used only if it is exactly the range asked for: status
206 (or 200 where the whole file was asked for), ``Content-Range`` start,
end and total as requested, and a body of that length. Anything else is a
server or proxy bug, refused at once (:class:`RemoteRangeError`), not a
transient failure to retry.
"""
import datetime
import email.utils
import re

from ..errors import RemoteFileChangedError, RemoteRangeError

#: The validators of an identity besides its size, in the order messages name them.
VALIDATORS = ('etag', 'version', 'last_modified')
_CONTENT_RANGE = re.compile(r'^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$', re.I)


def http_date(value):
    """``value`` (a datetime, an HTTP date string, or None) as an HTTP date string, or None.

    One spelling per instant (``'Mon, 07 Dec 2026 09:56:55 GMT'``), so that
    identities from HEAD, GET and different clients compare equal; seconds
    are the resolution of the header. An unparsable string is kept as it is.
    """
    if value is None or value == '':
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)   # sftp's mtime
    if isinstance(value, str):
        try:
            value = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            try:
                value = datetime.datetime.fromisoformat(value.strip().replace('Z', '+00:00'))
            except ValueError:     # gcsfs's 'updated' is ISO 8601; anything else is kept
                return value.strip()
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        value = value.astimezone(datetime.timezone.utc).replace(microsecond=0)
        if value.timestamp() == 0:
            return None    # object_store's stand-in for a missing Last-Modified
        return email.utils.format_datetime(value, usegmt=True)
    return str(value)


def as_datetime(text):
    """The datetime of an HTTP date string (for clients that take one), or None."""
    try:
        return email.utils.parsedate_to_datetime(text) if text else None
    except (TypeError, ValueError):
        return None


def identity(size, etag=None, version=None, last_modified=None):
    """An identity dict: ``size`` (bytes) and the validators known (None where not)."""
    return {'size': int(size), 'etag': etag or None, 'version': version or None,
            'last_modified': http_date(last_modified)}


def _opaque(etag):
    """An ETag without its weakness mark: ``W/"x"`` and ``"x"`` name one version (weak comparison).

    Servers mark an ETag weak for reasons other than content (Apache for a
    file modified within the second, or a compressed answer), and may send
    the weak form on HEAD and the strong one on GET.
    """
    return etag[2:] if isinstance(etag, str) and etag.startswith('W/') else etag


def preconditions(expected):
    """``(if_match, if_unmodified_since)`` a GET of the version ``expected`` sends (REM-004).

    The ETag when it is strong; a weak one never matches ``If-Match``
    (RFC 9110 13.1.1 compares strongly), so then, as without an ETag, the
    ``Last-Modified`` date. Either may be None.
    """
    etag = expected.get('etag')
    if etag and not etag.startswith('W/'):
        return etag, None
    return None, expected.get('last_modified')


def has_validator(ident):
    """Whether anything besides the size tells versions apart."""
    return any(ident.get(key) for key in VALIDATORS)


def same_version(a, b):
    """Whether two identities name one version: equal size, and each validator both know equal."""
    if int(a['size']) != int(b['size']):
        return False
    if a.get('etag') and b.get('etag') and _opaque(a['etag']) != _opaque(b['etag']):
        return False
    return all(a.get(k) is None or b.get(k) is None or a[k] == b[k]
               for k in VALIDATORS if k != 'etag')


def describe(ident):
    """``'1024 bytes, etag "x", last_modified ...'`` for messages."""
    parts = [f"{ident['size']} bytes"]
    parts += [f"{k} {ident[k]}" for k in VALIDATORS if ident.get(k)]
    return ', '.join(parts)


def parse_content_range(text):
    """``(start, end, total)`` of a ``Content-Range`` value (end exclusive; total None for ``*``).

    Returns None if ``text`` is missing or malformed.
    """
    match = _CONTENT_RANGE.match(text or '')
    if not match:
        return None
    start, last, total = match.groups()
    return int(start), int(last) + 1, (None if total == '*' else int(total))


def check_answer(url, client, expected, start, end, length, status=None, answered_range=None,
                 found=None):
    """Refuse a range answer that is not exactly ``[start, end)`` of the expected version.

    Parameters
    ----------
    url : str
        Redacted URL, for messages.
    client : str
        The client's name (``'obstore'``, ``'fsspec'``), for messages.
    expected : dict
        Identity at open.
    start, end : int, bytes
        The range asked for, end exclusive.
    length : int, bytes
        Body length received.
    status : int or None
        HTTP status where the client tells it.
    answered_range : tuple or None
        ``(start, end, total)`` from ``Content-Range`` where the client tells
        it; ``False`` when a 206 came without a readable one.
    found : dict or None
        Validators the answer carried (``etag``, ``last_modified``).

    Raises
    ------
    RemoteRangeError
        If the status, the range or the body length differs from the request
        (REM-013).
    RemoteFileChangedError
        If the answer's total size or validators name another version (REM-004).
    """
    size = int(expected['size'])
    asked = f"bytes {start}-{end - 1}"

    def refuse(what):
        raise RemoteRangeError(
            f"{url}: asked for {asked} of {size} and the server answered {what} ({client}); "
            f"these bytes are not used (a proxy or server that mangles range requests?)",
            url=url, status=status, asked=(start, end), answered=what)

    if status is not None and status not in (200, 206):
        refuse(f"status {status}")
    if status == 200 and not (start == 0 and end == size):
        raise RemoteRangeError(
            f"{url}: the server ignores Range: asked for {asked} and it answered 200 with the "
            f"whole file ({client}); a remote .beton needs a server that answers range requests",
            url=url, status=status, asked=(start, end), answered='200, the whole file')
    if answered_range is False:
        refuse(f"{status} without a Content-Range")
    if answered_range is not None:
        got_start, got_end, total = answered_range
        if total is not None and total != size:
            raise RemoteFileChangedError(
                f"{url}: the server says the file has {total} bytes; it had {size} when it was "
                f"opened ({client}): bytes of two versions are never mixed",
                url=url, expected=expected, found={'size': total})
        if (got_start, got_end) != (start, end):
            refuse(f"bytes {got_start}-{got_end - 1}/{'*' if total is None else total}")
    if length != end - start:
        refuse(f"{length} bytes")
    if found:
        answer = {'size': size, **{k: found.get(k) for k in VALIDATORS}}
        answer['last_modified'] = http_date(answer['last_modified'])
        if not same_version(expected, answer):
            raise RemoteFileChangedError(
                f"{url}: a range answer came from another version ({describe(answer)}; opened "
                f"as {describe(expected)}): bytes of two versions are never mixed ({client})",
                url=url, expected=expected, found=answer)
