"""Greenlets deleted across threads and cleanup at thread exit.

These paths could take the interpreter down, so each case runs as a script in
a child interpreter; the script prints what happened and the test checks the
exit code and the output."""
import pytest

from conftest import glet_run_script

pytestmark = pytest.mark.glet_subprocess

PRELUDE = """
import gc, os, sys, threading, time, weakref
from stolon import greenlet, getcurrent, GreenletExit
def say(msg):
    os.write(1, (msg + "\\n").encode())
def settle():
    time.sleep(0.05)
    for _ in range(3):
        getcurrent()
        gc.collect()
"""


def run(body):
    proc = glet_run_script(PRELUDE + body)
    assert proc.returncode == 0, "rc=%s\nstdout:\n%s\nstderr:\n%s" % (
        proc.returncode, proc.stdout, proc.stderr)
    assert "Fatal Python error" not in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


def test_greenlet_dropped_in_other_thread_is_killed_in_its_own_thread():
    out = run("""
holder = []
created = threading.Event(); released = threading.Event(); cleared = threading.Event()
def body():
    try:
        getcurrent().parent.switch()
    except GreenletExit as e:
        say("killed in %s: %s" % (threading.current_thread().name, e.args[0]))
        raise
def owner():
    g = greenlet(body)
    g.switch()
    holder.append(g)
    del g
    created.set()
    released.wait(10)
    say("owner uses the API")
    greenlet()          # creating a greenlet drains the pending kills
    cleared.set()
t = threading.Thread(target=owner, name="owner-thread")
t.start()
created.wait(10)
del holder[:]           # last reference dropped here, in the main thread
gc.collect()
say("dropped in main")
released.set()
cleared.wait(10)
t.join(10)
say("done")
""")
    assert out == [
        "dropped in main",
        "owner uses the API",
        "killed in owner-thread: Killing the greenlet because all references have vanished.",
        "done",
    ]


def test_getcurrent_also_drains_pending_kills():
    out = run("""
holder = []
created = threading.Event(); released = threading.Event()
def owner():
    def body():
        try:
            getcurrent().parent.switch()
        finally:
            say("finally in " + threading.current_thread().name)
    for _ in range(3):
        g = greenlet(body); g.switch(); holder.append(g)
    del g
    created.set()
    released.wait(10)
    say("before getcurrent")
    getcurrent()
    say("after getcurrent")
t = threading.Thread(target=owner, name="owner")
t.start()
created.wait(10)
holder.clear()
released.set()
t.join(10)
""")
    assert out == ["before getcurrent"] + ["finally in owner"] * 3 + ["after getcurrent"]


def test_dropped_in_other_thread_then_owner_exits_without_api_call():
    # Still on the owner's pending list when the owner thread ends: freed
    # without GreenletExit, so neither except nor finally runs.
    out = run("""
holder = []
made = threading.Event(); dropped = threading.Event()
def owner():
    def body():
        try:
            getcurrent().parent.switch()
        except GreenletExit:
            say("GreenletExit")
            raise
        finally:
            say("finally")
    g = greenlet(body); g.switch(); holder.append(g); del g
    made.set()
    dropped.wait(10)
    say("owner exits")
t = threading.Thread(target=owner)
t.start()
made.wait(10)
holder.clear()
gc.collect()
dropped.set()
t.join(10)
settle()
say("main done")
""")
    assert out == ["owner exits", "main done"]


def test_thread_exit_kills_its_unreferenced_suspended_greenlets():
    out = run("""
def worker():
    try:
        getcurrent().parent.switch("suspended")
    except GreenletExit:
        say("GreenletExit in " + threading.current_thread().name)
        raise
    finally:
        say("finally")
def thread_main():
    gs = [greenlet(worker) for _ in range(2)]
    for g in gs:
        g.switch()
    say("thread returns")
t = threading.Thread(target=thread_main, name="worker-thread")
t.start()
t.join(10)
settle()
say("joined")
""")
    assert out == ["thread returns"] + ["GreenletExit in worker-thread", "finally"] * 2 + ["joined"]


