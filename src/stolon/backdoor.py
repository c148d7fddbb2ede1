"""stolon.backdoor: a Python console served over TCP, inside a running process
(gevent.backdoor).

``BackdoorServer`` is a ``StreamServer`` whose every connection gets its own
``code.InteractiveConsole``, run in its own greenlet.  While that greenlet runs,
``sys.stdin``, ``sys.stdout`` and ``sys.stderr`` are the connection (so ``print()``,
``input()``, ``help()`` and tracebacks reach the remote user); whenever it switches
to the hub, the streams it replaced are put back, so other greenlets and the process
keep theirs.

The console has no authentication: whoever can connect can do anything the process
can.  Bind it to an address only trusted users reach, such as 127.0.0.1.

Try it with ``python -m stolon.backdoor PORT [banner]`` and ``telnet 127.0.0.1 PORT``.
"""
import builtins
import sys
from _socket import IPPROTO_TCP, TCP_NODELAY
from code import InteractiveConsole

from stolon._core import getcurrent
from stolon._greenlet import Greenlet
from stolon.pool import Pool
from stolon.server import StreamServer

__all__ = ["BackdoorServer"]

# gevent defines the prompts when it is imported, not only while a console runs
if not hasattr(sys, "ps1"):
    sys.ps1 = ">>> "
if not hasattr(sys, "ps2"):
    sys.ps2 = "... "


class _ConsoleGreenlet(Greenlet):
    """A Greenlet that, once ``replace_streams`` gave it a connection's streams,
    has them as ``sys.stdin``, ``sys.stdout`` and ``sys.stderr`` whenever it runs.

    The hub calls ``switch_out`` when the greenlet parks; the hub resumes it with
    ``switch`` or ``throw``: those put the connection's streams in place again."""

    __slots__ = ("stdin", "stdout", "_replaced")

    def __init__(self, *args, **kwargs):
        Greenlet.__init__(self, *args, **kwargs)
        self.stdin = None
        self.stdout = None
        # the process's (stdin, stdout, stderr) while ours are in place, else None
        self._replaced = None

    def replace_streams(self, stdin, stdout):
        """From now on (and at once: it is the running greenlet) run with these."""
        self.stdin = stdin
        self.stdout = stdout
        self.switch_in()

    def restore_streams(self):
        """Put the process's streams back for good (the session is over)."""
        self.switch_out()
        self.stdin = self.stdout = None

    def switch_in(self):
        """Put the connection's streams in place (a no-op when they are, or when
        there is no connection yet)."""
        if self.stdin is not None and self._replaced is None:
            self._replaced = (sys.stdin, sys.stdout, sys.stderr)
            sys.stdin = self.stdin
            sys.stdout = sys.stderr = self.stdout

    def switch_out(self):
        """Put back the streams ``switch_in`` replaced (the hub calls this)."""
        replaced = self._replaced
        if replaced is not None:
            self._replaced = None
            sys.stdin, sys.stdout, sys.stderr = replaced

    def switch(self, *args, **kwargs):
        self.switch_in()
        return Greenlet.switch(self, *args, **kwargs)

    def throw(self, *args):
        self.switch_in()
        return Greenlet.throw(self, *args)


class BackdoorServer(StreamServer):
    """``BackdoorServer(listener, locals=None, banner=None, **server_args)``: a
    ``StreamServer`` that gives every connection an interactive Python console.

    ``locals``: a dict of names every console starts with (each connection works in
    its own copy, with ``__name__`` ``'__console__'``, ``__doc__`` None and
    ``builtins``/``__builtins__`` the builtins module).  ``banner``: the text greeting
    each user (default: the interpreter's version, as ``python`` prints it; an empty
    string greets with nothing).  ``server_args`` go to StreamServer; the consoles
    run in ``self.pool``, so ``stop()`` ends them.

    ``quit()``, ``exit()``, ``sys.exit()`` and end of input end only that session.
    There is no authentication: bind to an address only trusted users can reach.

    Usage::

        server = BackdoorServer(('127.0.0.1', 5001), banner="Hello", locals={'app': app})
        server.serve_forever()

    and then ``telnet 127.0.0.1 5001``.
    """

    def __init__(self, listener, locals=None, banner=None, **server_args):
        StreamServer.__init__(self, listener, spawn=Pool(greenlet_class=_ConsoleGreenlet), **server_args)
        namespace = {"__doc__": None, "__name__": "__console__"}
        if locals:
            namespace.update(locals)
        self.locals = namespace
        self.banner = banner
        self.stderr = sys.stderr

    def _create_interactive_locals(self):
        """A new namespace for one console: a copy of ``self.locals`` with the
        builtins (as the module, so that ``locals()`` stays readable)."""
        namespace = self.locals.copy()
        namespace["builtins"] = builtins
        namespace["__builtins__"] = builtins
        return namespace

    def handle(self, conn, _address):
        """Run a console for one user until the session ends: quit() or exit(), end
        of input, an unreadable line (a telnet ^C), or the connection failing."""
        try:
            # answers must not wait for the next packet of output
            conn.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        except OSError:
            pass    # not TCP (a Unix socket, say)
        reader = conn.makefile(mode="r", encoding="utf-8")
        greenlet = getcurrent()
        greenlet.replace_streams(_ConnectionInput(conn, reader), _ConnectionOutput(conn, reader))
        try:
            console = InteractiveConsole(self._create_interactive_locals())
            # no "now exiting" message: the connection is usually gone by then
            console.interact(banner=self.banner, exitmsg="")
        except SystemExit:
            pass    # quit(), exit() or sys.exit() typed at the console: the session ends
        except ConnectionError:
            pass    # the user went away: a normal end of a session, not a server error
        finally:
            # from here on the process's streams: an error report goes to them
            greenlet.restore_streams()
            reader.close()
            conn.close()


class _ConnectionStream:
    """What the connection's standard streams share: the socket and the text file
    that reads it; attributes not defined here are the file's."""

    __slots__ = ("sock", "fobj", "fileno")

    softspace = None
    encoding = "utf-8"

    def __init__(self, sock, reader):
        self.sock = sock
        self.fobj = reader
        # input() then compares this with the C stdin's descriptor: a socket is not
        # the terminal, so it prompts with write() and reads with readline()
        self.fileno = sock.fileno

    def __getattr__(self, name):
        return getattr(self.fobj, name)

    def close(self):
        """Keep the connection open: quit() and exit() close sys.stdin."""


class _ConnectionOutput(_ConnectionStream):
    """``sys.stdout`` and ``sys.stderr`` of a console: every write is sent at once
    (UTF-8), with no buffer to flush.  A write to a connection the user has left
    raises ConnectionError, which ends the session."""

    __slots__ = ()

    def write(self, data):
        if not isinstance(data, bytes):
            data = data.encode(self.encoding)
        self.sock.sendall(data)

    def flush(self):
        """Nothing is buffered."""


class _ConnectionInput(_ConnectionStream):
    """``sys.stdin`` of a console: lines end with ``\\n`` whatever the client sends;
    bytes that are not text (a telnet ^C) read as the end of input."""

    __slots__ = ()

    def readline(self, *args):
        try:
            return self.fobj.readline(*args).replace("\r\n", "\n")
        except UnicodeError:
            return ""


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("USAGE: %s PORT [banner]" % sys.argv[0])
    else:
        BackdoorServer(("127.0.0.1", int(sys.argv[1])),
                       banner=sys.argv[2] if len(sys.argv) > 2 else None,
                       locals={"hello": "world"}).serve_forever()
