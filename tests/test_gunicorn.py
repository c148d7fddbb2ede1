"""stolon.gunicorn: real gunicorn arbiters running stolon workers.

Each test starts ``python -m gunicorn -k stolon.gunicorn.Worker`` on 127.0.0.1 (a
port the arbiter picks and logs), talks HTTP to it, and kills the process group in
teardown.  The app is tests/gunicorn_apps/app.py.
"""
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from conftest import child_env

pytest.importorskip("gunicorn")
from gunicorn import config as gunicorn_config  # noqa: E402 -- after the skip


WORKER = "stolon.gunicorn.Worker"
PYWSGI_WORKER = "stolon.gunicorn.PyWSGIWorker"
APPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gunicorn_apps")
LISTENING = re.compile(r"Listening at: https?://127\.0\.0\.1:(\d+)")
# logged when stolon.monkey cannot be imported; not a failure of the worker
UNPATCHED = "stolon.monkey is not available"
BOOT_DEADLINE = 20.0
# gunicorn 24+ opens a control socket at a fixed path: tests running side by side
# would share it
NO_CONTROL_SOCKET = ["--no-control-socket"] if hasattr(gunicorn_config, "ControlSocketDisable") else []


class Gunicorn:
    """A gunicorn arbiter in its own process group, logging to a file."""

    def __init__(self, log_path, worker, args, port=0, ssl_context=None):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        cmd = [sys.executable, "-m", "gunicorn", "-k", worker, "-b", "127.0.0.1:%d" % port,
               "--chdir", APPS_DIR, "--graceful-timeout", "5", *NO_CONTROL_SOCKET, *args, "app:app"]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=child_env(), start_new_session=True)
        self.port = port
        self.ssl_context = ssl_context

    def wait_until_serving(self):
        if not self.port:
            self.port = self._wait_for_port()
        self._wait_until_serving()

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def _wait_for_port(self):
        deadline = time.monotonic() + BOOT_DEADLINE
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("gunicorn did not listen:\n" + self.log())

    def _wait_until_serving(self):
        deadline = time.monotonic() + BOOT_DEADLINE
        while time.monotonic() < deadline:
            try:
                if self.get("/") == (200, b"hello world"):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("gunicorn did not serve:\n" + self.log())

    def connection(self, timeout=10):
        if self.ssl_context is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path, timeout=10):
        """One request on a connection of its own: (status, body)."""
        conn = self.connection(timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def worker_pid(self):
        status, body = self.get("/pid")
        assert status == 200
        return int(body)

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout):
        return self.proc.wait(timeout)

    def errors(self):
        """The log's lines that report errors (other than running unpatched)."""
        lines = self.log().splitlines()
        return [line for line in lines
                if ("[ERROR]" in line or "[CRITICAL]" in line or "Traceback" in line)
                and UNPATCHED not in line]

    def assert_no_errors(self):
        # the whole log in the message: CI shows only the assertion, and the error's
        # first line says nothing
        assert self.errors() == [], self.log()

    def close(self):
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        else:
            self.proc.wait(10)
        # workers left behind by an arbiter that died first are in its group too
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()


@pytest.fixture
def start_gunicorn(tmp_path):
    started = []

    def start(*args, worker=WORKER, port=0, ssl_context=None):
        server = Gunicorn(str(tmp_path / ("gunicorn%d.log" % len(started))), worker, args, port,
                          ssl_context)
        started.append(server)
        server.wait_until_serving()
        return server

    yield start
    for server in started:
        server.close()


class StreamingRequest:
    """A raw-socket GET of ``/stream?S``: ``started()`` returns once the app has sent
    its first line (the request is then running in the worker)."""

    def __init__(self, port, seconds):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(b"GET /stream?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                          % str(seconds).encode())
        self.data = b""

    def started(self):
        while b"started\n" not in self.data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.data += chunk
        return b"started\n" in self.data

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.sock.close()

    def finish(self):
        """The whole response, read until the server closes the connection."""
        try:
            while True:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return self.data
                self.data += chunk
        finally:
            self.sock.close()


def _in_threads(count, function):
    """Run ``function(i)`` for i in range(count) in threads; their results in order."""
    results = [None] * count

    def run(i):
        try:
            results[i] = function(i)
        except Exception as ex:  # reported through the results
            results[i] = ex

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _pid_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_many_requests(start_gunicorn):
    server = start_gunicorn("-w", "1")
    # a connection per request
    for i in range(100):
        assert server.get("/?%d" % i) == (200, b"hello world")
    # keep-alive: one connection, many requests (bodies both ways)
    conn = server.connection()
    try:
        for i in range(100):
            body = b"x" * i + b"end"
            conn.request("POST", "/echo", body=body)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, body)
            assert response.getheader("Connection") != "close"
        # the same socket served them all
        assert conn.sock is not None
    finally:
        conn.close()

    # concurrent clients, each with a keep-alive connection
    def client(i):
        conn = server.connection()
        try:
            replies = []
            for j in range(10):
                conn.request("GET", "/echo", body=b"%d-%d" % (i, j))
                response = conn.getresponse()
                replies.append((response.status, response.read()))
            return replies
        finally:
            conn.close()

    results = _in_threads(10, client)
    assert results == [[(200, b"%d-%d" % (i, j)) for j in range(10)] for i in range(10)]
    server.assert_no_errors()


