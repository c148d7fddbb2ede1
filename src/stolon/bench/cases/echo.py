"""TCP echo servers under load: requests per second, with p50/p99 latency.

Each library's server runs in its own child process (echo_server.py), started once and
kept for every round; the load comes from a client written in C (echo_client.py holds its
source; it is built on first use with the system's C compiler), with N connections and one request in
flight on each.  Client and server share the machine, so the client is in C to leave
the server as much CPU as it can.
"""
import atexit
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

from ..echo_client import SOURCE as CLIENT_SOURCE
from .base import SampleCase
from .registry import register

GROUP = "echo server (TCP, 127.0.0.1)"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_SCRIPT = os.path.join(HERE, "echo_server.py")
WARMUP_MS = 100    # connections made and the servers' greenlets warm: not counted

_servers = {}       # (library name, *mode) -> (process, port)
_client = []        # the built client's path, once built


class Unavailable(RuntimeError):
    """The case cannot run here (no C compiler, or the server did not start)."""


def _build_client():
    if _client:
        return _client[0]
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise Unavailable("needs a C compiler to build the load client (set CC)")
    digest = hashlib.sha256(CLIENT_SOURCE.encode()).hexdigest()[:16]
    out = os.path.join(tempfile.gettempdir(), f"stolon-echo-client-{digest}")
    if not os.path.exists(out):
        tmp = out + f".{os.getpid()}"
        proc = subprocess.run([cc, "-O2", "-x", "c", "-o", tmp, "-"], input=CLIENT_SOURCE,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise Unavailable("building the load client failed: " + proc.stderr.strip()[-300:])
        os.replace(tmp, out)
    _client.append(out)
    return out


def _start_server(lib, *mode):
    """A new echo server process for lib (mode: () or ("wsgi",)): (process, port)."""
    env = dict(os.environ)
    root = lib.import_root()
    if root:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    name = lib.module.__name__
    # stderr goes to a file, not a pipe nobody reads (a full pipe would stall the server)
    errors = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, SERVER_SCRIPT, name, *mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        proc.wait()
        errors.seek(0)
        raise Unavailable(f"{name} echo server did not start: "
                          + " | ".join(errors.read().strip().splitlines()[-3:]))
    errors.close()
    return proc, int(line)


def _stop_server(proc):
    try:
        proc.stdin.close()
        proc.wait(timeout=5)
    except Exception:
        proc.kill()
        proc.wait()


def _server(lib, *mode):
    """The port of lib's echo (or WSGI) server, started once and kept for every round."""
    key = (lib.module.__name__,) + mode
    if key in _servers and _servers[key][0].poll() is None:
        return _servers[key][1]
    _servers[key] = _start_server(lib, *mode)
    return _servers[key][1]


@atexit.register
def _stop_servers():
    for proc, _ in _servers.values():
        _stop_server(proc)
    _servers.clear()


def _run_client(*args):
    """Runs the C client to the end; its "key=value" line as a dict of floats."""
    proc = subprocess.run([_build_client(), *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("echo client failed: " + proc.stderr.strip())
    return {key: float(value) for key, value in (item.split("=") for item in proc.stdout.split())}


def _sample(connections, size):
    def sample(lib, run_ms):
        raw = _run_client("127.0.0.1", _server(lib), connections, size, WARMUP_MS, run_ms)
        if raw["errors"] or not raw["requests"]:
            raise RuntimeError(f"echo client: {raw}")
        return raw["requests"] / raw["seconds"], raw
    return sample


def _sample_wsgi(connections):
    def sample(lib, run_ms):
        raw = _run_client("http", "127.0.0.1", _server(lib, "wsgi"), connections, WARMUP_MS, run_ms)
        if raw["errors"] or not raw["requests"]:
            raise RuntimeError(f"http client: {raw}")
        return raw["requests"] / raw["seconds"], raw
    return sample


def _sample_bulk(lib, mebibytes):
    """MiB/s of one connection streaming `mebibytes` through the echo and back."""
    raw = _run_client("bulk", "127.0.0.1", _server(lib), mebibytes)
    if raw["errors"] or raw["bytes"] != mebibytes << 20:
        raise RuntimeError(f"echo client: the echo came back wrong: {raw}")
    return raw["bytes"] / (1 << 20) / raw["seconds"], raw


def _sample_idle(lib, count):
    """Bytes of server RSS per idle connection: a fresh server per round, `count`
    connections each echoed once (so each handler has run and waits in recv)."""
    proc, port = _start_server(lib)
    client = None
    try:
        def server_rss():
            proc.stdin.write("rss\n")
            proc.stdin.flush()
            return int(proc.stdout.readline())
        before = server_rss()
        client = subprocess.Popen([_build_client(), "idle", "127.0.0.1", str(port), str(count)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        ready = client.stdout.readline().strip()
        if ready != "ready":
            raise RuntimeError("echo client (idle) failed: " + client.stderr.read().strip())
        after = server_rss()
    finally:
        if client is not None:
            client.stdin.close()
            client.wait(timeout=60)
            client.stdout.close()
            client.stderr.close()
        _stop_server(proc)
    return (after - before) / count, {"count": count, "rss_before": before, "rss_after": after}


class EchoCase(SampleCase):
    """A SampleCase that says why it cannot run: no C compiler for the client, or a
    greenlet library without the module its server needs (``server``, or ``pywsgi``
    for the WSGI cases)."""

    def __init__(self, *args, server_module="server", **kwargs):
        super().__init__(*args, **kwargs)
        self.server_module = server_module

    def missing(self, lib):
        why = super().missing(lib)
        if why:
            return why
        try:
            _build_client()
        except Unavailable as exc:
            return str(exc)
        if lib.name in ("stolon", "gevent"):
            try:
                importlib.import_module(f"{lib.module.__name__}.{self.server_module}")
            except ImportError:
                return f"{lib.name} {lib.version} has no {self.server_module} module"
        return None

    def describe(self):
        # rates per second of elapsed time: the table marks the case (wall); a
        # memory figure has no clock
        described = super().describe()
        return dict(described, clock="wall") if self.higher_is_better else described


def _run_ms(profile):
    return max(200, int(profile.round_seconds * 1000))


def _bulk_mebibytes(profile):
    return 100


def _idle_count(profile):
    return 10_000


for _conns in (1, 10, 100):
    for _size, _label in ((100, "100B"), (1024, "1KiB")):
        register(EchoCase(
            f"echo-c{_conns}-{_label}", f"echo, {_conns} connection{'s' if _conns > 1 else ''}, {_label}",
            GROUP, "requests/s", _sample(_conns, _size), work=_run_ms,
            anchors=("gevent", "asyncio", "uvloop"), needs=(),
            about=f"{_conns} connections from a C client, one {_size}-byte request in flight "
                  "on each; StreamServer (recv/sendall) or an asyncio Protocol server",
            pytest_work=200))

register(EchoCase(
    "echo-bulk-100MiB", "echo, 100 MiB through one connection", GROUP, "MiB/s", _sample_bulk,
    work=_bulk_mebibytes, anchors=("gevent", "asyncio", "uvloop"), needs=(),
    about="one connection streams 100 MiB of a checked pattern through the echo server and "
          "back (recv(65536)/sendall, or the Protocol's data_received/write)",
    pytest_work=16))

register(EchoCase(
    "echo-idle-10k", "memory per idle connection (10,000)", GROUP, "B/connection", _sample_idle,
    work=_idle_count, anchors=("gevent", "asyncio", "uvloop"), needs=(), higher_is_better=False,
    about="server RSS growth / N after N connections each echoed one byte and left open "
          "(each handler waits in recv); a fresh server process per round; lower is better",
    pytest_work=1000))

WSGI_GROUP = "WSGI server (pywsgi, HTTP/1.1 keep-alive, 127.0.0.1)"
for _conns in (1, 100):
    register(EchoCase(
        f"wsgi-c{_conns}", f"pywsgi, {_conns} keep-alive connection{'s' if _conns > 1 else ''}",
        WSGI_GROUP, "requests/s", _sample_wsgi(_conns), work=_run_ms, anchors=("gevent",), needs=(),
        server_module="pywsgi",
        about=f"GET / on {_conns} keep-alive connections from the C client, one request in "
              "flight on each; pywsgi.WSGIServer with a hello-world app, no access log, "
              "TCP_NODELAY on the listener (gevent's two writes per answer would otherwise "
              "wait for delayed ACKs)",
        pytest_work=200))
