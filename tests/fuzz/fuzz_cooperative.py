"""Differential fuzzer for the cooperative layer (greenlets, Timeout, events, locks,
queues, pools, locals): from a seed, write a random but deterministic program that
uses only gevent's public API through ``import X as gevent``, run it under stolon and
under gevent, and compare what each run observed.

    python fuzz_cooperative.py --seeds 0-500 [--ops N] [--unit SECONDS] [--show SEED]
                               [--stolon-only] [--python PATH] [--jobs N]

Every operation of a program appends to a trace what it saw (return values,
exception types and messages, greenlet states, queue sizes); the program prints the
trace as JSON.  A difference between the two traces, or between the exception lines
the hub printed, prints the seed, the program and the first differing line.  A signal
exit, a hang or an unexpected error printed under stolon is always reported.
``--stolon-only`` runs each program twice under stolon and reports any difference
between the two runs (what CI can check without gevent installed).

Determinism: every program draws its timer durations from one shuffled pool of
distinct powers of two (times ``--unit``) plus a single zero, each used at most once.
A greenlet's wake-up time is a sum of the timers on its causal chain, so no two
timers of one program can come due at the same moment (libev does not order equal
deadlines), and any two differ by at least one unit.  Once the pool is empty,
blocking operations either wait without a timeout (in spawned greenlets) or take
their non-blocking form (in the main greenlet, which must never wait for ever on a
program that still has timers pending).
"""
import argparse
import difflib
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _stolon_path():
    # the sys.path entry of the stolon this interpreter imports (an installed
    # wheel in CI), else this checkout's src/
    spec = importlib.util.find_spec("stolon")
    if spec is not None and spec.origin:
        return os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))
    return os.path.join(os.path.dirname(os.path.dirname(HERE)), "src")


SRC = _stolon_path()

PRELUDE = '''\
import json
import sys
import {mod} as gevent
from {mod} import event, local, lock, pool, queue

T = []
G = {{}}
LABELS = {{}}
OWNED = set()
KEEP = []
MAIN = gevent.getcurrent()


class Boom(Exception):
    """Raised on purpose by generated code."""


class Kill(Exception):
    """Thrown into greenlets by kill(); never caught by an operation."""


class TExc(Exception):
    """The exception of a Timeout block; never caught by an operation."""


PASS = (gevent.GreenletExit, Kill, TExc)


class Absent(Exception):
    """A greenlet label whose spawn has not run (or that names the caller)."""


def R(*parts):
    T.append(" ".join(str(p) for p in parts))


def N(v):
    if isinstance(v, BaseException):
        name = type(v).__name__
        if name in ("LoopExit", "InvalidSwitchError", "ConcurrentObjectUseError"):
            return name
        return "%s(%s)" % (name, v)
    if isinstance(v, type):
        return v.__name__
    if v is None or isinstance(v, (bool, int, float, str)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(N(x) for x in v) + "]"
    label = LABELS.get(id(v))
    if label is not None:
        return label
    return type(v).__name__


def BAD(*parts):
    R("INVARIANT", *parts)


def S(g):
    ready, ok, dead = g.ready(), g.successful(), g.dead
    if (ok and not ready) or (ready and not dead) or (ok and g.exception is not None):
        BAD("greenlet", ready, ok, dead, N(g.exception))
    return "r%d s%d d%d st%d b%d v=%s e=%s" % (
        ready, ok, dead, g.started, bool(g), N(g.value), N(g.exception))


def QSTATE(q):
    n = q.qsize()
    state = (n, q.empty(), q.full(), len(q))
    bounded = q.maxsize is not None and q.maxsize > 0
    if n < 0 or state[1] != (n == 0) or state[3] != n or (bounded and (n > q.maxsize or state[2] != (n == q.maxsize))):
        BAD("queue", N(state), q.maxsize)
    return state


def CUR():
    c = gevent.getcurrent()
    return "main" if c is MAIN else LABELS.get(id(c), "?")


def REG(label, obj):
    G[label] = obj
    LABELS[id(obj)] = label
    return obj


def OWN(obj):
    OWNED.add(id(obj))
    KEEP.append(obj)
    return obj


def GL(label):
    g = G.get(label)
    if g is None or g is gevent.getcurrent():
        raise Absent(label)
    return g


def GLS(*labels):
    return [G[l] for l in labels if l in G and G[l] is not gevent.getcurrent()]


KILLED = set()


def MARK(g):
    """``g`` is about to get an exception thrown in: let its Kill end it."""
    KILLED.add(id(g))
    return g


def MARKS(glets):
    for g in glets:
        KILLED.add(id(g))
    return glets


def PASSES(e):
    """Whether an operation lets ``e`` through instead of recording it.  A Kill passes
    only in a greenlet something tried to kill; elsewhere it is the result re-raised
    by get(), joinall(raise_error=True) and the like."""
    if isinstance(e, Kill):
        return id(gevent.getcurrent()) in KILLED
    return isinstance(e, PASS) or id(e) in OWNED


def OP(tag, f):
    try:
        R(tag, "=", N(f()))
    except BaseException as e:
        if PASSES(e):
            raise
        R(tag, "!", N(e))


def MINE(e, own):
    return not isinstance(e, gevent.GreenletExit) and e is own


def ON_LINK(tag):
    def on_link(g):
        R(tag, "link", CUR(), N(g), S(g))
    return on_link


def DISCARD(p, g):
    # gevent's Pool.discard releases a slot even for a greenlet that is not a member,
    # so the pool grows past its size; stolon does not (findings.md): discard members only.
    if g not in p:
        return "not a member"
    return p.discard(g)


def ON_VALUE(tag):
    def on_value(v):
        R(tag, "value", CUR(), N(v))
    return on_value


def BAD_LINK(g):
    raise Boom("link")


def MAPPED(x):
    gevent.sleep(0)
    R("mapped", x, CUR() != "main")
    if x % 5 == 3:
        raise Boom("m%d" % x)
    return x * 10


def ITER(tag, it):
    out = []
    try:
        for x in it:
            out.append(N(x))
    except BaseException as e:
        if PASSES(e):
            raise
        out.append("!" + N(e))
    return out


class Loc(local.local):
    def __init__(self, *args):
        self.owner = CUR()
        self.args = args
'''

