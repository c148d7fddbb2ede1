"""stolon.backdoor: BackdoorServer's consoles (banner, prompts, evaluation, tracebacks,
one namespace per connection, ending a session) and the process's standard streams,
which only the console's own greenlet sees replaced."""
import contextlib
import gc
import os
import subprocess
import sys
import tempfile

import pytest

import stolon
import stolon.server
import stolon.socket
from stolon import backdoor
from stolon.queue import Empty, Queue
from conftest import child_env, open_fd_count, read_all

LOCAL = ("127.0.0.1", 0)
PROMPT = b">>> "
MORE = b"... "
#: telnet's "interrupt process" (^C): bytes that are not UTF-8 text
TELNET_INTERRUPT = b"\xff\xf4\xfd\x06\r\n"
# the same file checks gevent (names switched); a few outcomes differ on purpose
RUNNING_GEVENT = type(stolon.get_hub()).__module__.startswith("gev" + "ent")


def FD_WARM_UP():
    """conftest's module_closes_its_fds counts from here (the hub's loop is open)."""
    with serving() as server:
        with open_session(server) as conn:
            conn.sendall(b"quit()\n")
            assert read_all(conn) == b""


# -- helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def serving(*args, **kwargs):
    """A started BackdoorServer on 127.0.0.1; stopped on exit (its sessions, if any
    are left, are killed at once)."""
    server = backdoor.BackdoorServer(LOCAL, *args, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=0)


@contextlib.contextmanager
def connected(server, family=None, address=None):
    """A cooperative client connection to ``server`` (TCP, or ``family`` to
    ``address``), closed on exit; the greeting is still to be read."""
    if address is None:
        conn = stolon.socket.create_connection(("127.0.0.1", server.server_port), timeout=2)
    else:
        conn = stolon.socket.socket(family, stolon.socket.SOCK_STREAM)
        conn.settimeout(2)
        conn.connect(address)
    with conn:
        yield conn


def read_until(conn, ending, limit=65536):
    """What ``conn`` receives up to and including ``ending`` (fails if the server
    closes first or sends more than ``limit`` bytes)."""
    data = b""
    while not data.endswith(ending):
        chunk = conn.recv(1)
        assert chunk, "connection closed after %r" % (data,)
        data += chunk
        assert len(data) < limit, data
    return data


def ask(conn, line, ending=PROMPT):
    """Send one line (telnet-style CRLF); what the console answers, up to the next prompt."""
    conn.sendall(line + b"\r\n")
    return read_until(conn, ending)[:-len(ending)]


def error_line(answer):
    """The last line of a traceback (3.10+ may add a "Did you mean" to it)."""
    return answer.splitlines()[-1]


def open_session(server, **kwargs):
    """A connection whose greeting (up to the first prompt) has been read."""
    conn = stolon.socket.create_connection(("127.0.0.1", server.server_port), timeout=2, **kwargs)
    read_until(conn, PROMPT)
    return conn


def live_sessions(server):
    """Console greenlets of ``server`` that the collector still finds alive."""
    gc.collect()
    cls = server.pool.greenlet_class
    return [g for g in gc.get_objects() if isinstance(g, cls) and not g.dead]


# -- greeting and evaluation -----------------------------------------------------------


def test_default_banner_is_the_interpreters():
    with serving() as server, connected(server) as conn:
        greeting = read_until(conn, PROMPT).decode()
        conn.sendall(b"quit()\n")
        assert read_all(conn) == b""
    assert greeting == (
        "Python %s on %s\n"
        'Type "help", "copyright", "credits" or "license" for more information.\n'
        "(InteractiveConsole)\n>>> " % (sys.version, sys.platform))


@pytest.mark.parametrize("banner, greeting", [
    ("Welcome stranger!", b"Welcome stranger!\n>>> "),
    ("two\nlines \u263a", "two\nlines \u263a\n>>> ".encode("utf-8")),
    ("", b">>> "),
])
def test_given_banner(banner, greeting):
    with serving(banner=banner) as server, connected(server) as conn:
        assert read_until(conn, PROMPT) == greeting
        conn.sendall(b"quit()\n")
        assert read_all(conn) == b""


