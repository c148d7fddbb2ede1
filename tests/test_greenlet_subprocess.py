"""Cases that could take the interpreter down: interpreter shutdown with
suspended greenlets, greenlets left in threads at exit, cross-thread deletion,
finalization, signals, sys.exit and fork. Each runs in a child interpreter
(sys.executable) and asserts its exit code and output."""
import signal

import pytest

from conftest import glet_requires, glet_run_script

pytestmark = pytest.mark.glet_subprocess

PRELUDE = """
import os, sys, gc, threading
from stolon import greenlet, getcurrent, GreenletExit, error, settrace, gettrace
def say(msg):
    os.write(1, (msg + "\\n").encode())
"""


def run(body, timeout=60):
    return glet_run_script(PRELUDE + body, timeout=timeout)


def assert_ok(proc, *expected_lines):
    assert proc.returncode == 0, "rc=%s\nstdout:\n%s\nstderr:\n%s" % (
        proc.returncode, proc.stdout, proc.stderr)
    for line in expected_lines:
        assert line in proc.stdout.splitlines(), (line, proc.stdout, proc.stderr)
    assert "Fatal Python error" not in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


# ---------------------------------------------------------------- shutdown in the main thread

def test_exit_with_suspended_greenlet():
    proc = run("""
def worker():
    getcurrent().parent.switch("from worker")
    return "done"
g = greenlet(worker)
assert g.switch() == "from worker"
say("OK: exiting with active greenlet")
""")
    assert_ok(proc, "OK: exiting with active greenlet")


def test_exit_with_many_suspended_greenlets_no_greenletexit_at_finalization():
    proc = run("""
def worker(i):
    try:
        getcurrent().parent.switch(i)
    finally:
        say("FINALLY")
gs = []
for i in range(50):
    g = greenlet(worker)
    assert g.switch(i) == i
    gs.append(g)
say("OK: 50 suspended")
""")
    assert_ok(proc, "OK: 50 suspended")
    # During interpreter finalization no GreenletExit is thrown into them.
    assert "FINALLY" not in proc.stdout


def test_exit_with_nested_and_deep_parent_chains():
    proc = run("""
def level(depth, max_depth):
    if depth < max_depth:
        greenlet(level).switch(depth + 1, max_depth)
    getcurrent().parent.switch("depth-%d" % depth)
keep = []
for n in (1, 10, 100):
    g = greenlet(level)
    keep.append((g, g.switch(0, n)))
# only the outermost level reports to main; the inner ones wait in their parents
assert all(g for g, _ in keep)
say("OK: " + ",".join(r for _, r in keep))
""")
    assert_ok(proc, "OK: depth-0,depth-0,depth-0")


def test_exit_with_greenlet_suspended_in_except_block():
    proc = run("""
def worker():
    try:
        raise ValueError("test error")
    except ValueError:
        getcurrent().parent.switch("suspended with exc")
g = greenlet(worker)
assert g.switch() == "suspended with exc"
say("OK: suspended with exception")
""")
    assert_ok(proc, "OK: suspended with exception")


def test_exit_from_inside_a_greenlet_via_sys_exit():
    proc = run("""
others = [greenlet(lambda: getcurrent().parent.switch()) for _ in range(3)]
for o in others:
    o.switch()
def body():
    say("exiting from greenlet")
    sys.exit(7)
greenlet(body).switch()
say("never")
""")
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.splitlines() == ["exiting from greenlet"]
    assert "Fatal Python error" not in proc.stderr


def test_uncaught_exception_in_greenlet_reaches_top_level():
    proc = run("""
def body():
    raise KeyError("boom in greenlet")
greenlet(body).switch()
""")
    assert proc.returncode == 1
    assert "KeyError: 'boom in greenlet'" in proc.stderr
    assert "Fatal Python error" not in proc.stderr


def test_sigint_raises_keyboardinterrupt_in_running_greenlet():
    proc = run("""
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
def body():
    try:
        signal.raise_signal(signal.SIGINT)
        for _ in range(1000):
            pass
    except KeyboardInterrupt:
        say("KeyboardInterrupt in greenlet")
        return "handled"
say(greenlet(body).switch())
""")
    assert_ok(proc, "KeyboardInterrupt in greenlet", "handled")