EPILOGUE = '''\

def finish():
    for label in sorted(G):
        R("end", label, S(G[label]))
    glets = [G[l] for l in sorted(G)]
    OP("end-killall", lambda: gevent.killall(glets))
    for label in sorted(G):
        R("dead", label, S(G[label]), G[label].dead)
        if not G[label].dead:
            BAD("alive after killall", label)
    for name, obj in sorted(OBJECTS.items()):
        R("obj", name, DESCRIBE(obj))
        if isinstance(obj, (lock.Semaphore, lock.BoundedSemaphore)):
            if obj.counter < 0 or (isinstance(obj, lock.BoundedSemaphore) and obj.counter > INITIAL[name]):
                BAD("semaphore", name, obj.counter, INITIAL[name])
        if isinstance(obj, queue.Queue) and not isinstance(obj, queue.Channel):
            QSTATE(obj)
            if getattr(obj, "unfinished_tasks", 0) < 0:
                BAD("unfinished", name)
    for p in POOLS:
        OP("end-poolkill", lambda: p.kill())
        R("pool", len(p))
        if len(p):
            BAD("pool not empty after kill", len(p))


def DESCRIBE(obj):
    if isinstance(obj, (lock.Semaphore, lock.BoundedSemaphore)):
        return "counter=%d locked=%d" % (obj.counter, obj.locked())
    if isinstance(obj, event.AsyncResult):
        return "ready=%d value=%s exc=%s" % (obj.ready(), N(obj.value), N(obj.exception))
    if isinstance(obj, event.Event):
        return "set=%d" % obj.is_set()
    if isinstance(obj, queue.Channel):
        return "balance=%d" % obj.balance
    if isinstance(obj, queue.Queue):
        return "qsize=%d unfinished=%s" % (obj.qsize(), getattr(obj, "unfinished_tasks", "-"))
    if isinstance(obj, pool.Group):
        return "len=%d" % len(obj)
    return type(obj).__name__


main()
finish()
print(json.dumps(T))
'''

QUEUE_KINDS = ["Queue", "LifoQueue", "PriorityQueue", "JoinableQueue"]
KILL_EXCS = ["Kill", "Kill('k')", "gevent.GreenletExit", "Kill(1, 2)"]