def test_greenlet_of_dead_thread_is_freed_without_greenletexit():
    out = run("""
box = []
def thread_main():
    def w():
        try:
            getcurrent().parent.switch()
        finally:
            say("finally")
    g = greenlet(w)
    g.switch()
    box.append(g)
t = threading.Thread(target=thread_main)
t.start()
t.join(10)
settle()
ref = weakref.ref(box[0])
say("dead=%s active=%s frame=%s" % (box[0].dead, bool(box[0]), box[0].gr_frame))
box.clear()
gc.collect()
say("collected=%s" % (ref() is None))
""")
    assert out == ["dead=True active=False frame=None", "collected=True"]


def test_thread_main_greenlets_are_released_after_exit():
    out = run("""
refs = []
def worker():
    cur = getcurrent()
    cur.others = []
    for _ in range(2):
        greenlet(lambda: cur.others.append(getcurrent())).switch()
    refs.append(weakref.ref(cur))
for _ in range(3):
    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
settle()
t = threading.Thread(target=lambda: time.sleep(0.001))  # recycle a thread
t.start(); t.join(10)
settle()
say("released=%s" % [r() is None for r in refs])
""")
    assert out == ["released=[True, True, True]"]


def test_subclass_refcount_after_cross_thread_kills():
    # python-greenlet/greenlet#245: killing subclass instances dropped in
    # other threads must not lose or leak references to the subclass.
    out = run("""
class MyGreenlet(greenlet):
    pass
glets = []
cleared = threading.Event()
def greenlet_main():
    getcurrent().parent.switch()
def thread_main(ready):
    mine = MyGreenlet(greenlet_main)
    glets.append(mine)
    mine.switch()
    del mine
    ready.set()
    cleared.wait(10)
    getcurrent()
initial = sys.getrefcount(MyGreenlet)
events, threads = [], []
for _ in range(initial + 20):
    ev = threading.Event()
    t = threading.Thread(target=thread_main, args=(ev,))
    events.append(ev); threads.append(t)
    t.start()
for ev in events:
    ev.wait(10)
del glets[:]
cleared.set()
for t in threads:
    t.join(10)
settle()
say("refcount same: %s" % (sys.getrefcount(MyGreenlet) == initial))
""")
    assert out == ["refcount same: True"]


def test_concurrent_cross_thread_drops_stress():
    out = run("""
N_THREADS, PER_THREAD = 6, 30
killed = []
lock = threading.Lock()
shared = []
all_made = threading.Barrier(N_THREADS + 1)
dropped = threading.Event()
def body():
    try:
        getcurrent().parent.switch()
    except GreenletExit:
        with lock:
            killed.append(threading.current_thread().name)
        raise
def owner(i):
    mine = []
    for _ in range(PER_THREAD):
        g = greenlet(body); g.switch(); mine.append(g)
    with lock:
        shared.extend(mine)
    del mine, g
    all_made.wait(10)
    dropped.wait(10)
    for _ in range(3):
        greenlet()
        time.sleep(0.001)
ts = [threading.Thread(target=owner, args=(i,), name="t%d" % i) for i in range(N_THREADS)]
for t in ts: t.start()
all_made.wait(10)
shared.clear()
gc.collect()
dropped.set()
for t in ts: t.join(10)
settle()
counts = sorted(set(killed.count(t.name) for t in ts))
say("killed=%d per_thread=%s main=%d" % (len(killed), counts, killed.count("MainThread")))
""")
    assert out == ["killed=180 per_thread=[30] main=0"]


def test_main_greenlet_of_other_thread_kept_alive_by_reference():
    out = run("""
box = []
def worker():
    box.append(getcurrent())
    box.append(greenlet(lambda: None))   # unstarted, parent = worker's main
t = threading.Thread(target=worker)
t.start(); t.join(10)
settle()
m, u = box
say("main dead=%s parent-is-main=%s" % (m.dead, u.parent is m))
try:
    u.switch()
except Exception as e:
    say("%s: %s" % (type(e).__name__, e))
""")
    assert out == [
        "main dead=True parent-is-main=True",
        "error: cannot switch to a different thread (which happens to have exited)",
    ]
