"""stolon.monkey.patch_thread: threads are greenlets.  Every scenario is a script in
tests/monkey_scripts run (patched) in its own interpreter."""
import os
import sys

import pytest

import stolon
from conftest import monkey_script_lines


def test_producer_consumer_same_as_unpatched():
    patched = monkey_script_lines("producer_consumer.py", "patch")
    assert patched == monkey_script_lines("producer_consumer.py")
    assert patched == ["all consumed True", "results 40 242940", "barrier [0, 1, 2]",
                       "rlock reentrant", "event True"]


def test_thread_pool_executor():
    assert monkey_script_lines("futures.py") == [
        "map [0, 2, 4, 6, 8, 10, 12, 14]", "workers are greenlets True", "wait 4 0",
        "as_completed [0, 2, 4, 6]", "exception ZeroDivisionError", "parallel True"]


def test_local_and_thread_identity():
    assert monkey_script_lines("local_identity.py") == [
        "main is current True", "main ident True", "native ident differs True",
        "local types True True",
        "t0 ('t0', 'worker-0', True, True)", "t1 ('t1', 'worker-1', True, True)",
        "t2 ('t2', 'worker-2', True, True)", "main keeps its value main",
        "active after join 1", "spawned greenlet _DummyThread True True",
        "dummy forgotten True", "distinct idents 4", "joining main times out True"]


def test_exit_waits_for_non_daemon_threads():
    assert monkey_script_lines("exit_pending.py", "non-daemon") == [
        "main module done", "late thread 1 done", "late thread 2 done"]


def test_exit_with_daemon_threads_blocked():
    # a daemon thread waits forever; another joins the main thread, which ends at exit
    assert monkey_script_lines("exit_pending.py", "daemon") == ["main module done", "main thread joined"]


def test_exit_with_both_kinds():
    assert monkey_script_lines("exit_pending.py", "all") == [
        "main module done", "main thread joined", "late thread 1 done", "late thread 2 done"]


def test_exit_without_threads():
    assert monkey_script_lines("exit_pending.py", "none") == ["main module done"]


def test_timer_fires_and_cancel_works():
    assert monkey_script_lines("exit_pending.py", "timer") == ["main module done", "timer fired"]


def test_logging_from_threads():
    assert monkey_script_lines("logging_threads.py") == [
        "logging lock threading", "T0 INFO hello 0", "T1 INFO hello 1", "T2 INFO hello 2",
        "MainThread WARNING from main"]


def test_thread_module_surface():
    from stolon import thread, threading
    assert thread.LockType is thread.allocate_lock
    assert thread.error is __import__("_thread").error
    assert set(thread.__implements__) <= set(dir(thread))
    assert set(threading.__implements__) <= set(dir(threading))
    if sys.version_info[:2] >= (3, 13):
        assert "start_joinable_thread" in thread.__implements__
        assert "_start_joinable_thread" in threading.__implements__
    else:
        assert "_start_new_thread" in threading.__implements__
        assert "_set_sentinel" in threading.__implements__


@pytest.mark.skipif(sys.version_info[:2] < (3, 13), reason="thread handles are 3.13's")
def test_thread_handle_follows_greenlet():
    from stolon.thread import _ThreadHandle, start_joinable_thread
    with pytest.raises(RuntimeError, match="thread not started"):
        _ThreadHandle().join()
    handle = start_joinable_thread(lambda: stolon.sleep(0.01))
    assert not handle.is_done() and handle.ident is not None
    handle.join(5)
    assert handle.is_done()
    with pytest.raises(RuntimeError, match="thread already started"):
        start_joinable_thread(lambda: None, handle=handle)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("forker", ["main", "thread", "dummy"])
def test_fork_gives_the_child_one_main_thread(forker):
    # gevent 26.9 prints the same but also a KeyError traceback in the child: the
    # bystander's greenlet, copied into the child, ends there and its Thread's _delete
    # finds itself gone from threading._active.  stolon keeps the child quiet.
    assert monkey_script_lines("fork_threading.py", forker) == [
        "child main True _MainThread MainThread True", "child threads True 1",
        "child bystander dead True True", "child new thread ran", "child exits",
        "parent sees child exit 0", "parent exits"]