def test_expressions_statements_and_print():
    with serving(locals={"answer": 42}) as server, connected(server) as conn:
        read_until(conn, PROMPT)
        assert ask(conn, b"2+2") == b"4\n"
        assert ask(conn, b"answer * 2") == b"84\n"
        assert ask(conn, b"print('hello', 'world')") == b"hello world\n"
        assert ask(conn, b"'caf\xc3\xa9'.upper()") == "'CAF\u00c9'\n".encode("utf-8")
        assert ask(conn, b"x = 7") == b""
        assert ask(conn, b"None") == b""
        assert ask(conn, b"for i in range(3):", ending=MORE) == b""
        assert ask(conn, b"    print(i * x)", ending=MORE) == b""
        assert ask(conn, b"") == b"0\n7\n14\n"
        # lines ended with a bare LF (netcat) work as well
        conn.sendall(b"x + 1\n")
        assert read_until(conn, PROMPT) == b"8\n>>> "


def test_error_prints_traceback_and_console_continues():
    with serving() as server, connected(server) as conn:
        read_until(conn, PROMPT)
        # (a replaced sys.excepthook, such as the exceptiongroup backport's on 3.9,
        # prints one more frame, above the console's)
        answer = ask(conn, b"1/0")
        assert answer.startswith(b"Traceback (most recent call last):\n")
        assert answer.endswith(b'  File "<console>", line 1, in <module>\n'
                               b"ZeroDivisionError: division by zero\n")
        answer = ask(conn, b"undefined_name")
        assert answer.startswith(b"Traceback (most recent call last):\n")
        assert error_line(answer).startswith(b"NameError: name 'undefined_name' is not defined")
        answer = ask(conn, b"print())")
        assert error_line(answer).startswith(b"SyntaxError: ")
        assert ask(conn, b"import sys; print('to stderr', file=sys.stderr)") == b"to stderr\n"
        assert ask(conn, b"3*3") == b"9\n"


def test_help_is_written_to_the_connection(capsys):
    with serving() as server, connected(server) as conn:
        read_until(conn, PROMPT)
        answer = ask(conn, b"help(len)").decode()
        assert answer.startswith("Help on built-in function len in module builtins:\n\nlen(obj, /)\n")
        assert "Return the number of items in a container." in answer
        assert ask(conn, b"help") == (
            b"Type help() for interactive help, or help(object) for help about object.\n")
        assert ask(conn, b"quit") == b"Use quit() or Ctrl-D (i.e. EOF) to exit\n"
    assert capsys.readouterr() == ("", "")


def test_namespace_starts_from_locals_plus_builtins():
    given = {"answer": 42, "items": [1]}
    with serving(locals=given) as server, connected(server) as conn:
        read_until(conn, PROMPT)
        assert ask(conn, b"sorted(dir())") == (
            b"['__builtins__', '__doc__', '__name__', 'answer', 'builtins', 'items']\n")
        assert ask(conn, b"__name__, __doc__") == b"('__console__', None)\n"
        assert ask(conn, b"builtins") == b"<module 'builtins' (built-in)>\n"
        # the module, not its dict: locals() stays readable
        assert ask(conn, b'locals()["__builtins__"]') == b"<module 'builtins' (built-in)>\n"
        # a shallow copy: the objects are the caller's
        assert ask(conn, b"items.append(2); answer = 0") == b""
    assert given == {"answer": 42, "items": [1, 2]}
    assert server.locals == {"__doc__": None, "__name__": "__console__", "answer": 42, "items": [1, 2]}
    assert server.banner is None


def test_each_connection_has_its_own_namespace():
    with serving(locals={"shared": "yes"}) as server:
        with connected(server) as first, connected(server) as second:
            read_until(first, PROMPT)
            read_until(second, PROMPT)
            assert ask(first, b"mine = 'first'") == b""
            assert ask(second, b"mine = 'second'; shared = 'changed'") == b""
            assert ask(first, b"mine, shared") == b"('first', 'yes')\n"
            assert ask(second, b"mine, shared") == b"('second', 'changed')\n"
        with connected(server) as third:
            read_until(third, PROMPT)
            assert ask(third, b"shared").strip() == b"'yes'"
            assert error_line(ask(third, b"mine")).startswith(b"NameError: name 'mine' is not defined")
            third.sendall(b"quit()\n")
            assert read_all(third) == b""
        assert server.pool.join(timeout=1)


