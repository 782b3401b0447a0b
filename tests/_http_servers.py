"""Throw-away servers on loopback for the remote-file tests: nginx and moto's S3 server.

Each gets a free port and a private folder; a missing program fails the test
(never skips) with the command that installs it. The fault-injecting proxy
that goes in front of either is in :mod:`_fault_proxy`.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _redis_server import free_port

NGINX_HINT = ("nginx is not on PATH; install it with `apt-get install -y nginx-light` "
              "(scripts/install-system-packages.sh does)")
#: Access-log fields, tab-separated, in this order.
_LOG_FIELDS = ('method', 'path', 'status', 'body_bytes', 'range', 'if_match')


def _wait_for_port(port, process, wait, what):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{what} did not listen on port {port} within {wait} s")


class _ChildServer:
    """A server run as a child process in a session of its own, stopped by a signal."""

    #: Signal of a graceful stop (nginx: SIGQUIT finishes the requests in flight).
    stop_signal = signal.SIGTERM
    process = None

    def kill(self):
        """SIGKILL the server and its workers at once (a server that dies)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, self.stop_signal)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


class NginxServer(_ChildServer):
    """nginx serving ``root`` over HTTP/1.1, with Range and If-Match (its static module).

    nginx's ETag is ``"<mtime hex>-<size hex>"``: a test that replaces a file
    must change its mtime (second resolution) or size for clients to notice.

    Parameters
    ----------
    directory : pathlib.Path
        Private folder: configuration, logs, pid, temp files, and ``www/``.
    latency_s : float or None
        Seconds every request waits before it is served (the echo module's
        ``echo_sleep``), a network round trip.
    rate : int or None
        Body bytes per second per connection (``limit_rate``).
    upstream : str or None
        ``host:port`` to proxy every request to (e.g. moto's S3 server) instead
        of serving ``root``: a throttling proxy in C, which leaves the cores to
        the code under test.
    """

    stop_signal = signal.SIGQUIT   # graceful: the requests in flight finish

    def __init__(self, directory, latency_s=None, rate=None, upstream=None):
        self.latency_s, self.rate, self.upstream = latency_s, rate, upstream
        self.directory = Path(directory)
        self.root = self.directory / 'www'
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / 'access.log'
        self.process = None
        self.port = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/"

    def url_for(self, name):
        return self.base_url + name

    def _config(self):
        tmp = self.directory / 'tmp'
        tmp.mkdir(exist_ok=True)
        fmt = '\\t'.join(['$request_method', '$uri', '$status', '$body_bytes_sent',
                          '$http_range', '$http_if_match'])
        # As root, workers default to `nobody`, who cannot read pytest's 0700 folders.
        user = 'user root;' if os.geteuid() == 0 else ''
        temps = ' '.join(f"{k}_temp_path {tmp};" for k in
                         ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'))
        serve = f"proxy_pass http://{self.upstream}; proxy_buffering off;" if self.upstream else ''
        if self.rate:
            serve += f" limit_rate {int(self.rate)};"
        if self.latency_s:
            locations = (f"location / {{ echo_sleep {self.latency_s}; echo_exec @serve; }} "
                         f"location @serve {{ {serve} }}")
        else:
            locations = f"location / {{ {serve} }}"
        module = ('load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;'
                  if self.latency_s else '')
        return f"""{module}
{user}
worker_processes 2;
pid {self.directory}/nginx.pid;
error_log {self.directory}/error.log;
events {{ worker_connections 256; }}
http {{
  log_format ffcvx '{fmt}';
  access_log {self.log_path} ffcvx;
  {temps}
  keepalive_requests 100000;
  server {{ listen 127.0.0.1:{self.port}; root {self.root}; {locations} }}
}}
"""

    def start(self, wait=10.0):
        """Start nginx in the foreground (a child process) and wait until it accepts."""
        executable = shutil.which('nginx') or ('/usr/sbin/nginx' if os.path.exists(
            '/usr/sbin/nginx') else None)
        if executable is None:
            pytest.fail(NGINX_HINT)
        for _ in range(3):  # another process may take the free port first
            self.port = free_port()
            conf = self.directory / 'nginx.conf'
            conf.write_text(self._config())
            with open(self.directory / 'stderr.log', 'ab') as err:
                self.process = subprocess.Popen(
                    [executable, '-p', str(self.directory), '-c', str(conf), '-g', 'daemon off;'],
                    stdout=err, stderr=subprocess.STDOUT, start_new_session=True)
            if _wait_for_port(self.port, self.process, wait, 'nginx'):
                return self
        pytest.fail(f"nginx did not start: {(self.directory / 'stderr.log').read_text()[-2000:]}")

    def access_log(self):
        """Requests so far: dicts of method, path, status, body_bytes, range, if_match."""
        entries = []
        if not self.log_path.exists():
            return entries
        for line in self.log_path.read_text().splitlines():
            values = dict(zip(_LOG_FIELDS, line.split('\t')))
            values = {k: ('' if v == '-' else v) for k, v in values.items()}
            values['status'] = int(values['status'])
            values['body_bytes'] = int(values['body_bytes'])
            entries.append(values)
        return entries

    def settled_log(self, done, timeout=10.0):
        """The access log once ``done(log)`` holds (or after ``timeout`` s), read again 0.3 s on.

        nginx writes a request's line after it has sent the body, so under load a
        client can finish its work before the last lines are written; waiting for
        the expected lines, then a little more, also catches any extra request.
        """
        deadline = time.monotonic() + timeout
        while not done(self.access_log()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        return self.access_log()

    def clear_log(self):
        """Empty the log in place (nginx keeps it open)."""
        if self.log_path.exists():
            os.truncate(self.log_path, 0)


class MotoS3Server(_ChildServer):
    """moto's standalone S3-compatible server, a child process.

    Parameters
    ----------
    directory : pathlib.Path
        Where its log goes.
    """

    ACCESS = {'aws_access_key_id': 'testing', 'aws_secret_access_key': 'testing',
              'region_name': 'us-east-1'}

    def __init__(self, directory):
        self.directory = Path(directory)
        self.process = None
        self.port = None
        self.bucket = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait=30.0):
        for _ in range(3):
            self.port = free_port()
            with open(self.directory / 'moto.log', 'ab') as log:
                self.process = subprocess.Popen(
                    [sys.executable, '-m', 'moto.server', '-H', '127.0.0.1', '-p', str(self.port)],
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            if _wait_for_port(self.port, self.process, wait, 'moto'):
                return self
        pytest.fail(f"moto did not start: {(self.directory / 'moto.log').read_text()[-2000:]}")

    def client(self):
        import boto3
        return boto3.client('s3', endpoint_url=self.endpoint, **self.ACCESS)

    def create_bucket(self, name):
        self.client().create_bucket(Bucket=name)
        return name

    def put_file(self, bucket, key, path):
        self.client().upload_file(str(path), bucket, key)

    def storage_options(self, endpoint=None):
        """fsspec (s3fs) options of this server, or of a proxy at ``endpoint`` in front of it."""
        return {'key': 'testing', 'secret': 'testing', 'endpoint_url': endpoint or self.endpoint,
                'client_kwargs': {'region_name': 'us-east-1'}}
