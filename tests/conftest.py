"""Shared helpers for the test suite.

Everything greenlet-specific lives under the ``glet_`` / ``GLET_`` prefix so that
other test modules can add their own helpers here without collisions.

The greenlet tests are written against greenlet's documented behaviour and are
validated against the real ``greenlet`` package through a shim package that
re-exports greenlet's names as ``stolon``.  ``GLET_REAL_VERSION`` is the version of
real greenlet behind such a shim, or ``None`` when ``stolon`` is stolon itself.
"""
import contextlib
import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import stolon


def _real_greenlet_version():
    if getattr(stolon.greenlet, "__module__", None) != "greenlet":
        return None
    import greenlet as _real
    return tuple(int(p) for p in _real.__version__.split(".")[:3] if p.isdigit())


#: Version tuple of real greenlet behind a validation shim; ``None`` under stolon.
GLET_REAL_VERSION = _real_greenlet_version()


def glet_semantics_at_least(version):
    """True unless we run against a real greenlet older than ``version``.

    stolon implements greenlet 3.5.x semantics on every Python; the newest greenlet
    wheel for Python 3.9 is 3.2.x, which predates a few of those behaviours.
    """
    return GLET_REAL_VERSION is None or GLET_REAL_VERSION >= tuple(version)


def glet_requires(version, why):
    """Skip marker for behaviour that real greenlet only has from ``version`` on."""
    return pytest.mark.skipif(
        not glet_semantics_at_least(version),
        reason="real greenlet %s predates this behaviour (%s)" % (
            ".".join(map(str, GLET_REAL_VERSION or ())), why))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "stolon_only: tests stolon-specific behaviour (skipped under a real-greenlet shim)")
    config.addinivalue_line(
        "markers", "glet_subprocess: greenlet test that runs a script in a child interpreter")


def pytest_runtest_setup(item):
    if GLET_REAL_VERSION is not None and item.get_closest_marker("stolon_only"):
        pytest.skip("stolon-only test; running against real greenlet")


def _stolon_path():
    """The sys.path entry that provides ``stolon`` (for child interpreters)."""
    pkg_dir = os.path.dirname(os.path.abspath(stolon.__file__))
    return os.path.dirname(pkg_dir)


def child_env(**overrides):
    """The environment for a child interpreter that imports this same ``stolon``.

    PYTHONPATH is stolon's path followed by the inherited PYTHONPATH; PYTHONWARNINGS
    is dropped, so that a child's stderr holds only what the child writes;
    ``overrides`` are applied last.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_stolon_path(), env.get("PYTHONPATH")]))
    env.pop("PYTHONWARNINGS", None)
    env.update(overrides)
    return env


def run_fuzz_seed(script, seed, operations, log_path, tail=3):
    """Run a fuzzer in tests/fuzz (``script SEED OPERATIONS LOG``) in a fresh
    interpreter and assert that it exits 0 saying ``ok SEED``; a failure shows its
    stderr and the last ``tail`` operations of its log."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", script)
    proc = subprocess.run([sys.executable, "-X", "faulthandler", path, str(seed), str(operations),
                           str(log_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120, env=child_env())
    last = log_path.read_text().splitlines()[-tail:] if log_path.exists() else []
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:], last)
    assert proc.stdout.rstrip().endswith("ok %d" % seed)


def glet_run_script(code, timeout=60, env=None, args=()):
    """Run ``code`` (dedented) in a fresh interpreter; return CompletedProcess.

    The child sees the same ``stolon`` as this process, has faulthandler on, and
    runs under ``timeout`` seconds (a hang fails the test with TimeoutExpired).
    """
    script_env = child_env(PYTHONFAULTHANDLER="1", PYTHONIOENCODING="utf-8")
    script_env.pop("PYTHONDEVMODE", None)
    if env:
        script_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)] + list(args),
        capture_output=True, text=True, timeout=timeout, env=script_env, check=False)


def glet_settle(initial_threads=None, timeout=5.0):
    """Wait for helper threads to finish and pending greenlet cleanups to run.

    Calling ``getcurrent()`` drains this thread's queue of greenlets that were
    dropped in other threads; ``gc.collect()`` frees dead ones.
    """
    deadline = time.monotonic() + timeout
    while initial_threads is not None and threading.active_count() > initial_threads:
        if time.monotonic() > deadline:
            break
        time.sleep(0.005)
    for _ in range(3):
        stolon.getcurrent()
        gc.collect()
        time.sleep(0.001)