def test_concurrent_sessions():
    def session(n):
        with connected(server) as conn:
            read_until(conn, PROMPT)
            for i in range(3):
                assert ask(conn, b"%d * 1000 + %d" % (n, i)) == b"%d\n" % (n * 1000 + i)
                stolon.sleep(0)
            conn.sendall(b"quit()\r\n")
            return read_all(conn)

    with serving() as server:
        jobs = [stolon.spawn(session, n) for n in range(8)]
        stolon.joinall(jobs, timeout=2, raise_error=True)
        assert [job.value for job in jobs] == [b""] * 8
        assert server.pool.join(timeout=1)


# -- ending a session ------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    b"quit()", b"exit()", b"import sys; sys.exit(0)", b"raise SystemExit(3)", b"quit(1)"])
def test_quit_ends_only_that_session(command):
    with serving() as server:
        with connected(server) as leaving, connected(server) as staying:
            read_until(leaving, PROMPT)
            read_until(staying, PROMPT)
            leaving.sendall(command + b"\r\n")
            # closed with nothing more to say (no "now exiting" message)
            assert read_all(leaving) == b""
            assert ask(staying, b"'still here'") == b"'still here'\n"
        with connected(server) as later:
            assert read_until(later, PROMPT).endswith(b"(InteractiveConsole)\n>>> ")
            assert ask(later, b"1+1") == b"2\n"
        assert server.pool.join(timeout=1)
        assert server.started


@pytest.mark.parametrize("how", ["eof", "telnet-interrupt"])
def test_end_of_input_ends_the_session(how):
    with serving() as server, connected(server) as conn:
        read_until(conn, PROMPT)
        if how == "eof":
            conn.shutdown(stolon.socket.SHUT_WR)    # Ctrl-D
        else:
            conn.sendall(TELNET_INTERRUPT)
        # the console ends the prompt's line, then closes
        assert read_all(conn) == b"\n"
        assert server.pool.join(timeout=1)


def test_client_closing_mid_command_leaves_nothing_behind(hub_errors):
    def pause():
        stolon.sleep(0.02)

    with serving(locals={"pause": pause}) as server:
        fds = open_fd_count()
        for command in (b"pause(); print('late')", b"pause()", b"print('x' * 100000)"):
            conn = open_session(server)
            conn.sendall(command + b"\r\n")
            conn.close()
            assert server.pool.join(timeout=1)
            assert len(server.pool) == 0
        conn = open_session(server)
        conn.sendall(b"'unread answer'\r\n" * 3)
        stolon.sleep(0.02)
        conn.close()    # with unread data: the server's next read or write is reset
        assert server.pool.join(timeout=1)
        assert live_sessions(server) == []
        assert open_fd_count() == fds
        with open_session(server) as conn:
            assert ask(conn, b"'serving'") == b"'serving'\n"
    if not RUNNING_GEVENT:
        # gevent reports the reset, and tries to write the report to the closed
        # connection; stolon ends the session quietly (the user left) and would report
        # any other error to the process's stderr
        assert hub_errors.getvalue() == ""


def test_stop_ends_waiting_sessions(capsys):
    server = backdoor.BackdoorServer(LOCAL)
    server.start()
    try:
        first = open_session(server)
        second = open_session(server)
    finally:
        server.stop(timeout=0)
    with first, second:
        assert read_all(first) == b""
        assert read_all(second) == b""
    assert len(server.pool) == 0
    assert live_sessions(server) == []
    assert capsys.readouterr() == ("", "")


def test_kill_during_a_command_interrupts_only_the_command():
    # the console reports what a command raised, GreenletExit included (as the stdlib
    # console does with everything but SystemExit): the session goes on
    with serving(locals={"sleep": stolon.sleep}) as server, connected(server) as conn:
        read_until(conn, PROMPT)
        conn.sendall(b"sleep(10)\r\n")
        stolon.sleep(0.01)
        (session,) = server.pool
        session.kill(block=False)
        answer = read_until(conn, PROMPT)
        assert answer.startswith(b"Traceback (most recent call last):\n")
        assert answer.endswith(b"GreenletExit\n>>> ")
        assert ask(conn, b"'alive'") == b"'alive'\n"
        conn.sendall(b"quit()\r\n")
        assert read_all(conn) == b""
        assert server.pool.join(timeout=1)


# -- the process's streams -------------------------------------------------------------