def test_sys_exit_in_the_application_closes_only_its_connection(start_gunicorn):
    server = start_gunicorn("-w", "1")
    pid = server.worker_pid()
    with pytest.raises(http.client.RemoteDisconnected):
        server.get("/exit")
    # the same worker goes on serving
    assert server.worker_pid() == pid
    assert server.get("/") == (200, b"hello world")
    server.assert_no_errors()


def test_requests_wait_concurrently_in_one_worker(start_gunicorn):
    server = start_gunicorn("-w", "1")
    pid = server.worker_pid()
    begin = time.monotonic()
    results = _in_threads(20, lambda i: server.get("/sleep?0.2"))
    elapsed = time.monotonic() - begin
    assert results == [(200, b"slept")] * 20
    # one after the other would take 4 s
    assert elapsed < 3.0, elapsed
    assert server.worker_pid() == pid
    server.assert_no_errors()


def test_worker_connections_bounds_the_pool(start_gunicorn):
    server = start_gunicorn("-w", "1", "--worker-connections", "2")
    begin = time.monotonic()
    results = _in_threads(4, lambda i: server.get("/sleep?0.3"))
    elapsed = time.monotonic() - begin
    assert results == [(200, b"slept")] * 4
    # two at a time: two rounds of 0.3 s
    assert 0.55 < elapsed < 3.0, elapsed


def test_stdlib_is_patched_in_the_worker(start_gunicorn):
    pytest.importorskip("stolon.monkey")
    server = start_gunicorn("-w", "1")
    assert server.get("/patched") == (200, b"socket=True time=True")


def test_https(start_gunicorn, tmp_path):
    # the patched ssl module makes the handshakes and TLS reads cooperative
    pytest.importorskip("stolon.monkey")
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    server = start_gunicorn("-w", "1", "--certfile", str(tmp_path / "cert.pem"),
                            "--keyfile", str(tmp_path / "key.pem"), ssl_context=context)
    begin = time.monotonic()
    results = _in_threads(10, lambda i: server.get("/sleep?0.3"))
    assert results == [(200, b"slept")] * 10
    # one after the other would take 3 s
    assert time.monotonic() - begin < 2.5
    server.assert_no_errors()


def test_heartbeat_keeps_a_waiting_worker_alive(start_gunicorn):
    # the arbiter kills a worker silent for 1 s; the request waits 2 s
    server = start_gunicorn("-w", "1", "--timeout", "1")
    pid = server.worker_pid()
    assert server.get("/sleep?2") == (200, b"slept")
    assert server.worker_pid() == pid
    assert "WORKER TIMEOUT" not in server.log()


def test_sigterm_finishes_the_running_request_then_exits(start_gunicorn):
    server = start_gunicorn("-w", "1")
    pid = server.worker_pid()
    with StreamingRequest(server.port, 0.5) as request:
        assert request.started()
        server.signal(signal.SIGTERM)
        assert request.finish().endswith(b"\r\n\r\nstarted\ndone")
    assert server.wait(5) == 0
    assert not _pid_exists(pid)
    log = server.log()
    assert "Worker exiting (pid: %d)" % pid in log
    assert "graceful timeout" not in log
    server.assert_no_errors()


def test_sigterm_closes_idle_keepalive_connections(start_gunicorn):
    # stolon's worker ends idle keep-alive waits when it stops; gevent's waits for
    # --keep-alive (here 10 s) to pass
    server = start_gunicorn("-w", "1", "--keep-alive", "10")
    conn = server.connection()
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"hello world")
        begin = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(5) == 0
        assert time.monotonic() - begin < 4.0
        assert conn.sock.recv(1) == b""
    finally:
        conn.close()
    server.assert_no_errors()


def test_sigterm_still_answers_a_new_connection(start_gunicorn):
    # a connection accepted before the stop may have its first request on the way
    server = start_gunicorn("-w", "1", "--keep-alive", "5")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as new:
        # connections are accepted in order: this request's answer means the worker
        # holds the connection above
        assert server.get("/") == (200, b"hello world")
        server.signal(signal.SIGTERM)
        time.sleep(0.2)
        new.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = new.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in data
    assert data.endswith(b"\r\n\r\nhello world")
    assert server.wait(5) == 0
    server.assert_no_errors()