@pytest.fixture
def glet_clean_trace():
    """Guarantee no greenlet tracer leaks into or out of a test."""
    old = stolon.settrace(None)
    try:
        yield
    finally:
        stolon.settrace(old)


@pytest.fixture
def glet_threads():
    """Yields a list; threads appended to it are joined (and settled) at teardown."""
    initial = threading.active_count()
    threads = []
    yield threads
    for t in threads:
        t.join(10)
    glet_settle(initial)


# ---- stolon.loop helpers (loop_ prefix) ----

LOOP_BACKENDS = ("epoll", "poll")


@pytest.fixture(params=LOOP_BACKENDS)
def loop_any(request):
    """A fresh, non-default stolon loop on each backend; destroyed at teardown."""
    import stolon.loop
    lp = stolon.loop.loop(request.param, default=False)
    yield lp
    if not lp.destroyed and lp.depth == 0:
        lp.destroy()


def loop_fd_count():
    """Open fds of this process (Linux), or None where /proc is missing."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


# ---- descriptor leaks of a whole module ----

def open_fd_count():
    """The process's open file descriptors (Linux)."""
    return len(os.listdir("/proc/self/fd"))


def live_object_count():
    """How many objects the collector tracks, after a collection (for leak checks)."""
    gc.collect()
    return len(gc.get_objects())


@pytest.fixture(scope="module", autouse=True)
def module_closes_its_fds(request):
    """For a module that defines ``FD_WARM_UP``: every descriptor its tests open is
    closed by the end of the module.  ``FD_WARM_UP()`` runs first, so what the hub
    opens once and keeps (its loop, the resolver's pool) is not counted."""
    warm_up = getattr(request.module, "FD_WARM_UP", None)
    if warm_up is None:
        yield
        return
    warm_up()
    before = open_fd_count()
    yield
    for delay in (0, 0.001, 0.01):  # closes deferred to the loop happen at its next turns
        stolon.sleep(delay)
    gc.collect()                    # a socket that failed half-way may wait for the collector
    assert open_fd_count() == before


@pytest.fixture
def hub_errors():
    """What the hub prints for failed greenlets and callbacks (its exception_stream),
    as a StringIO; the hub's own stream is back afterwards."""
    import io
    hub = stolon.get_hub()
    stream = io.StringIO()
    hub.exception_stream = stream
    try:
        yield stream
    finally:
        del hub.exception_stream


# ---- child interpreters and processes ----

#: tests/monkey_scripts: scripts that patch with stolon.monkey, each run in its own interpreter.
MONKEY_SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "monkey_scripts")


def run_in_monkey_scripts(*argv, timeout=30):
    """Run ``python *argv`` in a child interpreter (``child_env()``) whose working
    directory is tests/monkey_scripts; the CompletedProcess, with text output."""
    return subprocess.run([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=child_env(), timeout=timeout,
                          cwd=MONKEY_SCRIPTS)


def monkey_script_lines(name, *args, timeout=30):
    """The stdout lines of tests/monkey_scripts/``name`` run with ``args`` in a child
    interpreter; asserts that it exited with 0 and wrote nothing to stderr."""
    result = run_in_monkey_scripts(os.path.join(MONKEY_SCRIPTS, name), *args, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def reaped(pid):
    """True if ``pid`` is no longer a child of ours (it was waited for: no zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


# ---- pipes, sockets and logs ----

@pytest.fixture
def pipe():
    """``(r, w)`` of a new pipe; what the test leaves open is closed afterwards."""
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def recv_exactly(sock, n):
    """``n`` bytes from ``sock``; fewer if the peer closes first."""
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def read_all(sock):
    """Everything ``sock`` receives until the peer closes the connection."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


@contextlib.contextmanager
def logger_records(name):
    """The logger ``name`` at DEBUG level, not propagating, with a handler that
    appends ``(levelno, message)`` of each record to a list; yields ``(logger,
    records)`` and removes the handler on exit."""
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append((record.levelno, record.getMessage()))
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    collector = Collect()
    logger.addHandler(collector)
    try:
        yield logger, records
    finally:
        logger.removeHandler(collector)
