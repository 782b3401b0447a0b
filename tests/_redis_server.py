"""A throw-away ``redis-server`` on loopback, for the Redis cache tests.

Each server gets a free port, a private working directory and no persistence
(``--save '' --appendonly no``), so tests never touch a real Redis.
"""
import shutil
import signal
import socket
import subprocess
import time

import pytest

#: What to run when redis-server is missing (CI runs as root).
INSTALL_HINT = ("redis-server is not on PATH; install it with `apt-get install -y redis-server` "
                "(scripts/install-system-packages.sh does)")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class RedisServer:
    """One ``redis-server`` process.

    Parameters
    ----------
    directory : pathlib.Path
        Working directory of the server (its log goes there too).

    Attributes
    ----------
    url : str
        ``redis://127.0.0.1:<port>/0``.
    """

    def __init__(self, directory):
        self.directory = directory
        self.process = None
        self.port = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        """A redis-py client of this server, with short timeouts."""
        import redis
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    def start(self, wait=10.0):
        """Start the server and return once it answers PING.

        Fails the test (never skips) if ``redis-server`` is not installed or
        does not come up within ``wait`` seconds.
        """
        import redis
        executable = shutil.which('redis-server')
        if executable is None:
            pytest.fail(INSTALL_HINT)
        log_path = self.directory / 'redis.log'
        for _ in range(3):  # another process may take the free port before the server does
            self.port = free_port()
            with open(log_path, 'ab') as log:
                self.process = subprocess.Popen(
                    [executable, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
                     '--appendonly', 'no', '--dir', str(self.directory)],
                    stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with redis.Redis(host='127.0.0.1', port=self.port, socket_timeout=1,
                                     socket_connect_timeout=1) as probe:
                        if probe.ping():
                            return self
                except redis.ConnectionError:
                    time.sleep(0.02)
            self.stop()
        pytest.fail(f"redis-server did not answer PING on port {self.port}: "
                    f"{log_path.read_text(errors='replace')[-2000:]}")

    def kill(self):
        """SIGKILL the server, as a crash would (no clean shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        """Stop the server if it runs; safe to call more than once."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