def test_uncaught_keyboardinterrupt_from_greenlet_exits_like_python():
    proc = run("""
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
greenlet(lambda: signal.raise_signal(signal.SIGINT)).switch()
""")
    # CPython exits with -SIGINT (or 128+2 via the shell) on an uncaught KeyboardInterrupt.
    assert proc.returncode in (-signal.SIGINT, 130), (proc.returncode, proc.stderr)
    assert "KeyboardInterrupt" in proc.stderr


def test_fork_with_suspended_greenlets():
    proc = run("""
main = getcurrent()
g = greenlet(lambda x: main.switch(x) + 1)
g.switch(1)
pid = os.fork()
if pid == 0:
    try:
        r = g.switch(41)
        say("child %d %s" % (r, g.dead))
        h = greenlet(lambda: "child new")
        say(h.switch())
    finally:
        os._exit(0)
_, status = os.waitpid(pid, 0)
say("child status %d" % status)
say("parent %d %s" % (g.switch(1), g.dead))
""")
    assert_ok(proc, "child 42 True", "child new", "child status 0", "parent 2 True")


# ---------------------------------------------------------------- threads at exit

def test_exit_with_greenlets_of_exited_threads_referenced():
    proc = run("""
results = []
def thread_worker():
    def gfunc():
        getcurrent().parent.switch("from thread greenlet")
    g = greenlet(gfunc)
    results.append((g, g.switch()))
ts = [threading.Thread(target=thread_worker) for _ in range(3)]
for t in ts: t.start()
for t in ts: t.join()
say("OK: %d threaded greenlets at shutdown" % len(results))
""")
    assert_ok(proc, "OK: 3 threaded greenlets at shutdown")


def test_exit_while_daemon_thread_has_suspended_greenlets():
    proc = run("""
ready = threading.Event()
def daemon():
    gs = []
    for i in range(5):
        g = greenlet(lambda: getcurrent().parent.switch())
        g.switch()
        gs.append(g)
    ready.set()
    threading.Event().wait()  # block forever
t = threading.Thread(target=daemon, daemon=True)
t.start()
ready.wait(10)
say("OK: exiting with daemon thread")
""")
    assert_ok(proc, "OK: exiting with daemon thread")


def test_exit_while_daemon_thread_is_inside_a_greenlet():
    proc = run("""
import time
ready = threading.Event()
def daemon():
    def body():
        ready.set()
        while True:
            time.sleep(0.01)
    greenlet(body).switch()
t = threading.Thread(target=daemon, daemon=True)
t.start()
ready.wait(10)
say("OK: daemon running in greenlet")
""")
    assert_ok(proc, "OK: daemon running in greenlet")


def test_thread_exit_runs_cleanup_in_suspended_greenlets():
    proc = run("""
def thread_func():
    def worker():
        try:
            getcurrent().parent.switch("suspended")
        except GreenletExit:
            say("CLEANUP: GreenletExit caught")
            raise
        finally:
            say("FINALLY: cleanup executed")
    g = greenlet(worker)
    g.switch()
t = threading.Thread(target=thread_func)
t.start()
t.join()
say("OK: thread cleanup done")
""")
    assert_ok(proc, "CLEANUP: GreenletExit caught", "FINALLY: cleanup executed",
              "OK: thread cleanup done")
    out = proc.stdout.splitlines()
    assert out.index("FINALLY: cleanup executed") < out.index("OK: thread cleanup done")


def test_greenlets_dropped_across_threads_then_exit():
    proc = run("""
cross = []
def thread_worker():
    def body():
        try:
            getcurrent().parent.switch("ready")
        finally:
            say("finally-in-thread")
    for _ in range(20):
        g = greenlet(body)
        g.switch()
        cross.append(g)
t = threading.Thread(target=thread_worker)
t.start()
t.join()
cross.clear()   # dropped in main; owner thread is gone: freed, no GreenletExit
gc.collect()
say("OK: cleared")
""")
    assert_ok(proc, "OK: cleared")
    assert "finally-in-thread" not in proc.stdout