class Program:
    """Writes the source of one random program; ``source(mod)`` names the module."""

    def __init__(self, seed, ops=30, unit=0.003, timed=True):
        self.rng = random.Random(seed)
        self.seed = seed
        self.ops_left = ops
        self.unit = unit
        powers = [2 ** i for i in range(6)]
        self.rng.shuffle(powers)
        self.timers = [0] + powers
        self.rng.shuffle(self.timers)
        if not timed:
            # Untimed programs order everything by callbacks alone, so their traces
            # do not depend on how fast the machine is (what CI can compare).
            self.timers = []
        self.nid = 0
        self.defs = []
        self.labels = []
        self.unstarted = []
        self.objects = {}
        self.make_objects()
        self.main_body = self.body(depth=0, main=True, count=ops)
        # Let everything timed finish: all timers of a program add up to 63 units.
        if self.rng.random() < 0.5:
            self.main_body.append(self.opline("gevent.sleep(%r)" % round(66 * unit, 6)))
        else:
            self.main_body.append(self.opline("gevent.wait()"))

    # -- helpers -----------------------------------------------------------
    def new_id(self, prefix):
        self.nid += 1
        return "%s%d" % (prefix, self.nid)

    def pick(self, kind):
        names = [n for n, k in self.objects.items() if k == kind]
        return self.rng.choice(names) if names else None

    def take_timer(self):
        if not self.timers:
            return None
        return repr(round(self.timers.pop() * self.unit, 6))

    def timeout(self, main):
        """A timeout literal, 'None' (wait for ever), or '' (use the non-blocking form)."""
        if self.timers and self.rng.random() < 0.6:
            return self.take_timer()
        if not main and self.rng.random() < 0.8:
            return "None"
        return ""

    def glabel(self):
        return self.rng.choice(self.labels) if self.labels else None

    def make_objects(self):
        rng = self.rng
        specs = []
        for _ in range(rng.randint(1, 2)):
            specs.append(("Event", "event.Event()"))
        for _ in range(rng.randint(0, 2)):
            specs.append(("AsyncResult", "event.AsyncResult()"))
        for _ in range(rng.randint(0, 2)):
            kind = rng.choice(["Semaphore", "BoundedSemaphore", "RLock"])
            arg = "" if kind == "RLock" else str(rng.randint(0, 2))
            specs.append(("Lock", "lock.%s(%s)" % (kind, arg)))
        for _ in range(rng.randint(0, 2)):
            kind = rng.choice(QUEUE_KINDS + ["Channel"])
            if kind == "Channel":
                specs.append(("Queue", "queue.Channel()"))
            else:
                size = rng.choice(["", "1", "2", "3", "None"])
                specs.append(("Queue", "queue.%s(%s)" % (kind, size)))
        for _ in range(rng.randint(0, 1)):
            if rng.random() < 0.6:
                specs.append(("Pool", "pool.Pool(%d)" % rng.randint(1, 3)))
            else:
                specs.append(("Pool", "pool.Group()"))
        for _ in range(rng.randint(0, 1)):
            specs.append(("Local", rng.choice(["local.local()", "Loc(1)"])))
        self.object_lines = []
        for i, (kind, expr) in enumerate(specs):
            name = "%s%d" % (kind[0] if kind != "AsyncResult" else "A", i)
            self.objects[name] = kind
            self.object_lines.append("%s = %s" % (name, expr))

    # -- program structure -------------------------------------------------
    def body(self, depth, main, count):
        lines = []
        for _ in range(count):
            if self.ops_left <= 0 and lines:
                break
            self.ops_left -= 1
            lines.extend(self.op(depth, main))
        return lines or ["pass"]

    def func(self, depth):
        """Define a greenlet function; return its name."""
        name = self.new_id("f")
        lines = ["def %s(*args):" % name, "    R('%s', 'start', CUR(), N(args))" % name]
        inner = self.body(depth + 1, False, self.rng.randint(1, 5))
        lines.extend("    " + l for l in inner)
        end = self.rng.random()
        if end < 0.2:
            lines.append("    raise Boom('%s')" % name)
        else:
            lines.append("    R('%s', 'return')" % name)
            lines.append("    return '%s'" % name)
        self.defs.append(lines)
        return name

    def op(self, depth, main):
        rng = self.rng
        choices = [
            (8, self.op_sleep), (6, self.op_spawn), (5, self.op_greenlet), (3, self.op_group_calls),
            (4, self.op_timeout_block), (2, self.op_with_timeout),
            (5, self.op_event), (5, self.op_lock), (6, self.op_queue), (4, self.op_pool),
            (2, self.op_local), (2, self.op_start),
        ]
        if depth >= 3:
            choices = [c for c in choices if c[1] not in (self.op_spawn, self.op_timeout_block)]
        total = sum(w for w, _ in choices)
        x = rng.random() * total
        for w, f in choices:
            x -= w
            if x < 0:
                return f(depth, main)
        return self.op_sleep(depth, main)

    def opline(self, expr):
        return "OP('%s', lambda: %s)" % (self.new_id("o"), expr)

    # -- operations --------------------------------------------------------
    def op_sleep(self, depth, main):
        r = self.rng.random()
        if r < 0.55 or not self.timers:
            # Only the main greenlet idles, so that at most one idle watcher is ever
            # active: libev runs several pending idle watchers last-fed first (in the
            # order of its internal array), stolon in the order they became pending
            # (docs/loop.md, step 10) -- a deliberate difference, see findings.
            calls = ["gevent.sleep(0)", "gevent.sleep()"] + (["gevent.idle()"] if main else [])
            return [self.opline(self.rng.choice(calls))]
        if r < 0.65:
            return [self.opline("CUR()")]
        return [self.opline("gevent.sleep(%s)" % self.take_timer())]

    def op_spawn(self, depth, main):
        rng = self.rng
        label = self.new_id("g")
        f = self.func(depth)
        arg = "'%s'" % label
        r = rng.random()
        if r < 0.45:
            expr = "gevent.spawn(%s, %s)" % (f, arg)
        elif r < 0.6 and self.timers:
            expr = "gevent.spawn_later(%s, %s, %s)" % (self.take_timer(), f, arg)
        elif r < 0.75:
            cls = self.new_id("K")
            self.defs.append([
                "class %s(gevent.Greenlet):" % cls,
                "    def __init__(self, label):",
                "        gevent.Greenlet.__init__(self)",
                "        self.label = label",
                "",
                "    def _run(self):",
                "        return %s(self.label)" % f,
            ])
            expr = "%s.spawn(%s)" % (cls, arg)
        elif r < 0.85:
            expr = "gevent.Greenlet(%s, %s)" % (f, arg)
            self.unstarted.append(label)
        else:
            p = self.pick("Pool")
            if p is None:
                expr = "gevent.spawn(%s, %s)" % (f, arg)
            else:
                expr = "%s.spawn(%s, %s)" % (p, f, arg)
        lines = ["_g = REG('%s', %s)" % (label, expr), "R('%s', 'spawned', S(_g))" % label]
        self.labels.append(label)
        r = rng.random()
        if r < 0.15:
            lines.append("_g.link(ON_LINK('%s'))" % self.new_id("l"))
        elif r < 0.25:
            lines.append("_g.link_value(ON_LINK('%s'))" % self.new_id("l"))
        elif r < 0.35:
            lines.append("_g.link_exception(ON_LINK('%s'))" % self.new_id("l"))
        elif r < 0.40:
            a = self.pick("AsyncResult")
            if a:
                lines.append("_g.link(%s)" % a)
        elif r < 0.42:
            lines.append("_g.link(BAD_LINK)")
        return lines

    def op_start(self, depth, main):
        if not self.unstarted:
            return self.op_sleep(depth, main)
        label = self.rng.choice(self.unstarted)
        if self.timers and self.rng.random() < 0.4:
            return [self.opline("GL('%s').start_later(%s)" % (label, self.take_timer()))]
        return [self.opline("GL('%s').start()" % label)]

    def op_greenlet(self, depth, main):
        rng = self.rng
        label = self.glabel()
        if label is None:
            return self.op_spawn(depth, main)
        g = "GL('%s')" % label
        r = rng.random()
        if r < 0.2:
            return [self.opline("S(%s)" % g)]
        if r < 0.4:
            t = self.timeout(main)
            if t == "":
                return [self.opline("S(%s)" % g)]
            return [self.opline("(%s.join(%s), S(%s))" % (g, t, g))]
        if r < 0.55:
            t = self.timeout(main)
            if t == "":
                return [self.opline("%s.get(block=False)" % g)]
            return [self.opline("%s.get(timeout=%s)" % (g, t))]
        if r < 0.8:
            exc = rng.choice(KILL_EXCS)
            block = rng.random() < 0.6
            if block:
                t = self.timeout(main)
                targ = "" if t in ("", "None") else ", timeout=%s" % t
                if t == "" and main:
                    block = False
            else:
                targ = ""
            if rng.random() < 0.2:
                return [self.opline("gevent.kill(MARK(%s), %s)" % (g, exc))]
            return [self.opline("(MARK(%s).kill(%s, block=%s%s), S(%s))" % (g, exc, block, targ, g))]
        if r < 0.9:
            return [self.opline("%s.unlink(BAD_LINK)" % g)]
        return [self.opline("%s.link(ON_LINK('%s'))" % (g, self.new_id("l")))]

    def glist(self):
        if not self.labels:
            return None
        k = self.rng.randint(1, min(4, len(self.labels)))
        return "GLS(%s)" % ", ".join("'%s'" % l for l in self.rng.sample(self.labels, k))

    def op_group_calls(self, depth, main):
        rng = self.rng
        gl = self.glist()
        if gl is None:
            return self.op_spawn(depth, main)
        t = self.timeout(main)
        r = rng.random()
        if t == "":
            if r < 0.5:
                return [self.opline("gevent.killall(MARKS(%s), block=False)" % gl)]
            return [self.opline("[S(x) for x in %s]" % gl)]
        if r < 0.25:
            count = rng.choice(["None", "1", "2"])
            return [self.opline("gevent.joinall(%s, timeout=%s, raise_error=%s, count=%s)"
                                % (gl, t, rng.random() < 0.3, count))]
        if r < 0.45:
            exc = rng.choice(KILL_EXCS)
            return [self.opline("gevent.killall(MARKS(%s), %s, block=True, timeout=%s)" % (gl, exc, t))]
        if r < 0.65:
            count = rng.choice(["None", "1", "2"])
            return [self.opline("gevent.wait(%s, timeout=%s, count=%s)" % (gl, t, count))]
        if r < 0.8:
            count = rng.choice(["None", "1"])
            return [self.opline("ITER('it', gevent.iwait(%s, timeout=%s, count=%s))" % (gl, t, count))]
        return [self.opline("[S(x) for x in %s]" % gl)]

    def op_timeout_block(self, depth, main):
        rng = self.rng
        t = self.take_timer()
        if t is None:
            return self.op_sleep(depth, main)
        tid = self.new_id("t")
        inner = self.body(depth + 1, main, rng.randint(1, 3))
        kind = rng.random()
        if kind < 0.2:
            lines = ["with OWN(gevent.Timeout(%s, False)) as %s:" % (t, tid)]
            lines += ["    " + l for l in inner]
            lines.append("R('%s', 'after', %s.pending)" % (tid, tid))
            return lines
        if kind < 0.5:
            setup = "%s = OWN(gevent.Timeout(%s))" % (tid, t)
            own = tid
        elif kind < 0.7:
            setup = "%s = gevent.Timeout(%s, OWN(TExc('%s')))" % (tid, t, tid)
            own = "%s.exception" % tid
        else:
            # start_new / cancel, possibly with an inner operation after cancel
            setup = "%s = OWN(gevent.Timeout.start_new(%s))" % (tid, t)
            lines = [setup, "try:"]
            lines += ["    " + l for l in inner]
            lines += ["    R('%s', 'body-done', %s.pending)" % (tid, tid),
                      "except BaseException as e:",
                      "    if not MINE(e, %s):" % tid,
                      "        raise",
                      "    R('%s', 'fired', N(e))" % tid,
                      "finally:",
                      "    %s.%s()" % (tid, rng.choice(["cancel", "close"])),
                      "R('%s', 'pending', %s.pending)" % (tid, tid)]
            return lines
        lines = [setup, "try:", "    with %s:" % tid]
        lines += ["        " + l for l in inner]
        lines += ["    R('%s', 'done')" % tid,
                  "except BaseException as e:",
                  "    if not MINE(e, %s):" % own,
                  "        raise",
                  "    R('%s', 'fired', N(e))" % tid]
        return lines

    def blocking_call(self, main):
        """An expression that may block (for with_timeout), with no timer of its own."""
        rng = self.rng
        choices = ["gevent.sleep, 0"]
        for name, kind in self.objects.items():
            if kind == "Event":
                choices.append("%s.wait" % name)
            elif kind == "AsyncResult":
                choices.append("%s.get" % name)
            elif kind == "Queue":
                choices.append("%s.get" % name)
            elif kind == "Lock":
                choices.append("%s.acquire" % name)
        return rng.choice(choices)

    def op_with_timeout(self, depth, main):
        t = self.take_timer()
        if t is None:
            return self.op_sleep(depth, main)
        call = self.blocking_call(main)
        if self.rng.random() < 0.6:
            return [self.opline("gevent.with_timeout(%s, %s, timeout_value='tv')" % (t, call))]
        return [self.opline("gevent.with_timeout(%s, %s)" % (t, call))]

    def op_event(self, depth, main):
        rng = self.rng
        a = self.pick("AsyncResult")
        if a is not None and rng.random() < 0.5:
            r = rng.random()
            if r < 0.25:
                return [self.opline("%s.set('%s')" % (a, self.new_id("v")))]
            if r < 0.35:
                return [self.opline("%s.set_exception(Boom('%s'))" % (a, self.new_id("x")))]
            if r < 0.55:
                t = self.timeout(main)
                if t == "":
                    return [self.opline("%s.get(block=False)" % a)]
                return [self.opline("%s.get(timeout=%s)" % (a, t))]
            if r < 0.7:
                t = self.timeout(main)
                if t == "":
                    return [self.opline("%s.get_nowait()" % a)]
                return [self.opline("%s.wait(%s)" % (a, t))]
            return [self.opline("(%s.ready(), %s.successful(), %s.value, %s.exception)" % (a, a, a, a))]
        e = self.pick("Event")
        r = rng.random()
        if r < 0.35:
            return [self.opline("%s.set()" % e)]
        if r < 0.5:
            return [self.opline("%s.clear()" % e)]
        if r < 0.85:
            t = self.timeout(main)
            if t == "":
                return [self.opline("%s.is_set()" % e)]
            return [self.opline("%s.wait(%s)" % (e, t))]
        return [self.opline("(%s.is_set(), %s.ready())" % (e, e))]

    def op_lock(self, depth, main):
        rng = self.rng
        s = self.pick("Lock")
        if s is None:
            return self.op_event(depth, main)
        r = rng.random()
        if r < 0.35:
            t = self.timeout(main)
            if t == "":
                return [self.opline("%s.acquire(blocking=False)" % s)]
            if t == "None":
                return [self.opline("%s.acquire()" % s)]
            return [self.opline("%s.acquire(timeout=%s)" % (s, t))]
        if r < 0.65:
            return [self.opline("%s.release()" % s)]
        if r < 0.75:
            return [self.opline("%s.locked()" % s)]
        if r < 0.85 and depth < 3:
            t = self.timeout(main)
            if t in ("", "None") and main:
                return [self.opline("%s.locked()" % s)]
            inner = self.body(depth + 1, main, rng.randint(1, 2))
            wid = self.new_id("w")
            # leaving the block releases, which fails if someone over-released meanwhile
            return (["try:", "    with %s:" % s] + ["        " + l for l in inner] +
                    ["except BaseException as e:",
                     "    if PASSES(e):",
                     "        raise",
                     "    R('%s', '!', N(e))" % wid])
        if r < 0.92:
            return [self.opline("getattr(%s, 'counter', '-')" % s)]
        t = self.timeout(main)
        if t == "":
            return [self.opline("%s.locked()" % s)]
        return [self.opline("%s.wait(%s)" % (s, t))]

    def op_queue(self, depth, main):
        rng = self.rng
        q = self.pick("Queue")
        if q is None:
            return self.op_event(depth, main)
        item = self.nid % 17
        self.nid += 1
        r = rng.random()
        if r < 0.3:
            t = self.timeout(main)
            if t == "":
                return [self.opline("%s.put_nowait(%d)" % (q, item))]
            if t == "None":
                return [self.opline("%s.put(%d)" % (q, item))]
            return [self.opline("%s.put(%d, timeout=%s)" % (q, item, t))]
        if r < 0.6:
            t = self.timeout(main)
            if t == "":
                return [self.opline("%s.get_nowait()" % q)]
            if t == "None":
                return [self.opline("%s.get()" % q)]
            return [self.opline("%s.get(True, %s)" % (q, t))]
        if r < 0.65:
            t = self.timeout(main)
            if t == "":
                return [self.opline("%s.peek(False)" % q)]
            return [self.opline("%s.peek(timeout=%s)" % (q, t))]
        if r < 0.75:
            return [self.opline("QSTATE(%s)" % q)]
        if r < 0.85:
            return [self.opline("%s.task_done()" % q)]
        if r < 0.92:
            t = self.timeout(main)
            if t == "":
                return [self.opline("getattr(%s, 'unfinished_tasks', '-')" % q)]
            return [self.opline("%s.join(%s)" % (q, t))]
        if r < 0.95:
            return [self.opline("%s.shutdown(%s)" % (q, rng.random() < 0.5))]
        return [self.opline("ITER('qi', (%s.get_nowait() for _ in range(2)))" % q)]

    def op_pool(self, depth, main):
        rng = self.rng
        p = self.pick("Pool")
        if p is None:
            return self.op_queue(depth, main)
        items = "range(%d)" % rng.randint(0, 5)
        r = rng.random()
        if r < 0.15:
            return [self.opline("%s.map(MAPPED, %s)" % (p, items))]
        if r < 0.3:
            return [self.opline("ITER('imap', %s.%s(MAPPED, %s))"
                                % (p, rng.choice(["imap", "imap_unordered"]), items))]
        if r < 0.4:
            label = self.new_id("g")
            self.labels.append(label)
            return ["_g = REG('%s', %s.apply_async(MAPPED, (%d,), callback=ON_VALUE('%s')))"
                    % (label, p, rng.randint(0, 6), self.new_id("c")),
                    "R('%s', 'spawned', S(_g))" % label]
        if r < 0.5:
            return [self.opline("%s.apply(MAPPED, (%d,))" % (p, rng.randint(0, 6)))]
        if r < 0.6:
            t = self.timeout(main)
            if t == "":
                return [self.opline("(len(%s), %s.free_count(), %s.full())" % (p, p, p))]
            return [self.opline("%s.join(timeout=%s, raise_error=%s)" % (p, t, rng.random() < 0.3))]
        if r < 0.7:
            t = self.timeout(main)
            if t == "":
                return [self.opline("%s.kill(block=False)" % p)]
            if t == "None":
                return [self.opline("%s.kill()" % p)]
            return [self.opline("%s.kill(timeout=%s)" % (p, t))]
        if r < 0.8:
            t = self.timeout(main)
            if t == "":
                return [self.opline("%s.free_count()" % p)]
            return [self.opline("%s.wait_available(%s)" % (p, t))]
        label = self.glabel()
        if label is None:
            return [self.opline("len(%s)" % p)]
        g = "GL('%s')" % label
        r = rng.random()
        if r < 0.3:
            return [self.opline("%s.killone(%s, block=%s)" % (p, g, rng.random() < 0.5 and not main))]
        if r < 0.5:
            return [self.opline("DISCARD(%s, %s)" % (p, g))]
        if r < 0.7 and not main:
            return [self.opline("%s.add(%s)" % (p, g))]
        return [self.opline("(%s in %s, len(%s))" % (g, p, p))]

    def op_local(self, depth, main):
        l = self.pick("Local")
        if l is None:
            return self.op_sleep(depth, main)
        r = self.rng.random()
        if r < 0.4:
            return ["%s.v = '%s'" % (l, self.new_id("v")), self.opline("%s.v" % l)]
        if r < 0.8:
            return [self.opline("(getattr(%s, 'v', 'unset'), getattr(%s, 'owner', '-'))" % (l, l))]
        return [self.opline("delattr(%s, 'v')" % l)]

    # -- output ------------------------------------------------------------
    def source(self, mod):
        out = [PRELUDE.format(mod=mod)]
        out.extend(self.object_lines)
        out.append("OBJECTS = {%s}" % ", ".join("'%s': %s" % (n, n) for n in self.objects))
        out.append("INITIAL = {n: getattr(o, 'counter', None) for n, o in OBJECTS.items()}")
        out.append("POOLS = [%s]" % ", ".join(n for n, k in self.objects.items() if k == "Pool"))
        out.append("")
        for d in self.defs:
            out.append("")
            out.extend(d)
        out.append("")
        out.append("")
        out.append("def main():")
        # Run the loop once first: before its first iteration the loop's cached time is
        # that of its creation, and gevent and stolon refresh it at different moments
        # (findings.md, "loop time when a timer starts").
        out.append("    gevent.sleep(0)")
        out.extend("    " + l for l in self.main_body)
        out.append(EPILOGUE)
        return "\n".join(out)


