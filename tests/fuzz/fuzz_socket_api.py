"""Random use of stolon's cooperative sockets (whose blocking recv, recv_into, send
and sendall run in C: csrc/py/sockio.c and csrc/py/sockmethods.c) from several
greenlets at once, with odd arguments, kills and timeouts mid-call, sockets closed,
shut down, detached, dropped or swapped (os.close, os.dup2) while others wait on them:

    python fuzz_socket_api.py SEED OPERATIONS [LOG]

Python exceptions are the expected outcome of many calls; the interpreter must
survive every one of them, never hang (a wall-clock alarm ends a run that does,
with every thread's traceback) and exit 0 with every greenlet it spawned finished.
LOG gets one line per operation, flushed, so the last line of a crashed run names
the call.  A share of the operations are single-greenlet calls made with the same
arguments on a stdlib socket and on a stolon socket: their outcomes (result, or
exception type and message) must agree; disagreements are printed as MISMATCH
lines on stderr and, with STOLON_FUZZ_STRICT=1 in the environment, fail the run.
Run by tests/test_socket_fuzz.py; by hand, many seeds at a time, to look for crashes.
"""
import array
import faulthandler
import gc
import os
import random
import signal
import socket as stdlib_socket
import sys
import tempfile

import stolon
import stolon.socket as ssock
from stolon.hub import get_hub

seed = int(sys.argv[1])
nops = int(sys.argv[2])
log = open(sys.argv[3], "w") if len(sys.argv) > 3 else None
rng = random.Random(seed)
strict = os.environ.get("STOLON_FUZZ_STRICT") == "1"
# a hang is a failure: dump every thread and exit non-zero
faulthandler.dump_traceback_later(max(30.0, nops / 50.0), exit=True)

GreenletExit = stolon.GreenletExit
hub = get_hub()
mismatches = set()


def say(*parts):
    if log:
        log.write(" ".join(repr(p)[:90] for p in parts) + "\n")
        log.flush()


class Weird:
    """Fails every conversion."""

    def __index__(self):
        raise RuntimeError("index")

    def __float__(self):
        raise RuntimeError("float")

    def __and__(self, other):
        raise RuntimeError("and")

    __rand__ = __and__


class Five:
    """An integer by __index__ only (the stdlib's "n" and "i" accept it)."""

    def __index__(self):
        return 5

    def __and__(self, other):
        return 5 & other

    __rand__ = __and__


class IntSub(int):
    pass


def released_view():
    view = memoryview(bytearray(16))
    view.release()
    return view


SIZES = [0, 1, 2, 5, 10, 100, 4096, 65535, 65536, 65537, 200000, -1, -2**31, 2**31, 2**63, -2**63 - 1,
         Weird(), Five(), IntSub(7), True, 2.5, "x", None, b"4"]
FLAGS = [0, 0, 0, 0, 0, stdlib_socket.MSG_PEEK, stdlib_socket.MSG_DONTWAIT, stdlib_socket.MSG_TRUNC,
         stdlib_socket.MSG_OOB, stdlib_socket.MSG_WAITALL, stdlib_socket.MSG_PEEK | stdlib_socket.MSG_TRUNC,
         getattr(stdlib_socket, "MSG_MORE", 0), stdlib_socket.MSG_NOSIGNAL, -1, 2**31, 2**63, IntSub(0),
         True, Five(), Weird(), 1.0, None]
ADDRESSES = [("127.0.0.1", 9), ("127.0.0.1", 0), ("127.0.0.1", -1), ("127.0.0.1", 70000), ("::1", 9, 0, 0),
             "/nonexistent/sock", b"\0stolon-fuzz-%d" % seed, (), None, ("127.0.0.1",), 5, ("256.1.1.1", 9)]


