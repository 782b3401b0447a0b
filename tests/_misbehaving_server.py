"""An HTTP file server on loopback that breaks the rules on request (issue 20, REM-013..REM-015).

nginx answers range requests correctly; the point of this one is to answer
them wrongly, the ways proxies, CDNs and small static servers do, so that the
tests can show every such answer is refused or refetched and never used:

``shift``        206 with a ``Content-Range`` (and the bytes) starting 4 KiB later
``whole``        200 with the whole file: the server ignores ``Range``
``short``        206 whose body (and ``Content-Length``) is 100 bytes short
``long``         206 whose body (and ``Content-Length``) is 100 bytes long
``total``        206 with the right bytes but another total size in ``Content-Range``

Validators are switchable too: ``etag=False`` sends no ETag (only
``Last-Modified``, as ``python -m http.server`` does), ``last_modified=False``
no ``Last-Modified``; with both off nothing says which version is served.
``preconditions=False`` ignores ``If-Match`` / ``If-Unmodified-Since``;
``weak_etag='always'`` marks every ETag weak (``W/"..."``), ``'head'`` only
those of HEAD answers.

The server runs in a thread of the test process (``ThreadingHTTPServer``):
the clients under test do their I/O off the GIL or on their own event loop.
"""
import email.utils
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r'^bytes=(\d+)-(\d*)$')
#: How far a ``shift`` answer moves the range, and how much ``short``/``long`` change it.
SHIFT = 4096
DELTA = 100


class MisbehavingServer:
    """Serve the files of ``root`` over HTTP/1.1, wrongly where told.

    Parameters
    ----------
    root : pathlib.Path
        Folder whose files are served by name.

    Attributes
    ----------
    mode : str or None
        One of the module docstring's answers, or None to answer correctly;
        applies to every ranged GET from then on.
    etag, last_modified, preconditions : bool
        Whether to send each validator and to honour conditional requests.
    log : list of dict
        Every request: method, path, range, if_match, if_unmodified_since, status.
    """

    def __init__(self, root):
        self.root = Path(root)
        self.mode = None
        self.etag = True
        self.last_modified = True
        self.preconditions = True
        self.weak_etag = None
        self.log = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):   # the test's log, not stderr
                pass

            def do_HEAD(self):
                server._answer(self, head=True)

            def do_GET(self):
                server._answer(self, head=False)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass    # clients hang up on answers they refuse: not the test's concern

        self._httpd = Server(('127.0.0.1', 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name='misbehaving-http')
        self._thread.start()

    @property
    def port(self):
        return self._httpd.server_address[1]

    def url_for(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    def ranged_gets(self):
        """The logged GETs that asked for a range."""
        with self._lock:
            return [entry for entry in self.log if entry['method'] == 'GET' and entry['range']]

    # -- answers ------------------------------------------------------------------------

    def _validators(self, stat, head=False):
        headers = {}
        if self.etag:
            headers['ETag'] = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
            # 'always': a weak ETag on every answer; 'head': on HEAD only (the
            # strong one on GET), as Apache does for a file changed within the second.
            if self.weak_etag == 'always' or (self.weak_etag == 'head' and head):
                headers['ETag'] = 'W/' + headers['ETag']
        if self.last_modified:
            headers['Last-Modified'] = email.utils.formatdate(stat.st_mtime, usegmt=True)
        return headers

    def _failed_precondition(self, request, stat, validators):
        if not self.preconditions:
            return False
        if_match = request.headers.get('If-Match')
        etag = validators.get('ETag')
        # RFC 9110 13.1.1: If-Match compares strongly, so a weak ETag never matches.
        if if_match is not None and (if_match != etag or etag.startswith('W/')):
            return True
        since = request.headers.get('If-Unmodified-Since')
        if since is not None:
            try:
                limit = email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False          # an unparsable date is ignored (RFC 9110 13.1.4)
            return int(stat.st_mtime) > limit
        return False

    def _answer(self, request, head):
        path = self.root / request.path.lstrip('/').split('?', 1)[0]
        entry = {'method': request.command, 'path': request.path,
                 'range': request.headers.get('Range', ''),
                 'if_match': request.headers.get('If-Match', ''),
                 'if_unmodified_since': request.headers.get('If-Unmodified-Since', '')}
        try:
            data = path.read_bytes()
            stat = os.stat(path)
        except OSError:
            return self._send(request, entry, 404, {}, b'', head)
        validators = self._validators(stat, head=head)
        if self._failed_precondition(request, stat, validators):
            return self._send(request, entry, 412, {}, b'', head)
        size = len(data)
        match = _RANGE.match(entry['range'])
        if head or not match:
            headers = {**validators, 'Accept-Ranges': 'bytes', 'Content-Length': str(size)}
            return self._send(request, entry, 200, headers, data, head)
        start = int(match.group(1))
        last = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        status, total, body_start, body_end = 206, size, start, last + 1
        mode = self.mode
        if mode == 'whole':
            status, body_start, body_end = 200, 0, size
        elif mode == 'shift':
            body_start, body_end = start + SHIFT, min(last + 1 + SHIFT, size)
        elif mode == 'total':
            total = size + SHIFT
        body = data[body_start:body_end]
        if mode == 'short':
            body = body[:-DELTA]
        elif mode == 'long':
            body = body + b'\0' * DELTA
        headers = dict(validators)
        if status == 206:
            # 'short' and 'long' claim the range asked for and send another length
            claimed_end = body_end if mode not in ('short', 'long') else last + 1
            headers['Content-Range'] = f"bytes {body_start}-{claimed_end - 1}/{total}"
        headers['Content-Length'] = str(len(body))
        self._send(request, entry, status, headers, body, head)

    def _send(self, request, entry, status, headers, body, head):
        entry['status'] = status
        with self._lock:
            self.log.append(entry)
        request.send_response(status)
        if 'Content-Length' not in headers:
            headers['Content-Length'] = str(len(body))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        if not head and body:
            request.wfile.write(body)