# ---------------------------------------------------------------------------
# running and comparing

EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*)(:.*)?$")
FAILED = re.compile(r"failed with (\w+)")
#: Exception types a program's greenlets and link callbacks may legitimately die of.
EXPECTED_DEATHS = {"Boom", "Kill", "TExc"}


def hub_errors(stderr):
    """The exception lines and 'failed with' lines the hub printed, normalized."""
    out = []
    in_tb = False
    for line in stderr.splitlines():
        if line.startswith("Traceback"):
            in_tb = True
            continue
        m = FAILED.search(line)
        if m:
            out.append("failed with " + m.group(1))
            continue
        if in_tb and line and not line.startswith(" "):
            out.append(re.sub(r"0x[0-9a-f]+", "0x?", line))
            in_tb = False
    return out


def unexpected_errors(stderr):
    """Printed errors that are not a program's own exceptions (a bug in the library)."""
    bad = []
    for line in hub_errors(stderr):
        m = FAILED.match(line)
        name = m.group(1) if m else EXC_LINE.match(line).group(1).rsplit(".", 1)[-1] \
            if EXC_LINE.match(line) else line
        if name not in EXPECTED_DEATHS:
            bad.append(line)
    return bad


REPR = re.compile(r"<[^<>]*>")
DOTTED = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")


