"""Random calls into stolon's C types (loops, every watcher kind, greenlets,
Waiter, HubBase, the _core functions) with odd arguments and in odd orders:

    python fuzz_core_api.py SEED OPERATIONS [LOG]

Python exceptions are the expected outcome of most calls; the interpreter must
survive every one of them and exit 0.  LOG gets one line per operation, so the
last line of a crashed run names the call that crashed it.  Run by
tests/test_core_fuzz.py; by hand, many seeds at a time, to look for crashes.
"""
import gc
import os
import random
import socket
import sys

import stolon._core as C

seed = int(sys.argv[1])
nops = int(sys.argv[2])
log = open(sys.argv[3], "w") if len(sys.argv) > 3 else None
rng = random.Random(seed)
GLET_EXIT = C.GreenletExit

r, w = os.pipe()
sa, sb = socket.socketpair()
closed_fd = os.dup(r)
os.close(closed_fd)


class Weird:
    """Fails every conversion and comparison."""

    def __index__(self):
        raise RuntimeError("index")

    def __float__(self):
        raise RuntimeError("float")

    def __int__(self):
        raise RuntimeError("int")

    def __bool__(self):
        raise RuntimeError("bool")

    def __eq__(self, other):
        raise RuntimeError("eq")

    __hash__ = object.__hash__

    def __call__(self, *a, **k):
        raise RuntimeError("call")


def cb(*args):
    """A callback that sometimes raises and sometimes makes more calls (re-entrancy)."""
    pick = rng.random()
    if pick < 0.1:
        raise ValueError("cb")
    if pick < 0.2:
        do_ops(2)
    return None


VALUES = [None, 0, 1, -1, 2, 3, 7, 255, 2**31, -2**31, 2**63, -2**63 - 1, 2**100, 0.0, -0.5, 1e-9,
          float("nan"), float("inf"), -float("inf"), 1e300, "", "x", b"", b"xx", bytearray(4),
          memoryview(b"abc"), (), [], {}, object(), Weird(), cb, print, len, r, w, sa.fileno(),
          closed_fd, 10**6, sa, sb, True, False, 0.001, 0.01, type, Exception, C.GreenletExit,
          C.GreenletExit(), ValueError("v"), KeyboardInterrupt]

objects = [C]


def val():
    if objects and rng.random() < 0.25:
        return rng.choice(objects)
    return rng.choice(VALUES)


def args(n=None):
    n = rng.randint(0, 4) if n is None else n
    return [val() for _ in range(n)]


def kwargs():
    if rng.random() < 0.8:
        return {}
    names = ["ref", "priority", "after", "repeat", "events", "default", "run", "parent", "trace",
             "nowait", "once", "update", "how", "fd", "pid", "signum", "x"]
    return {rng.choice(names): val() for _ in range(rng.randint(1, 2))}


FACTORIES = [
    lambda: C.loop(default=False),
    lambda: C.loop(rng.choice(["epoll", "poll", "bogus", None]), default=False),
    lambda: C.greenlet(rng.choice([cb, None, Weird(), print]), rng.choice([None, C.getcurrent()])),
    lambda: C.Waiter(),
    lambda: C.Waiter(rng.choice([None] + [o for o in objects if isinstance(o, C.HubBase)])),
    lambda: C.HubBase(),
]
WATCHER_KINDS = ["io", "timer", "signal", "idle", "prepare", "check", "fork", "async_", "child"]
DUNDERS = ("__call__", "__enter__", "__exit__", "__bool__", "__repr__")


def say(*parts):
    if log:
        log.write(" ".join(repr(p)[:80] for p in parts) + "\n")
        log.flush()


def do_ops(n):
    for _ in range(n):
        roll = rng.random()
        try:
            if roll < 0.08:
                f = rng.choice(FACTORIES)
                say("make", f)
                objects.append(f())
            elif roll < 0.14 and len(objects) > 40:
                # dropped objects are collected, active watchers and suspended
                # greenlets among them
                say("drop")
                del objects[rng.randrange(1, len(objects))]
                if rng.random() < 0.3:
                    gc.collect()
            elif roll < 0.3:
                loops = [o for o in objects if isinstance(o, C.loop)]
                if loops:
                    lp = rng.choice(loops)
                    kind = rng.choice(WATCHER_KINDS)
                    good = {"io": [rng.choice([r, w, sa.fileno(), sb.fileno()]), rng.choice([1, 2, 3])],
                            "timer": [rng.choice([0, 0.001, 0.01])], "signal": [rng.choice([10, 12, 1])],
                            "child": [rng.choice([os.getpid(), 1, 0, -1])]}.get(kind, [])
                    a = good if rng.random() < 0.7 else args(rng.randint(0, 3))
                    say("watcher", kind, a)
                    objects.append(getattr(lp, kind)(*a, **kwargs()))
            else:
                o = rng.choice(objects)
                names = [n for n in dir(o) if not n.startswith("__") or n in DUNDERS]
                name = rng.choice(names)
                if name in ("run",) and isinstance(o, C.loop):
                    a, k = [], {"nowait": True}
                elif name == "sleep" and o is C:
                    continue        # a long sleep is a legitimate hang
                elif name in ("switch", "throw", "run", "wait", "get") and rng.random() < 0.3:
                    continue
                elif name == "start" and rng.random() < 0.7:
                    a, k = [cb] + args(rng.randint(0, 2)), {}
                else:
                    a, k = args(), kwargs()
                if rng.random() < 0.3 and o is not C:
                    say("set", type(o).__name__, name)
                    setattr(o, name, val())
                else:
                    attr = getattr(o, name)
                    say("call", type(o).__name__, name, a, k)
                    if callable(attr):
                        attr(*a, **k)
        except (Exception, GLET_EXIT, KeyboardInterrupt):
            pass
        except SystemExit:
            pass


do_ops(nops)
say("end")
objects.clear()
gc.collect()
print("ok", seed)