def test_other_greenlets_keep_the_process_streams(capsys):
    real_streams = (sys.stdin, sys.stdout, sys.stderr)
    printed = []

    def other():
        for i in range(3):
            print("other", i)
            print("other err", i, file=sys.stderr)
            printed.append(i)
            stolon.sleep(0.005)

    with serving(locals={"sleep": stolon.sleep}) as server, connected(server) as conn:
        read_until(conn, PROMPT)
        conn.sendall(b"sleep(0.02); print('console'); sleep(0.01); print('again')\r\n")
        job = stolon.spawn(other)
        assert read_until(conn, PROMPT) == b"console\nagain\n>>> "
        job.join(timeout=1)
        assert printed == [0, 1, 2]
        # while the console greenlet is parked, this one sees the process's streams
        assert (sys.stdin, sys.stdout, sys.stderr) == real_streams
        conn.sendall(b"quit()\r\n")
        assert read_all(conn) == b""
        assert server.pool.join(timeout=1)
    assert (sys.stdin, sys.stdout, sys.stderr) == real_streams
    out, err = capsys.readouterr()
    assert out == "other 0\nother 1\nother 2\n"
    assert err == "other err 0\nother err 1\nother err 2\n"


def test_streams_follow_the_console_across_switches_and_throws(capsys):
    def waits():
        # a timed-out get() is thrown into the waiting greenlet; sleep() switches out
        print("switching out, then throwing in")
        try:
            Queue().get(block=True, timeout=0.01)
        except Empty:
            print("Got Empty")
        print("switching out")
        stolon.sleep(0.01)
        print("switched in")

    with serving(locals={"waits": waits}) as server, connected(server) as conn:
        read_until(conn, PROMPT)
        assert ask(conn, b"waits()") == (
            b"switching out, then throwing in\nGot Empty\nswitching out\nswitched in\n")
        assert ask(conn, b"import sys; sys.stdout is sys.stderr, sys.stdin is sys.stdout") == (
            b"(True, False)\n")
        assert ask(conn, b"sys.stdout.encoding, sys.stdin.isatty()") == b"('utf-8', False)\n"
        # closing them leaves the connection open (quit() closes sys.stdin, too)
        assert ask(conn, b"sys.stdin.close(); sys.stdout.close(); sys.stderr.close()") == b""
        assert ask(conn, b"2**10") == b"1024\n"
        conn.sendall(b"quit()\r\n")
        assert read_all(conn) == b""
    assert capsys.readouterr() == ("", "")


def test_input_reads_from_the_connection():
    with serving() as server, connected(server) as conn:
        read_until(conn, PROMPT)
        conn.sendall(b"name = input('name? ')\r\n")
        assert read_until(conn, b"name? ") == b"name? "
        assert ask(conn, b"Ada") == b""
        assert ask(conn, b"name") == b"'Ada'\n"


@pytest.mark.skipif(not hasattr(stolon.socket, "AF_UNIX"), reason="needs AF_UNIX")
def test_unix_socket_listener():
    # TCP_NODELAY does not apply: the console works without it
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "backdoor.sock")
        listener = stolon.socket.socket(stolon.socket.AF_UNIX, stolon.socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(8)
        server = backdoor.BackdoorServer(listener, banner="unix")
        server.start()
        try:
            with connected(server, stolon.socket.AF_UNIX, path) as conn:
                assert read_until(conn, PROMPT) == b"unix\n>>> "
                assert ask(conn, b"6*7") == b"42\n"
                conn.sendall(b"quit()\n")
                assert read_all(conn) == b""
            assert server.pool.join(timeout=1)
        finally:
            server.stop(timeout=0)


# -- module ----------------------------------------------------------------------------


def test_module_interface():
    assert backdoor.__all__ == ["BackdoorServer"]
    assert issubclass(backdoor.BackdoorServer, stolon.server.StreamServer)
    # the prompts exist once the module is imported, as with gevent
    assert hasattr(sys, "ps1") and hasattr(sys, "ps2")


def test_main_without_arguments_prints_usage():
    result = subprocess.run([sys.executable, "-m", backdoor.__name__], capture_output=True,
                            text=True, timeout=30, env=child_env())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == "USAGE: %s PORT [banner]\n" % os.path.abspath(backdoor.__file__)
