"""stolon.signal: signal_handler (gevent.signal_handler) and the cooperative SIGCHLD
handling of signal/getsignal.

Cross-checked against gevent 26.9 (names switched).  Signals go to this process only
while a handler is installed for them (SIGUSR1's default action would end it).
"""
import gc
import os
import signal as stdsignal
import sys

import pytest

import stolon
import stolon.os as sos
import stolon.signal as ssignal
from stolon import subprocess as sp

SIGUSR1 = stdsignal.SIGUSR1


def _wait_for(predicate, limit=5.0):
    deadline = stolon.get_hub().loop.now() + limit
    while not predicate() and stolon.get_hub().loop.now() < deadline:
        stolon.sleep(0.005)
    return predicate()


def test_module_surface():
    for name in ("signal", "getsignal", "set_wakeup_fd"):
        assert callable(getattr(ssignal, name)), name
    assert ssignal.SIGUSR1 == SIGUSR1
    assert ssignal.SIG_DFL is stdsignal.SIG_DFL
    assert ssignal.getsignal(stdsignal.SIGINT) == stdsignal.getsignal(stdsignal.SIGINT)


# -- signal_handler ------------------------------------------------------------------------

def _signal_handler():
    # gevent has it as gevent.signal_handler only
    return getattr(ssignal, "signal_handler", None) or stolon.signal_handler


def test_handler_runs_in_a_new_greenlet_with_its_arguments():
    calls = []
    hub = stolon.get_hub()

    def handler(*args, **kwargs):
        current = stolon.getcurrent()
        stolon.sleep(0.01)      # it may block: it has a greenlet of its own
        calls.append((args, kwargs, current is not hub and current is not main))

    main = stolon.getcurrent()
    h = _signal_handler()(SIGUSR1, handler, 1, 2, key="v")
    try:
        assert h.ref is False
        os.kill(os.getpid(), SIGUSR1)
        assert _wait_for(lambda: calls)
        os.kill(os.getpid(), SIGUSR1)
        assert _wait_for(lambda: len(calls) == 2)
    finally:
        h.cancel()
    assert calls == [((1, 2), {"key": "v"}, True)] * 2


def test_cancel_stops_deliveries_and_drops_references():
    first, second = [], []
    a = _signal_handler()(SIGUSR1, first.append, "a")
    b = _signal_handler()(SIGUSR1, second.append, "b")
    try:
        os.kill(os.getpid(), SIGUSR1)
        assert _wait_for(lambda: first and second)
        a.cancel()
        assert a.handler is None and a.args is None and a.kwargs is None
        a.cancel()      # twice is fine
        os.kill(os.getpid(), SIGUSR1)
        assert _wait_for(lambda: len(second) == 2)
        stolon.sleep(0.02)
        assert first == ["a"]
    finally:
        a.cancel()
        b.cancel()


def test_ref_is_settable():
    h = _signal_handler()(SIGUSR1, lambda: None)
    try:
        h.ref = True
        assert h.ref is True
        h.ref = False
        assert h.ref is False
    finally:
        h.cancel()


def test_handler_must_be_callable():
    with pytest.raises(TypeError, match="signal handler must be callable"):
        _signal_handler()(SIGUSR1, "not callable")


def test_exception_in_handler_goes_to_handle_error():
    hub = stolon.get_hub()
    errors = []
    hub.handle_error = lambda context, t, v, tb: errors.append((context, t, str(v)))
    h = None
    try:
        def handler():
            raise ValueError("from the handler")

        h = _signal_handler()(SIGUSR1, handler)
        os.kill(os.getpid(), SIGUSR1)
        assert _wait_for(lambda: errors)
    finally:
        del hub.handle_error
        if h is not None:
            h.cancel()
    assert errors == [(None, ValueError, "from the handler")]


def test_exception_in_handler_reaches_the_main_greenlet(capsys):
    # handle_error is called without a context: printed, then raised in the main greenlet
    def handler():
        raise ValueError("boom")

    h = _signal_handler()(SIGUSR1, handler)
    try:
        os.kill(os.getpid(), SIGUSR1)
        with pytest.raises(ValueError, match="boom"):
            stolon.sleep(2)
    finally:
        h.cancel()
    stolon.sleep(0.01)      # the handler's greenlet finishes
    assert "ValueError: boom" in capsys.readouterr().err