def make_buffer():
    n = rng.choice([0, 1, 3, 8, 64, 4096, 70000])
    kind = rng.randrange(11)
    if kind == 0:
        return memoryview(bytearray(n))
    if kind == 1:
        return memoryview(bytearray(max(n, 2)))[::2]           # not contiguous
    if kind == 2:
        return memoryview(bytearray(8 * max(n // 8, 1))).cast("d")
    if kind == 3:
        return bytes(n)                                        # read-only
    if kind == 4:
        return memoryview(bytes(n))                            # read-only view
    if kind == 5:
        return released_view()
    if kind == 6:
        return array.array("i", bytes(4 * max(n // 4, 1)))
    if kind == 7:
        return rng.choice(["str", None, 5, Weird()])
    return bytearray(n)


def make_data():
    n = rng.choice([0, 1, 5, 100, 4096, 65536, 300000, 2000000])
    kind = rng.randrange(9)
    if kind == 0:
        return memoryview(bytes(n))
    if kind == 1:
        return memoryview(bytearray(max(n, 2)))[::2]
    if kind == 2:
        return memoryview(bytearray(8 * max(n // 8, 1))).cast("q")
    if kind == 3:
        return bytearray(n)
    if kind == 4:
        return released_view()
    if kind == 5:
        return rng.choice(["text", None, 7, Weird(), [b"a"]])
    return b"d" * n


# -- the sockets ---------------------------------------------------------------------------

# made before any socket: a number closed under a socket is never this file's
SENDFILE = tempfile.TemporaryFile()
socks = []          # every socket made (stolon's), closed or not
stale = set()       # id() of sockets whose fd number was closed underneath them
greenlets = []
files = []          # makefile() objects
listeners = []


def add(*new):
    for s in new:
        socks.append(s)
    return new


def make_stream_pair():
    add(*ssock.socketpair())


def make_dgram_pair():
    add(*ssock.socketpair(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM))


def make_tcp():
    lst = ssock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    cli = ssock.socket()
    cli.connect(lst.getsockname())
    srv, _ = lst.accept()
    listeners.append(lst)
    add(lst, cli, srv)


def make_udp():
    one = ssock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    two = ssock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    one.bind(("127.0.0.1", 0))
    two.bind(("127.0.0.1", 0))
    one.connect(two.getsockname())
    two.connect(one.getsockname())
    add(one, two)


MAKERS = [make_stream_pair, make_stream_pair, make_dgram_pair, make_tcp, make_udp]


def any_sock():
    return rng.choice(socks)


def address_for(s):
    if rng.random() < 0.5 and listeners:
        try:
            return rng.choice(listeners).getsockname()
        except OSError:
            pass
    return rng.choice(ADDRESSES)


# -- operations ----------------------------------------------------------------------------

def op_recv(s):
    a = [rng.choice(SIZES)] + ([rng.choice(FLAGS)] if rng.random() < 0.4 else [])
    say("recv", a)
    r = s.recv(*a)
    if isinstance(a[0], int) and not (len(a) > 1 and a[-1] is not None and isinstance(a[-1], int)
                                      and a[-1] & stdlib_socket.MSG_TRUNC) and len(r) > max(a[0], 0):
        raise SystemExit("recv(%r) returned %d bytes" % (a, len(r)))


def op_recv_into(s):
    buf = make_buffer()
    a = [buf] + [rng.choice(SIZES) for _ in range(rng.choice([0, 0, 1, 2]))]
    say("recv_into", type(buf).__name__, a[1:])
    if rng.random() < 0.2 and isinstance(buf, bytearray):
        # somebody resizes the buffer while the call waits
        stolon.spawn_later(rng.choice([0, 0.001]), resize, buf)
    s.recv_into(*a)


def resize(buf):
    say("resize")
    try:
        if rng.random() < 0.5:
            buf.extend(b"x" * 100000)
        else:
            del buf[:]
    except BufferError:
        pass


def op_recvfrom(s):
    a = [rng.choice(SIZES)] + ([rng.choice(FLAGS)] if rng.random() < 0.3 else [])
    say("recvfrom", a)
    s.recvfrom(*a)


def op_recvfrom_into(s):
    buf = make_buffer()
    a = [buf] + [rng.choice(SIZES) for _ in range(rng.choice([0, 1, 2]))]
    say("recvfrom_into", type(buf).__name__, a[1:])
    s.recvfrom_into(*a)


def op_send(s):
    data = make_data()
    a = [data] + ([rng.choice(FLAGS)] if rng.random() < 0.3 else [])
    say("send", type(data).__name__, a[1:])
    s.send(*a)


def op_sendall(s):
    data = make_data()
    a = [data] + ([rng.choice(FLAGS)] if rng.random() < 0.3 else [])
    say("sendall", type(data).__name__, a[1:])
    s.sendall(*a)


def op_sendto(s):
    data = make_data()
    a = [data] + ([rng.choice(FLAGS)] if rng.random() < 0.3 else []) + [address_for(s)]
    if rng.random() < 0.1:
        a = a[:1]
    say("sendto", type(data).__name__, a[1:])
    s.sendto(*a)


def op_sendmsg(s):
    parts = [make_data() for _ in range(rng.randrange(3))]
    say("sendmsg", [type(p).__name__ for p in parts])
    if rng.random() < 0.3:
        s.sendmsg(parts, [], rng.choice(FLAGS))
    else:
        s.sendmsg(parts)


def op_recvmsg(s):
    a = [rng.choice(SIZES)] + ([rng.choice([0, 16, 1024, -1])] if rng.random() < 0.3 else [])
    say("recvmsg", a)
    if rng.random() < 0.2 and hasattr(s, "recvmsg_into"):
        s.recvmsg_into([make_buffer() for _ in range(rng.randrange(3))])
    else:
        s.recvmsg(*a)


def op_accept(s):
    say("accept")
    conn, _ = s.accept()
    add(conn)


def op_connect(s):
    addr = address_for(s)
    say("connect", addr)
    if rng.random() < 0.5:
        s.connect_ex(addr)
    else:
        s.connect(addr)


def op_settimeout(s):
    v = rng.choice([None, None, 0.0, 0.001, 0.02, -1, float("nan"), Weird(), "x", 1e300])
    say("settimeout", v)
    s.settimeout(v)


def op_setblocking(s):
    v = rng.choice([True, False, 0, 1, None, Weird()])
    say("setblocking", v)
    s.setblocking(v)
    s.gettimeout()


def op_shutdown(s):
    how = rng.choice([0, 1, 2, 2, -1, 3, Weird()])
    say("shutdown", how)
    s.shutdown(how)


def op_close(s):
    say("close", id(s) in stale)
    if id(s) in stale:
        s.detach()
    else:
        s.close()


def op_detach(s):
    say("detach")
    fd = s.detach()
    if fd >= 0 and id(s) not in stale:
        os.close(fd)


def op_dup(s):
    say("dup")
    add(s.dup())


def op_fileno(s):
    say("fileno")
    s.fileno()
    s.getblocking()
    repr(s)


def op_makefile(s):
    mode = rng.choice(["rb", "wb", "rwb", "r", "w", "rb"])
    buffering = rng.choice([None, 0, -1, 1, 100])
    if "b" not in mode and buffering == 0:
        buffering = None
    say("makefile", mode, buffering)
    f = s.makefile(mode, buffering=buffering)
    files.append(f)
    if "r" in mode:
        n = rng.choice([-1, 0, 1, 10, 100000])
        if rng.random() < 0.5 and n != -1:
            f.read(n)
        else:
            f.readline(n)
    if "w" in mode:
        f.write(b"line\n" if "b" in mode else "line\n")
        f.flush()
    if rng.random() < 0.5:
        close_file(f)


def close_file(f):
    """Close a makefile() stream whose flush may wait for a peer that reads no more.
    A text stream flushes twice (itself, then its buffer's close()): the second
    flush, after a Timeout fired in the first, needs a Timeout of its own.  Inside
    one close() call no second Timeout can be armed, so the socket gets a timeout
    of its own first: each flush then gives up by itself."""
    raw = getattr(getattr(f, "buffer", f), "raw", None)
    sock = getattr(raw, "_sock", None)
    if sock is not None:
        try:
            sock.settimeout(0.05)
        except OSError:
            pass
    for _ in range(3):
        try:
            with stolon.Timeout(0.05):
                f.close()
            return
        except (Exception, stolon.Timeout):
            pass


def op_sendfile(s):
    say("sendfile")
    if id(s) in stale:
        return      # its number may be SENDFILE's own by now: a copy onto itself never ends
    SENDFILE.seek(0)
    SENDFILE.truncate(rng.choice([0, 10, 100000]))
    offset = rng.choice([0, 5, -1, 10**9])
    count = rng.choice([None, 0, 3, -1, 10**6])
    s.sendfile(SENDFILE, offset, count)


def op_close_underneath(s):
    fd = s.fileno()
    say("os.close", fd)
    # not under a socket whose close() waits for its makefile() streams: their close
    # would close the number again, whatever it is by then
    if fd >= 0 and id(s) not in stale and not s._io_refs and not s._closed:
        stale.add(id(s))
        os.close(fd)


def op_dup2(s):
    other = any_sock()
    src, dst = other.fileno(), s.fileno()
    say("os.dup2", src, dst)
    if src >= 0 and dst >= 0 and id(s) not in stale:
        os.dup2(src, dst)


def op_drop(s):
    say("drop")
    socks.remove(s)
    if id(s) in stale:
        s.detach()
    del s
    gc.collect()


SOCKET_OPS = ([op_recv] * 8 + [op_recv_into] * 6 + [op_send] * 6 + [op_sendall] * 5 + [op_recvfrom] * 2
              + [op_recvfrom_into] * 2 + [op_sendto] * 2 + [op_sendmsg, op_recvmsg, op_accept, op_connect]
              + [op_settimeout] * 4 + [op_setblocking] * 2 + [op_shutdown, op_close, op_detach, op_dup, op_fileno]
              + [op_makefile, op_sendfile, op_close_underneath, op_dup2, op_drop])
NONBLOCKING_OPS = [op_fileno, op_settimeout, op_setblocking, op_shutdown, op_close, op_dup]


def one_op(in_greenlet):
    """One socket operation, bounded by a stolon.Timeout (and sometimes a kill).
    (A socket whose number was closed under it may by now use another socket's
    number: any wait may be for an event that never comes.)"""
    exc = rng.choice([None, None, ValueError("timeout-exc"), GreenletExit, KeyboardInterrupt])
    with stolon.Timeout(rng.choice([0.0005, 0.002, 0.01, 0.03]), exc):
        if not socks or rng.random() < 0.03:
            with stolon.Timeout(1):
                rng.choice(MAKERS)()
        s = any_sock()
        op = rng.choice(SOCKET_OPS)
        if op is op_drop and len(socks) < 6:
            op = op_fileno
        op(s)


def worker(n):
    for _ in range(n):
        try:
            one_op(True)
        except (Exception, stolon.Timeout, KeyboardInterrupt):
            pass
        except GreenletExit:
            return


def in_callback():
    """A loop callback: runs in the hub, where waiting is not allowed."""
    s = any_sock() if socks else None
    if s is None:
        return
    op = rng.choice(NONBLOCKING_OPS + [op_recv, op_send])
    say("callback", op.__name__)
    try:
        op(s)
    except BaseException:
        pass


def op_spawn():
    g = stolon.spawn(worker, rng.randint(1, 8))
    greenlets.append(g)
    say("spawn", len(greenlets))


def op_kill():
    live = [g for g in greenlets if not g.dead]
    if not live:
        return
    g = rng.choice(live)
    exc = rng.choice([GreenletExit, ValueError, KeyboardInterrupt, stolon.Timeout, OSError])
    say("kill", exc)
    g.kill(exc, block=rng.random() < 0.3, timeout=0.05)


def op_sleep():
    t = rng.choice([0, 0, 0.0005, 0.003])
    say("sleep", t)
    stolon.sleep(t)


def op_callback():
    say("run_callback")
    hub.loop.run_callback(in_callback)


# -- the stdlib comparison -----------------------------------------------------------------

class StdlibBlocked(Exception):
    pass


def on_alarm(signum, frame):
    raise StdlibBlocked()


def outcome(call):
    try:
        r = call()
    except (StdlibBlocked, stolon.Timeout):
        return ("blocked",)
    except Exception as ex:
        return (type(ex).__name__, getattr(ex, "errno", None), str(ex))
    if isinstance(r, (bytes, bytearray, memoryview)):
        return ("ok", bytes(r))
    if isinstance(r, tuple):
        return ("ok", tuple(bytes(x) if isinstance(x, (bytes, bytearray)) else x
                            for x in r if not isinstance(x, (tuple, str))))
    return ("ok", r)


def comparable_call(name):
    """(method name, argument maker) for one call both sockets can make."""
    if name == "recv":
        a = [rng.choice(SIZES)] + ([rng.choice(FLAGS)] if rng.random() < 0.4 else [])
        return lambda: list(a)
    if name == "recv_into":
        buf_seed = rng.random()
        extra = [rng.choice(SIZES) for _ in range(rng.choice([0, 0, 1, 2]))]

        def make():
            state = rng.getstate()
            rng.seed(buf_seed)
            buf = make_buffer()
            rng.setstate(state)
            return [buf] + extra
        return make
    data_seed = rng.random()
    extra = [rng.choice(FLAGS)] if rng.random() < 0.4 else []

    def make_send():
        state = rng.getstate()
        rng.seed(data_seed)
        n = rng.choice([0, 1, 5, 100])
        data = rng.choice([b"s" * n, bytearray(n), memoryview(b"m" * n), memoryview(bytearray(8)).cast("i"),
                           released_view(), "text", None, 7])
        rng.setstate(state)
        return [data] + extra
    return make_send


def op_compare():
    """The same call on a stdlib socket and on a stolon socket, each with data waiting
    and in the same mode: same result, or same exception and message."""
    name = rng.choice(["recv", "recv", "recv_into", "send", "sendall"])
    state = rng.choice(["blocking", "blocking", "closed", "nonblocking", "shut"])
    make_args = comparable_call(name)
    family_type = rng.choice([(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM),
                              (stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM)])
    outcomes = []
    for module in (stdlib_socket, ssock):
        a, b = module.socketpair(*family_type)
        try:
            b.send(b"0123456789")
            if state == "closed":
                a.close()
            elif state == "nonblocking":
                a.setblocking(False)
            elif state == "shut":
                a.shutdown(stdlib_socket.SHUT_RDWR)
            if module is ssock and rng.random() < 0.5:
                a.ref = True            # the watchers made: the C methods' own path
            args = make_args()
            say("compare", module.__name__, name, state, [type(x).__name__ for x in args])
            if module is stdlib_socket:
                signal.setitimer(signal.ITIMER_REAL, 0.05)
                try:
                    outcomes.append(outcome(lambda: getattr(a, name)(*args)))
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            else:
                with stolon.Timeout(0.05):
                    outcomes.append(outcome(lambda: getattr(a, name)(*args)))
        finally:
            a.close()
            b.close()
    if outcomes[0] != outcomes[1]:
        key = (name, state, family_type[1], outcomes[0][:2], outcomes[1][:2])
        if key not in mismatches:
            mismatches.add(key)
            sys.stderr.write("MISMATCH %s %s args=%r\n  stdlib: %r\n  stolon: %r\n"
                             % (name, state, [repr(x)[:40] for x in make_args()], outcomes[0], outcomes[1]))


# -- the run -------------------------------------------------------------------------------

signal.signal(signal.SIGALRM, on_alarm)
for maker in MAKERS:
    maker()

for _ in range(nops):
    roll = rng.random()
    try:
        if roll < 0.08:
            op_spawn()
        elif roll < 0.13:
            op_kill()
        elif roll < 0.25:
            op_sleep()
        elif roll < 0.29:
            op_callback()
        elif roll < 0.37:
            op_compare()
        else:
            one_op(False)
    except (Exception, stolon.Timeout, GreenletExit, KeyboardInterrupt):
        pass

say("end")
stolon.killall(greenlets, timeout=5)
left = [g for g in greenlets if not g.dead]
for f in files:
    close_file(f)
for s in socks:
    if id(s) in stale:
        s.detach()
    else:
        s.close()
socks.clear()
greenlets.clear()
SENDFILE.close()
gc.collect()
stolon.sleep(0.01)
if left:
    print("greenlets left running:", left)
    sys.exit(3)
if strict and mismatches:
    sys.exit(4)
faulthandler.cancel_dump_traceback_later()
print("ok", seed)