def test_greenlets_deleted_in_other_thread_while_owner_alive_then_exit():
    proc = run("""
import time
holder = []
made = threading.Event()
dropped = threading.Event()
def owner():
    def body():
        try:
            getcurrent().parent.switch()
        finally:
            say("killed in owner")
    for _ in range(5):
        g = greenlet(body); g.switch(); holder.append(g)
    del g
    made.set()
    dropped.wait(10)
    getcurrent()            # runs the deferred kills here
    say("owner done")
t = threading.Thread(target=owner)
t.start()
made.wait(10)
holder.clear()
dropped.set()
t.join()
say("OK")
""")
    assert_ok(proc, "owner done", "OK")
    assert proc.stdout.splitlines().count("killed in owner") == 5


def test_many_threads_with_greenlets_exit_repeatedly():
    proc = run("""
def work(n):
    gs = [greenlet(lambda: getcurrent().parent.switch()) for _ in range(n)]
    for g in gs:
        g.switch()
    if n % 2:
        for g in gs:
            g.switch()
for round_ in range(5):
    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts: t.start()
    for t in ts: t.join()
gc.collect()
say("OK: threads done")
""")
    assert_ok(proc, "OK: threads done")


# ---------------------------------------------------------------- atexit and finalization

def test_greenlet_api_works_in_atexit_handlers():
    proc = run("""
import atexit
gs = []
for i in range(5):
    g = greenlet(lambda: getcurrent().parent.switch("ready"))
    g.switch()
    gs.append(g)
def at_exit():
    cur = getcurrent()
    say("getcurrent type: " + type(cur).__name__)
    say("new greenlet: " + str(greenlet(lambda: 42).switch()))
    say("resume: " + str(gs[0].switch("resumed")))
    say("gettrace: " + repr(gettrace()))
atexit.register(at_exit)
say("OK: registered")
""")
    assert_ok(proc, "OK: registered", "getcurrent type: greenlet", "new greenlet: 42",
              "resume: resumed", "gettrace: None")


def test_switch_in_destructor_at_module_teardown():
    proc = run("""
import stolon
gs = []
def do_it(gs=gs):
    say("current %d" % len(gs))
    gs[0].parent.switch(1)
gs.append(greenlet(do_it))
gs.append(greenlet(do_it))
gs[1].switch()
class WithDel:
    def __del__(self, gs=gs, say=say):
        say("Destructor running")
        say("Result %s" % (gs[0].switch(),))
stolon.glet_test_with_del = WithDel()
""")
    assert_ok(proc, "Destructor running", "Result 1")


@glet_requires((3, 5, 1), "getcurrent() raises RuntimeError during finalization")
def test_getcurrent_during_gc_finalization_raises_runtime_error():
    proc = run("""
gc.disable()
class CleanupChecker:
    def __del__(self):
        try:
            getcurrent()
        except RuntimeError as e:
            os.write(1, b"GUARDED: " + str(e).encode() + b"\\n")
        else:
            os.write(1, b"UNGUARDED\\n")
gs = []
for _ in range(10):
    g = greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    gs.append(g)
a = CleanupChecker()
b = {"ref": a}
a._cycle = b
del a, b
say("OK: cycle deferred")
""")
    assert_ok(proc, "OK: cycle deferred", "GUARDED: greenlet is being finalized")


def test_settrace_in_atexit_and_tracer_at_shutdown():
    proc = run("""
import atexit
def tracer(event, args):
    pass
settrace(tracer)
g = greenlet(lambda: getcurrent().parent.switch())
g.switch()
def at_exit():
    old = settrace(None)
    say("tracer was set: %s" % (old is tracer))
atexit.register(at_exit)
say("OK")
""")
    assert_ok(proc, "OK", "tracer was set: True")


def test_main_greenlet_reference_kept_in_thread_local_at_exit():
    proc = run("""
local = threading.local()
def worker():
    local.main = getcurrent()
    local.g = greenlet(lambda: getcurrent().parent.switch())
    local.g.switch()
ts = [threading.Thread(target=worker) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
local.main = getcurrent()
say("OK")
""")
    assert_ok(proc, "OK")