# -- SIGCHLD -------------------------------------------------------------------------------

def test_sigchld_handler_runs_for_watched_children():
    calls = []

    def on_child(signum, frame):
        stolon.sleep(0.001)     # runs in a greenlet: may block
        calls.append((signum, frame))

    old = ssignal.signal(stdsignal.SIGCHLD, on_child)
    try:
        assert ssignal.getsignal(stdsignal.SIGCHLD) is on_child
        assert stdsignal.getsignal(stdsignal.SIGCHLD) is not on_child   # no Python-level handler
        pid = sos.fork()
        if pid == 0:
            os._exit(0)
        sos.waitpid(pid, 0)
        assert _wait_for(lambda: calls)
        p = sp.Popen([sys.executable, "-c", "pass"])
        p.wait()
        assert _wait_for(lambda: len(calls) == 2)
    finally:
        assert ssignal.signal(stdsignal.SIGCHLD, old) is on_child
    assert calls == [(stdsignal.SIGCHLD, None)] * 2
    assert ssignal.getsignal(stdsignal.SIGCHLD) == old


def test_sigchld_wakeup_fd_gets_a_byte():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    calls = []
    old = ssignal.signal(stdsignal.SIGCHLD, lambda *args: calls.append(args))
    old_fd = ssignal.set_wakeup_fd(w)
    try:
        p = sp.Popen([sys.executable, "-c", "pass"])
        p.wait()
        assert _wait_for(lambda: calls)
        assert os.read(r, 10) == bytes([stdsignal.SIGCHLD])
    finally:
        ssignal.set_wakeup_fd(old_fd)
        ssignal.signal(stdsignal.SIGCHLD, old)
        os.close(r)
        os.close(w)


def test_sigchld_handler_type_check():
    with pytest.raises(TypeError, match="signal handler must be signal.SIG_IGN"):
        ssignal.signal(stdsignal.SIGCHLD, "nope")


def _sleeper_until_stdin_closes():
    return sp.Popen([sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(5)"],
                    stdin=sp.PIPE)


def _stop(popen):
    if popen.returncode is None:
        popen.kill()
        popen.wait(timeout=10)
    popen.stdin.close()


def test_sigchld_ign_then_dfl_while_a_child_is_watched():
    # children started after SIG_DFL are waited for as usual
    running = _sleeper_until_stdin_closes()
    old = ssignal.signal(stdsignal.SIGCHLD, stdsignal.SIG_IGN)
    try:
        assert ssignal.getsignal(stdsignal.SIGCHLD) == stdsignal.SIG_IGN
        assert ssignal.signal(stdsignal.SIGCHLD, stdsignal.SIG_DFL) == stdsignal.SIG_IGN
        p = sp.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
        assert p.wait(timeout=10) == 3
        running.stdin.close()
        assert running.wait(timeout=10) == 5
    finally:
        _stop(running)
        ssignal.signal(stdsignal.SIGCHLD, old)


@pytest.mark.skipif(stolon.__name__ == "gevent",
                    reason="gevent: SIG_IGN replaces the loop's handler and waiting for "
                           "a child watched across the change hangs")
def test_sigchld_ign_does_not_lose_a_child_watched_across_it():
    running = _sleeper_until_stdin_closes()
    old = ssignal.signal(stdsignal.SIGCHLD, stdsignal.SIG_IGN)
    try:
        running.stdin.close()
        assert running.wait(timeout=10) == 5
    finally:
        _stop(running)
        ssignal.signal(stdsignal.SIGCHLD, old)


def test_many_signal_handlers_leak_nothing():
    loop = stolon.get_hub().loop

    def cycle():
        _signal_handler()(SIGUSR1, lambda: None).cancel()

    cycle()
    gc.collect()
    before = (loop.activecnt, len(gc.get_objects()), stdsignal.getsignal(SIGUSR1))
    for _ in range(2000):
        cycle()
    gc.collect()
    after = (loop.activecnt, len(gc.get_objects()), stdsignal.getsignal(SIGUSR1))
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1] - before[1] < 50, (before, after)