def test_graceful_timeout_kills_requests_still_running(start_gunicorn):
    # on SIGHUP the arbiter leaves the old worker its graceful_timeout (on SIGTERM it
    # would kill it itself at the same moment)
    server = start_gunicorn("-w", "1", "--graceful-timeout", "1")
    old_pid = server.worker_pid()
    with StreamingRequest(server.port, 30) as request:
        assert request.started()
        begin = time.monotonic()
        server.signal(signal.SIGHUP)
        # the connection closes without the rest of the response
        assert request.finish().endswith(b"\r\n\r\nstarted\n")
    assert time.monotonic() - begin < 4.5
    assert _wait_for(lambda: not _pid_exists(old_pid), 5)
    assert "Worker graceful timeout (pid:%d)" % old_pid in server.log()
    assert server.get("/") == (200, b"hello world")
    # the killed request closed its connection quietly: no error page, no traceback
    server.assert_no_errors()


def test_sigquit_exits_at_once(start_gunicorn):
    server = start_gunicorn("-w", "1")
    pid = server.worker_pid()
    with StreamingRequest(server.port, 30) as request:
        assert request.started()
        begin = time.monotonic()
        server.signal(signal.SIGQUIT)
        assert request.finish().endswith(b"\r\n\r\nstarted\n")
        assert server.wait(5) == 0
    # the arbiter would kill it after --graceful-timeout (5 s)
    assert time.monotonic() - begin < 4.0
    assert not _pid_exists(pid)
    log = server.log()
    assert "Worker exiting (pid: %d)" % pid in log
    server.assert_no_errors()


def test_sighup_reloads_gracefully(start_gunicorn):
    server = start_gunicorn("-w", "1")
    old_pid = server.worker_pid()
    requests = [StreamingRequest(server.port, 0.6) for _ in range(3)]
    try:
        assert all(request.started() for request in requests)
        server.signal(signal.SIGHUP)
        for request in requests:
            assert request.finish().endswith(b"\r\n\r\nstarted\ndone")
    finally:
        for request in requests:
            request.sock.close()
    assert _wait_for(lambda: server.worker_pid() != old_pid, 10)
    assert _wait_for(lambda: not _pid_exists(old_pid), 5)
    # the new worker serves, concurrently
    results = _in_threads(10, lambda i: server.get("/sleep?0.1"))
    assert results == [(200, b"slept")] * 10
    assert server.proc.poll() is None
    server.assert_no_errors()


def test_max_requests_restarts_the_worker(start_gunicorn):
    server = start_gunicorn("-w", "1", "--max-requests", "5", "--max-requests-jitter", "0")
    # the readiness check made the first request
    pids = [server.worker_pid() for _ in range(4)]
    assert pids == [pids[0]] * 4
    # stolon's worker stops accepting at once; gevent's keeps accepting until its main
    # loop looks at ``alive`` (up to 1 s later)
    assert server.worker_pid() != pids[0]
    assert _wait_for(lambda: not _pid_exists(pids[0]), 5)
    assert "Autorestarting worker after current request." in server.log()
    server.assert_no_errors()


def test_several_workers_with_reuse_port(start_gunicorn):
    # gunicorn logs no address for port 0 with --reuse-port: the test holds the port
    # with a bound (not listening) SO_REUSEPORT socket of its own, which takes no
    # connections
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        server = start_gunicorn("-w", "2", "--reuse-port", port=holder.getsockname()[1])
        results = _in_threads(8, lambda i: [server.get("/echo") for _ in range(5)])
    assert results == [[(200, b"")] * 5] * 8
    server.assert_no_errors()


def test_pywsgi_worker(start_gunicorn):
    pytest.importorskip("stolon.pywsgi")
    server = start_gunicorn("-w", "1", "--access-logfile", "-", worker=PYWSGI_WORKER)
    for i in range(20):
        assert server.get("/?%d" % i) == (200, b"hello world")
    conn = server.connection()
    try:
        for i in range(20):
            conn.request("POST", "/echo", body=b"body%d" % i)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"body%d" % i)
    finally:
        conn.close()
    begin = time.monotonic()
    results = _in_threads(20, lambda i: server.get("/sleep?0.2"))
    assert results == [(200, b"slept")] * 20
    assert time.monotonic() - begin < 3.0
    # gunicorn's access log got the requests
    assert '"POST /echo HTTP/1.1" 200' in server.log()
    with StreamingRequest(server.port, 0.3) as request:
        assert request.started()
        server.signal(signal.SIGTERM)
        assert request.finish().endswith(b"started\ndone")
    assert server.wait(5) == 0
    server.assert_no_errors()


@pytest.mark.parametrize("worker", [WORKER, PYWSGI_WORKER])
def test_under_load_from_the_c_client(start_gunicorn, worker):
    # 50 keep-alive connections with a request in flight on each, for a second,
    # from the benchmark's C load client: every answer complete, nothing logged
    from stolon.bench.cases import echo
    try:
        client = echo._build_client()
    except echo.Unavailable as exc:
        pytest.skip(str(exc))
    server = start_gunicorn("-w", "1", "--worker-connections", "200", worker=worker)
    proc = subprocess.run([client, "http", "127.0.0.1", str(server.port), "50", "100", "1000"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = dict(item.split("=") for item in proc.stdout.split())
    assert float(result["errors"]) == 0, result
    assert float(result["requests"]) > 100, result
    assert server.proc.poll() is None
    server.assert_no_errors()