def normalize(trace, mod):
    """Drop what differs by implementation only: reprs (addresses, class paths) and
    module-qualified names in messages."""
    out = []
    for line in trace:
        line = line.replace(mod, "MOD")
        while True:
            shorter = REPR.sub("<?>", line)
            if shorter == line:
                break
            line = shorter.replace("<?>", "\x00")
        out.append(DOTTED.sub(r"\1", line.replace("\x00", "<?>")))
    return out


class Outcome:
    def __init__(self, mod, proc=None, hang=False):
        self.mod = mod
        self.hang = hang
        self.rc = None if hang else proc.returncode
        self.stderr = "" if hang else proc.stderr
        self.trace = None
        if not hang and proc.returncode == 0:
            try:
                self.trace = normalize(json.loads(proc.stdout.strip().splitlines()[-1]), mod)
            except (ValueError, IndexError):
                self.trace = None

    def problem(self):
        """A finding in this run alone (crash, hang, failure, unexpected error output)."""
        if self.hang:
            return "hang"
        if self.rc is not None and self.rc < 0:
            return "signal %d" % -self.rc
        if self.rc != 0 or self.trace is None:
            return "exit %s: %s" % (self.rc, self.stderr[-1500:])
        broken = [line for line in self.trace if line.startswith("INVARIANT")]
        if broken:
            return "invariants broken: %s" % broken
        bad = unexpected_errors(self.stderr)
        if bad:
            return "unexpected errors printed: %s\n%s" % (bad, self.stderr[-3000:])
        return None


