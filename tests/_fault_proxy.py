"""An HTTP/1.1 reverse proxy on loopback that injects faults, for the remote-file tests.

It forwards every request to an upstream server (nginx, moto) and can, on
demand, answer with an error status, reset the connection, stall, add a
per-request latency or cap the bandwidth. It counts what it sends.
"""
import http.client
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _redis_server import free_port

_HOP_HEADERS = {'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'host',
                'trailer', 'upgrade'}
_CHUNK = 64 << 10


class FaultProxy:
    """Forwards to ``upstream`` (``http://host:port/``) with injectable faults.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>/``.
    latency_s : float
        Seconds slept before forwarding each request.
    bandwidth : float or None
        Body bytes per second per connection, None for no cap.
    requests : list of dict
        method, path, status, body_bytes (of the answer), request_bytes (the
        request body the client sent), copy_source (its ``x-amz-copy-source``
        header or ''), range, injected (None, 'status', 'reset', 'hang').
    """

    def __init__(self, upstream):
        parts = urllib.parse.urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port or 80)
        self.latency_s = 0.0
        self.bandwidth = None
        self.requests = []
        self._faults = []          # [kind, count, methods, argument]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    base_url = url

    # -- faults -------------------------------------------------------------------------

    def fail_next(self, count, status=503, methods=('GET',), header=None, skip=0):
        """Answer the next ``count`` requests of ``methods`` with ``status``, not forwarding them.

        ``header``: only requests carrying this header count (``'x-amz-copy-source'``:
        S3's UploadPartCopy); ``skip``: so many of them are forwarded first.
        """
        with self._lock:
            self._faults.append(['status', count, tuple(methods), status, header, skip])

    def reset_next(self, count, methods=('GET',), header=None, skip=0):
        """Close the connection of the next ``count`` requests without an answer.

        ``header`` and ``skip`` as for :meth:`fail_next`.
        """
        with self._lock:
            self._faults.append(['reset', count, tuple(methods), None, header, skip])

    def hang_next(self, count, seconds, methods=('GET',)):
        """Wait ``seconds`` (or until stop()) before forwarding the next ``count`` requests."""
        with self._lock:
            self._faults.append(['hang', count, tuple(methods), seconds, None, 0])

    def _take_fault(self, method, headers):
        with self._lock:
            for fault in self._faults:
                if method in fault[2] and fault[1] > 0 and (fault[4] is None or fault[4] in headers):
                    if fault[5]:
                        fault[5] -= 1
                        continue
                    fault[1] -= 1
                    return fault[0], fault[3]
        return None, None

    def _record(self, **entry):
        with self._lock:
            self.requests.append(entry)

    def bytes_sent(self):
        """Body bytes of the answers that came from the upstream."""
        with self._lock:
            return sum(r['body_bytes'] for r in self.requests if r['injected'] in (None, 'hang'))

    def bytes_received(self):
        """Request body bytes the clients sent (uploads), whatever the answer."""
        with self._lock:
            return sum(r['request_bytes'] for r in self.requests)

    def clear(self):
        with self._lock:
            self.requests = []

    # -- life -----------------------------------------------------------------------------

    def start(self):
        proxy = self

        class Handler(_Handler):
            owner = proxy

        for _ in range(3):
            self.port = free_port()
            try:
                self._server = ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
                break
            except OSError:
                continue
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name='fault-proxy')
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    owner = None
    upstream_connection = None

    def log_message(self, *args):
        pass  # quiet

    def _upstream(self):
        if self.upstream_connection is None:
            host, port = self.owner.upstream
            self.upstream_connection = http.client.HTTPConnection(host, port, timeout=60)
        return self.upstream_connection

    def _handle(self):
        owner = self.owner
        method = self.command
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else None
        entry = dict(method=method, path=self.path, range=self.headers.get('Range', ''),
                     injected=None, status=None, body_bytes=0, request_bytes=length,
                     copy_source=self.headers.get('x-amz-copy-source', ''))
        kind, argument = owner._take_fault(method, self.headers)
        if kind == 'reset':
            entry['injected'] = 'reset'
            owner._record(**entry)
            # SO_LINGER 0: the close sends RST, as a crashed peer does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b'\x01\x00\x00\x00\x00\x00\x00\x00')
            self.close_connection = True
            self.connection.close()
            return
        if kind == 'status':
            entry.update(injected='status', status=argument)
            owner._record(**entry)
            payload = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable'
                       b'</Code><Message>injected</Message></Error>')
            self.send_response(argument)
            self.send_header('Content-Type', 'application/xml')
            self.send_header('Content-Length', str(len(payload)))
            self.end_headers()
            if method != 'HEAD':
                self.wfile.write(payload)
            return
        if kind == 'hang':
            entry['injected'] = 'hang'
            if owner._stopping.wait(argument):
                self.close_connection = True
                return
        if owner.latency_s:
            time.sleep(owner.latency_s)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        headers['Host'] = '%s:%d' % owner.upstream
        for attempt in range(2):  # the upstream may have closed an idle connection
            try:
                connection = self._upstream()
                connection.request(method, self.path, body=body, headers=headers)
                response = connection.getresponse()
                break
            except (http.client.HTTPException, OSError):
                self.upstream_connection = None
                if attempt:
                    raise
        data = response.read()
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            # A HEAD answer keeps the upstream's Content-Length: the size of the object.
            if key.lower() not in _HOP_HEADERS and (method == 'HEAD' or
                                                    key.lower() != 'content-length'):
                self.send_header(key, value)
        if method != 'HEAD':
            self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if method != 'HEAD':
            self._write_body(data)
        entry.update(status=response.status, body_bytes=0 if method == 'HEAD' else len(data))
        owner._record(**entry)

    def _write_body(self, data):
        rate = self.owner.bandwidth
        if not rate:
            self.wfile.write(data)
            return
        start = time.monotonic()
        for offset in range(0, len(data), _CHUNK):
            self.wfile.write(data[offset:offset + _CHUNK])
            ahead = (offset + _CHUNK) / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


def main(argv):
    """``python _fault_proxy.py UPSTREAM LATENCY_S BANDWIDTH``: serve until killed, port on stdout.

    A proxy in a process of its own, so that its Python work does not share
    the GIL of the process it slows down (benchmarks/test_remote_speed.py).
    """
    upstream, latency, bandwidth = argv[0], float(argv[1]), float(argv[2])
    proxy = FaultProxy(upstream).start()
    proxy.latency_s = latency
    proxy.bandwidth = bandwidth or None
    print(proxy.port, flush=True)
    threading.Event().wait()


if __name__ == '__main__':
    import sys
    sys.path.insert(0, __import__('os').path.dirname(__file__))
    main(sys.argv[1:])