def run_program(source, mod, python, timeout):
    fd, path = tempfile.mkstemp(suffix=".py", prefix="coopfuzz_")
    with os.fdopen(fd, "w") as f:
        f.write(source)
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONFAULTHANDLER"] = "1"
    if mod == "stolon":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    else:
        env.pop("PYTHONPATH", None)
    try:
        proc = subprocess.run([python, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout, env=env, cwd=tempfile.gettempdir())
        return Outcome(mod, proc)
    except subprocess.TimeoutExpired:
        return Outcome(mod, hang=True)
    finally:
        os.unlink(path)


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i, x, y
    if len(a) != len(b):
        i = min(len(a), len(b))
        return i, a[i] if i < len(a) else "<end>", b[i] if i < len(b) else "<end>"
    return None


def compare(first, second):
    """Describe how two clean runs differ, or return None."""
    d = first_difference(first.trace, second.trace)
    if d:

        context = difflib.unified_diff(first.trace, second.trace, first.mod, second.mod, n=4, lineterm="")
        return "trace line %d:\n  %s: %s\n  %s: %s\n%s" % (
            d[0], first.mod, d[1], second.mod, d[2], "\n".join(list(context)[:40]))
    e1, e2 = hub_errors(first.stderr), hub_errors(second.stderr)
    if e1 != e2:
        d = first_difference(e1, e2)
        return "printed errors, item %d:\n  %s: %s\n  %s: %s" % (d[0], first.mod, d[1], second.mod, d[2])
    return None


def check_seed(seed, ops=30, unit=0.003, python=sys.executable, stolon_only=False, timeout=20.0,
               timed=True):
    """Return None when the seed is clean, else a report string."""
    prog = Program(seed, ops, unit, timed)
    src = prog.source("stolon")
    mine = run_program(src, "stolon", python, timeout)
    problem = mine.problem()
    if problem:
        return "stolon: " + problem
    if stolon_only:
        again = run_program(src, "stolon", python, timeout)
        problem = again.problem()
        if problem:
            return "stolon (second run): " + problem
        again.mod = "stolon-again"
        diff = compare(mine, again)
        return diff and "stolon is not deterministic: " + diff
    ref = run_program(prog.source("gevent"), "gevent", python, timeout)
    if ref.problem():
        return None  # a program gevent itself cannot run says nothing about stolon
    diff = compare(mine, ref)
    if diff is None:
        return None
    # Confirm: a difference must survive a second run of both, else it is timing noise.
    mine2 = run_program(src, "stolon", python, timeout)
    ref2 = run_program(prog.source("gevent"), "gevent", python, timeout)
    if mine2.problem() or ref2.problem() or compare(mine2, mine) or compare(ref2, ref):
        return "NOISE " + diff
    return diff


def differs(source, python, timeout):
    """True if the stolon and gevent runs of ``source`` (written for stolon) differ,
    twice in a row."""
    for _ in range(2):
        mine = run_program(source, "stolon", python, timeout)
        ref = run_program(source.replace("import stolon as gevent", "import gevent as gevent")
                          .replace("from stolon import", "from gevent import"), "gevent", python, timeout)
        if ref.problem():
            return False
        if not (mine.problem() or compare(mine, ref)):
            return False
    return True


def minimize(seed, ops, unit, python, timeout, timed=True):
    """Blank out operation lines of the program of ``seed`` while it still differs;
    return the smallest source found."""
    lines = Program(seed, ops, unit, timed).source("stolon").split("\n")
    if not differs("\n".join(lines), python, timeout):
        return None
    candidates = [i for i, l in enumerate(lines) if l.lstrip().startswith(("OP(", "_g.link", "R('"))]
    changed = True
    while changed:
        changed = False
        for i in reversed(candidates):
            if lines[i].lstrip() == "pass":
                continue
            trial = list(lines)
            trial[i] = lines[i][:len(lines[i]) - len(lines[i].lstrip())] + "pass"
            if differs("\n".join(trial), python, timeout):
                lines = trial
                changed = True
    return "\n".join(lines)


def parse_seeds(text):
    seeds = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            seeds.extend(range(int(a), int(b) + 1))
        else:
            seeds.append(int(part))
    return seeds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0-50")
    ap.add_argument("--ops", type=int, default=30)
    ap.add_argument("--unit", type=float, default=0.003,
                    help="seconds per timer unit; must exceed the CPU time of any loop iteration")
    ap.add_argument("--show", type=int, help="print the program of SEED and exit")
    ap.add_argument("--minimize", type=int, help="shrink the program of SEED while it still differs")
    ap.add_argument("--stolon-only", action="store_true")
    ap.add_argument("--untimed", action="store_true", help="no timers: sleep(0) and blocking waits only")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--noise", action="store_true", help="also report unconfirmed differences")
    args = ap.parse_args(argv)
    if args.show is not None:
        print(Program(args.show, args.ops, args.unit, not args.untimed).source("stolon"))
        return 0
    if args.minimize is not None:
        print(minimize(args.minimize, args.ops, args.unit, args.python, args.timeout, not args.untimed)
              or "no difference")
        return 0
    seeds = parse_seeds(args.seeds)

    def one(seed):
        return seed, check_seed(seed, args.ops, args.unit, args.python, args.stolon_only, args.timeout,
                                not args.untimed)

    if args.jobs > 1:
        from concurrent.futures import ThreadPoolExecutor
        results = ThreadPoolExecutor(args.jobs).map(one, seeds)
    else:
        results = map(one, seeds)
    found = 0
    for seed, report in results:
        if report is None:
            continue
        if report.startswith("NOISE") and not args.noise:
            print("seed %d: unconfirmed difference (timing)" % seed, flush=True)
            continue
        found += 1
        print("=" * 70)
        print("seed %d: %s" % (seed, report), flush=True)
    print("%d seeds, %d findings" % (len(seeds), found))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
