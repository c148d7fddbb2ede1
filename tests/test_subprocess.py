"""stolon.subprocess: cooperative Popen, communicate, wait, run and friends.

Every test starts real children (``sys.executable -c ...``).  Cross-checked against
gevent 26.9 (names switched); where stolon differs the test says so.
"""
import gc
import os
import shutil
import signal
import sys
import threading
import time
import warnings

import pytest

import stolon
from conftest import child_env, live_object_count, open_fd_count, reaped
from stolon import subprocess as sp

PY = sys.executable
MIB = 1024 * 1024


def _gone(pid):
    """True once ``pid`` was reaped by someone (a zombie still has its /proc entry);
    unlike ``reaped`` it does not reap it."""
    return not os.path.exists("/proc/%d" % pid)


def _wait_until_zombie(pid):
    """Block the thread (the loop does not run) until child ``pid`` has exited."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.005)
    raise AssertionError("child %d did not exit" % pid)


@pytest.fixture
def no_fd_leak():
    stolon.get_hub()    # the loop's own fds are made once
    before = open_fd_count()
    yield
    assert open_fd_count() == before


def _child(code, **kwargs):
    return sp.Popen([PY, "-c", code], **kwargs)


# -- the module ---------------------------------------------------------------------------

def test_module_has_the_stdlib_surface():
    import subprocess
    for name in subprocess.__all__ + ["list2cmdline"]:
        assert hasattr(sp, name), name
    # (gevent has a CompletedProcess of its own; stolon's is the stdlib's)
    for name in ("PIPE", "STDOUT", "DEVNULL", "CalledProcessError", "TimeoutExpired",
                 "SubprocessError", "list2cmdline"):
        assert getattr(sp, name) is getattr(subprocess, name), name
    assert sp.Popen is not subprocess.Popen


# -- concurrency --------------------------------------------------------------------------

def test_three_children_communicate_concurrently(no_fd_leak):
    code = "import sys, time; time.sleep(0.3); sys.stdout.write(sys.stdin.read()[::-1])"

    def talk(i):
        p = _child(code, stdin=sp.PIPE, stdout=sp.PIPE)
        out, err = p.communicate(b"abc%d" % i)
        return out, err, p.returncode, p.pid

    start = time.monotonic()
    greenlets = [stolon.spawn(talk, i) for i in range(3)]
    stolon.joinall(greenlets, raise_error=True)
    elapsed = time.monotonic() - start
    assert [g.value[:3] for g in greenlets] == [(b"%dcba" % i, None, 0) for i in range(3)]
    # serially this takes 0.9 s plus three interpreter start-ups
    assert elapsed < 0.85, elapsed
    assert all(reaped(g.value[3]) for g in greenlets)


def test_other_greenlets_run_while_a_child_is_waited_for():
    ticks = []

    def ticker():
        for _ in range(5):
            ticks.append(time.monotonic())
            stolon.sleep(0.02)

    t = stolon.spawn(ticker)
    p = _child("import time; time.sleep(0.3)")
    assert p.wait() == 0
    t.join()
    assert len(ticks) == 5


def test_large_input_and_output_both_ways(no_fd_leak):
    # the child echoes stdin to stdout and writes as much to stderr: without
    # cooperative pipes on both sides this deadlocks on full pipe buffers
    code = ("import sys\n"
            "data = sys.stdin.buffer.read()\n"
            "sys.stdout.buffer.write(data)\n"
            "sys.stderr.buffer.write(data[::-1])\n")
    data = os.urandom(256) * (3 * MIB // 256)
    p = _child(code, stdin=sp.PIPE, stdout=sp.PIPE, stderr=sp.PIPE)
    out, err = p.communicate(data)
    assert p.returncode == 0
    assert out == data
    assert err == data[::-1]


def test_large_streaming_output_while_writing_in_parallel(no_fd_leak):
    # writer and reader in separate greenlets through the pipe objects themselves
    code = "import sys, shutil; shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)"
    data = b"x" * (2 * MIB)
    p = _child(code, stdin=sp.PIPE, stdout=sp.PIPE)

    def write():
        p.stdin.write(data)
        p.stdin.close()

    w = stolon.spawn(write)
    got = p.stdout.read()
    w.get()
    p.stdout.close()
    assert p.wait() == 0
    assert got == data


def _watched_children():
    # stolon's table of watched children; gevent keeps each Popen's child in its own
    # table for a minute after it exited, the stolon Popen reaps its own child (as
    # the stdlib's does) and leaves no entry
    table = getattr(stolon, "_child_watch", None)
    return len(table.watched) if table is not None else 0


def test_many_popen_communicate_cycles_leak_nothing():
    # not from PATH alone: the wheel tests run with a PATH that has no tools on it
    true = shutil.which("true") or next((path for path in ("/bin/true", "/usr/bin/true")
                                         if os.path.exists(path)), None)
    if true is None:
        pytest.skip("no `true` program to run")
    loop = stolon.get_hub().loop

    def cycle():
        p = sp.Popen([true], stdin=sp.PIPE, stdout=sp.PIPE, stderr=sp.PIPE)
        p.communicate(b"x")
        return p.pid

    for _ in range(20):
        cycle()     # warm-up: caches, the thread-less loop's first watchers
    before = (open_fd_count(), loop.activecnt, _watched_children(), live_object_count())
    pids = [cycle() for _ in range(300)]
    after = (open_fd_count(), loop.activecnt, _watched_children(), live_object_count())
    assert after[:3] == before[:3]
    assert after[3] - before[3] < 50, (before, after)      # not one object per cycle
    assert all(reaped(pid) for pid in pids)


# -- communicate and timeouts --------------------------------------------------------------

def test_communicate_timeout_then_retry_gets_all_output(no_fd_leak):
    code = ("import sys, time\n"
            "sys.stdout.write('early '); sys.stdout.flush()\n"
            "time.sleep(0.4)\n"
            "sys.stdout.write('late')\n")
    p = _child(code, stdout=sp.PIPE)
    with pytest.raises(sp.TimeoutExpired) as info:
        p.communicate(timeout=0.1)
    assert info.value.timeout == 0.1
    assert info.value.cmd == p.args
    assert p.returncode is None
    out, err = p.communicate()
    assert (out, err) == (b"early late", None)
    assert p.returncode == 0
    assert reaped(p.pid)


def test_communicate_timeout_kill_and_collect(no_fd_leak):
    p = _child("import time; print('started', flush=True); time.sleep(30)", stdout=sp.PIPE)
    with pytest.raises(sp.TimeoutExpired):
        p.communicate(timeout=0.3)
    p.kill()
    out, _ = p.communicate()
    assert out == b"started\n"
    assert p.returncode == -signal.SIGKILL


def test_communicate_without_pipes_honours_timeout():
    p = _child("import time; time.sleep(30)")
    with pytest.raises(sp.TimeoutExpired):
        p.communicate(timeout=0.1)
    p.kill()
    assert p.communicate() == (None, None)
    assert p.returncode == -signal.SIGKILL


def test_communicate_text_mode_and_encoding(no_fd_leak):
    code = "import sys; data = sys.stdin.read(); sys.stdout.write(data + '\\r\\nend'); sys.stderr.write('e')"
    p = _child(code, stdin=sp.PIPE, stdout=sp.PIPE, stderr=sp.PIPE, text=True)
    assert p.communicate("h\u00e9llo") == ("h\u00e9llo\nend", "e")
    p = _child(code, stdin=sp.PIPE, stdout=sp.PIPE, stderr=sp.PIPE,
               encoding="latin-1", errors="strict")
    out, err = p.communicate("x")
    assert (out, err) == ("x\nend", "e")
    p = _child("print('a')", stdout=sp.PIPE, universal_newlines=True)
    assert p.communicate() == ("a\n", None)


def test_communicate_child_that_does_not_read_stdin(no_fd_leak):
    # BrokenPipeError while feeding stdin is ignored, as in the stdlib
    p = _child("import sys; sys.stdout.write('bye')", stdin=sp.PIPE, stdout=sp.PIPE)
    out, _ = p.communicate(b"z" * (2 * MIB))
    assert out == b"bye"
    assert p.returncode == 0


def test_child_that_closes_stdout_early_and_runs_on(no_fd_leak):
    # end of file on stdout is not the end of the child: communicate waits for it
    code = ("import os, sys, time\n"
            "sys.stdout.write('x'); sys.stdout.flush(); os.close(1)\n"
            "time.sleep(0.2); sys.exit(4)\n")
    p = _child(code, stdout=sp.PIPE)
    assert p.communicate() == (b"x", None)
    assert p.returncode == 4


def test_large_output_with_stderr_to_stdout(no_fd_leak):
    code = ("import sys\n"
            "sys.stdout.write('o' * 3000000); sys.stdout.flush()\n"
            "sys.stderr.write('e' * 3000000)\n")
    out, err = _child(code, stdout=sp.PIPE, stderr=sp.STDOUT).communicate()
    assert err is None
    assert out == b"o" * 3000000 + b"e" * 3000000


def test_communicate_after_the_child_exited(no_fd_leak):
    p = _child("print('done')", stdout=sp.PIPE, text=True)
    assert p.wait() == 0
    assert p.communicate() == ("done\n", None)
    assert p.communicate() == ("done\n", None)     # the same answer again


def test_text_mode_input_and_encoding_errors(no_fd_leak):
    echo = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"
    r = sp.run([PY, "-c", echo], input="a\nb\u00e9", capture_output=True, encoding="utf-8")
    assert r.stdout == "a\nb\u00e9"
    r = sp.run([PY, "-c", echo], input="\u00e9", capture_output=True, encoding="latin-1")
    assert r.stdout == "\u00e9"
    r = sp.run([PY, "-c", "import sys; sys.stdout.buffer.write(b'a\\r\\nb\\rc\\xff')"],
               capture_output=True, encoding="utf-8", errors="replace")
    assert r.stdout == "a\nb\nc\ufffd"
    with pytest.raises(TypeError):
        sp.run([PY, "-c", "pass"], input=b"bytes", text=True)


def test_stderr_to_stdout_and_devnull(no_fd_leak):
    code = "import sys; sys.stdout.write('o'); sys.stdout.flush(); sys.stderr.write('e')"
    p = _child(code, stdout=sp.PIPE, stderr=sp.STDOUT)
    assert p.communicate() == (b"oe", None)
    p = _child(code, stdout=sp.DEVNULL, stderr=sp.PIPE)
    assert p.communicate() == (None, b"e")


# -- wait, poll and signals ----------------------------------------------------------------

def test_wait_timeout_raises_then_wait_succeeds():
    p = _child("import time; time.sleep(0.3)")
    start = time.monotonic()
    with pytest.raises(sp.TimeoutExpired):
        p.wait(timeout=0.05)
    assert time.monotonic() - start < 0.25
    assert p.wait(timeout=10) == 0
    assert reaped(p.pid)


def test_wait_from_two_greenlets():
    p = _child("import sys, time; time.sleep(0.2); sys.exit(7)")
    waiters = [stolon.spawn(p.wait) for _ in range(2)]
    stolon.joinall(waiters, timeout=10, raise_error=True)
    assert [w.value for w in waiters] == [7, 7]
    assert p.returncode == 7
    assert reaped(p.pid)


def test_poll_returns_none_then_the_code():
    p = _child("import sys; sys.stdin.read(); sys.exit(3)", stdin=sp.PIPE)
    assert p.poll() is None
    p.stdin.close()
    deadline = time.monotonic() + 10
    while p.poll() is None and time.monotonic() < deadline:
        stolon.sleep(0.01)
    assert p.returncode == 3


def test_poll_sees_an_exit_the_loop_has_not_read_yet():
    # SIGCHLD arrived while the thread was blocked: poll() lets the loop read it (as
    # gevent's does) and returns the code, it does not answer None once more
    p = _child("import sys; sys.exit(3)")
    _wait_until_zombie(p.pid)
    assert p.poll() == 3
    assert reaped(p.pid)


def test_wait_with_zero_timeout_after_the_exit():
    p = _child("import sys; sys.exit(2)")
    _wait_until_zombie(p.pid)
    assert p.wait(timeout=0) == 2


def test_wait_after_returncode_was_reset_returns_the_code():
    # CPython's test_send_signal_race2 sets returncode back to None after the exit; a
    # wait() with no timeout must return (never TimeoutExpired "after None seconds"),
    # and a Popen dropped then must not go to subprocess._active as a live child
    p = _child("import sys; sys.exit(4)")
    assert p.wait(timeout=10) == 4
    stolon.sleep(0)     # the hub finishes the wake-up of that wait
    p.returncode = None
    assert p.wait() == 4
    p.returncode = None
    # gevent's poll() answers None here (its wait() returns the code but leaves
    # returncode unset); stolon's gives the code back as the stdlib's would report it
    assert p.poll() == 4
    p.returncode = None
    active = sp._active
    del p
    gc.collect()
    assert active == []


@pytest.mark.parametrize("method, signum", [("terminate", signal.SIGTERM),
                                            ("kill", signal.SIGKILL),
                                            ("send_signal", signal.SIGINT)])
def test_terminate_kill_send_signal(method, signum):
    p = _child("import time; print('ready', flush=True); time.sleep(30)", stdout=sp.PIPE)
    assert p.stdout.readline() == b"ready\n"
    if method == "send_signal":
        p.send_signal(signum)
    else:
        getattr(p, method)()
    assert p.wait(timeout=10) == -signum
    p.stdout.close()
    p.kill()      # the stdlib: signalling a reaped child does nothing
    assert reaped(p.pid)


def test_context_manager_waits_and_closes_pipes(no_fd_leak):
    with _child("import sys; sys.stdout.write(sys.stdin.read())",
                stdin=sp.PIPE, stdout=sp.PIPE) as p:
        p.stdin.write(b"data")
        p.stdin.close()
        assert p.stdout.read() == b"data"
    assert p.returncode == 0
    assert p.stdout.closed
    assert reaped(p.pid)


def test_context_manager_exit_kills_communicate_greenlets(no_fd_leak):
    with pytest.raises(sp.TimeoutExpired):
        with _child("import time; time.sleep(30)", stdout=sp.PIPE, stderr=sp.PIPE) as p:
            try:
                p.communicate(timeout=0.05)
            finally:
                p.kill()
    assert p.returncode == -signal.SIGKILL


# -- Popen arguments ------------------------------------------------------------------------

def test_cwd_env_pass_fds_start_new_session(tmp_path, no_fd_leak):
    r, w = os.pipe()
    try:
        code = ("import os, sys\n"
                "os.write(int(sys.argv[1]), b'passed')\n"
                "print(os.getcwd(), os.environ.get('STOLON_TEST'), os.getsid(0) == os.getpid())\n")
        p = sp.Popen([PY, "-c", code, str(w)], stdout=sp.PIPE, cwd=str(tmp_path),
                     env=dict(os.environ, STOLON_TEST="yes"), pass_fds=(w,),
                     start_new_session=True, text=True)
        out, _ = p.communicate()
        assert out.split() == [os.path.realpath(str(tmp_path)), "yes", "True"]
        assert os.read(r, 100) == b"passed"
    finally:
        os.close(r)
        os.close(w)


def test_unbuffered_pipes():
    p = _child("import sys; sys.stdout.write(sys.stdin.readline())",
               stdin=sp.PIPE, stdout=sp.PIPE, bufsize=0)
    assert p.stdin.write(b"line\n") == 5
    assert p.stdout.read(100) == b"line\n"
    p.stdin.close()
    p.stdout.close()
    assert p.wait() == 0


def test_missing_executable_raises_and_leaks_nothing(no_fd_leak):
    with pytest.raises(FileNotFoundError):
        sp.Popen(["/nonexistent/stolon-test-binary"], stdin=sp.PIPE, stdout=sp.PIPE,
                 stderr=sp.PIPE)


@pytest.mark.parametrize("args, kwargs, error", [
    ([PY, "-c", "pass"], {"bufsize": "x"}, TypeError),
    ([PY, "-c", "pass\0"], {}, ValueError),
    ([PY, "-c", "pass"], {"env": {"A\0": "b"}}, ValueError),
    ([PY, "-c", "pass"], {"cwd": "/nonexistent/stolon-test-dir"}, FileNotFoundError),
    (42, {}, TypeError),
])
def test_bad_arguments_raise_the_stdlib_exceptions_in_the_caller(args, kwargs, error, capfd):
    stolon.get_hub()
    before = open_fd_count()
    with pytest.raises(error):
        sp.Popen(args, stdout=sp.PIPE, **kwargs)
    stolon.sleep(0.01)
    assert open_fd_count() == before
    assert capfd.readouterr().err == ""     # no greenlet or hub reported anything


def test_text_and_universal_newlines_conflict():
    with pytest.raises(sp.SubprocessError):
        _child("pass", text=True, universal_newlines=False)


def test_dropped_popen_is_reaped_without_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = _child("import time; time.sleep(0.05)")
        pid = p.pid
        del p
        gc.collect()
        deadline = time.monotonic() + 10
        while not _gone(pid) and time.monotonic() < deadline:
            stolon.sleep(0.01)
        gc.collect()
    assert _gone(pid)
    assert [str(w.message) for w in caught] == []


# -- run, call, check_* ---------------------------------------------------------------------

def test_run_capture_input_and_check():
    r = sp.run([PY, "-c", "import sys; sys.stdout.write(sys.stdin.read()); sys.stderr.write('!')"],
               input=b"in", capture_output=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"in", b"!")
    assert isinstance(r, sp.CompletedProcess)
    with pytest.raises(sp.CalledProcessError) as info:
        sp.run([PY, "-c", "import sys; print('o'); sys.exit(4)"], stdout=sp.PIPE, check=True)
    assert (info.value.returncode, info.value.stdout) == (4, b"o\n")
    with pytest.raises(ValueError):
        sp.run([PY, "-c", "pass"], input=b"", stdin=sp.PIPE)
    with pytest.raises(ValueError):
        sp.run([PY, "-c", "pass"], capture_output=True, stdout=sp.PIPE)


def test_run_timeout_kills_and_keeps_output():
    start = time.monotonic()
    with pytest.raises(sp.TimeoutExpired) as info:
        sp.run([PY, "-c", "import time; print('partial', flush=True); time.sleep(30)"],
               stdout=sp.PIPE, timeout=0.5)
    assert time.monotonic() - start < 10
    assert info.value.output == b"partial\n"


def test_run_timeout_does_not_wait_for_a_grandchild_holding_the_pipe():
    # CPython's test_run_with_shell_timeout_and_capture_output: as the stdlib's, run()
    # kills the child and raises at once with what was read, without draining stdout,
    # which a grandchild keeps open here until the test closes its pipe.  gevent's run
    # reads to the end after the kill and would wait for the grandchild.
    hold_r, hold_w = os.pipe()
    release = stolon.spawn_later(5, os.close, hold_w)   # bounds the old behaviour
    code = ("import os, subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import os; os.read(%d, 1)'], "
            "pass_fds=(%d,))\n"
            "print('partial', flush=True)\n"
            "time.sleep(30)\n" % (hold_r, hold_r))
    try:
        start = time.monotonic()
        with pytest.raises(sp.TimeoutExpired) as info:
            sp.run([PY, "-c", code], stdout=sp.PIPE, pass_fds=(hold_r,), timeout=0.5)
        assert time.monotonic() - start < 4
        assert info.value.output == b"partial\n"
    finally:
        if not release.dead:
            release.kill()
            os.close(hold_w)
        os.close(hold_r)


def test_communicate_timeout_carries_the_output_so_far(no_fd_leak):
    with _child("import time; print('early', flush=True); time.sleep(30)",
                stdout=sp.PIPE, stderr=sp.PIPE, text=True) as p:
        with pytest.raises(sp.TimeoutExpired) as info:
            p.communicate(timeout=0.5)
        # bytes, as the stdlib's (even in text mode); nothing on stderr: None.
        # gevent's TimeoutExpired carries no output (stolon keeps the stdlib's rule)
        assert info.value.output == b"early\n"
        assert info.value.stderr is None
        p.kill()
        assert p.communicate() == ("early\n", "")


def test_pipe_handed_to_another_child_is_blocking_there(no_fd_leak):
    # the shell-pipeline idiom: the second child reads its stdin before the first has
    # written; on a non-blocking pipe its read fails with EAGAIN (CPython's
    # test_pipe_cloexec_real_tools, now and then).  gevent leaves the pipe non-blocking.
    # one write: print() may hand "through" and "\n" to the pipe separately, and the
    # reader's one os.read would then see only the first
    first = _child("import os, time; time.sleep(0.3); os.write(1, b'through\\n')",
                   stdout=sp.PIPE)
    second = _child("import os, sys; sys.stdout.write(os.read(0, 100).decode())",
                    stdin=first.stdout, stdout=sp.PIPE)
    first.stdout.close()
    assert second.communicate(timeout=10) == (b"through\n", None)
    assert second.returncode == 0
    assert first.wait(timeout=10) == 0


def test_handed_over_pipe_still_reads_cooperatively(no_fd_leak):
    with _child("import time; time.sleep(0.3); print('late', flush=True)",
                stdout=sp.PIPE) as p:
        sp.run([PY, "-c", "pass"], stdin=p.stdout, check=True)
        ticks = []
        ticker = stolon.spawn(lambda: [ticks.append(stolon.sleep(0.02)) for _ in range(5)])
        assert p.stdout.read() == b"late\n"
        assert len(ticks) >= 3     # the read waited in the hub, not in the kernel
        ticker.join(10)


def test_call_and_check_call():
    assert sp.call([PY, "-c", "import sys; sys.exit(5)"]) == 5
    assert sp.check_call([PY, "-c", "pass"]) == 0
    with pytest.raises(sp.CalledProcessError) as info:
        sp.check_call([PY, "-c", "import sys; sys.exit(2)"])
    assert info.value.returncode == 2
    with pytest.raises(sp.TimeoutExpired):
        sp.call([PY, "-c", "import time; time.sleep(30)"], timeout=0.2)


def test_call_makes_no_open_ended_wait_after_keyboardinterrupt(monkeypatch):
    # as the stdlib's (CPython's MiscTests.test_call_keyboardinterrupt_no_kill): after
    # ^C in wait() and its short grace, call() kills the child and re-raises; it does
    # not wait again with no timeout (gevent's call does)
    timeouts, popens = [], []
    real_wait = sp.Popen._wait

    def recording_wait(self, timeout):
        timeouts.append(timeout)
        popens.append(self)
        if len(timeouts) == 1:
            raise KeyboardInterrupt
        return real_wait(self, timeout)

    monkeypatch.setattr(sp.Popen, "_wait", recording_wait)
    with pytest.raises(KeyboardInterrupt):
        sp.call([PY, "-c", "import time; time.sleep(30)"])
    assert timeouts == [None, 0.25]
    monkeypatch.undo()
    assert popens[0].wait(timeout=10) == -signal.SIGKILL


def test_check_output_and_called_process_error():
    assert sp.check_output([PY, "-c", "print('out')"]) == b"out\n"
    assert sp.check_output([PY, "-c", "import sys; print(sys.stdin.read())"],
                           input="txt", text=True) == "txt\n"
    with pytest.raises(sp.CalledProcessError) as info:
        sp.check_output([PY, "-c", "import sys; print('so far'); sys.exit(9)"])
    assert info.value.returncode == 9
    assert info.value.output == b"so far\n"
    assert "returned non-zero exit status 9" in str(info.value)
    with pytest.raises(ValueError):
        sp.check_output([PY, "-c", "pass"], stdout=sp.PIPE)
    with pytest.raises(sp.TimeoutExpired):
        sp.check_output([PY, "-c", "import time; time.sleep(30)"], timeout=0.2)


def test_getoutput_and_getstatusoutput():
    assert sp.getoutput("echo hello") == "hello"
    assert sp.getstatusoutput("echo err >&2; exit 3") == (3, "err")


def test_list2cmdline():
    assert sp.list2cmdline(["a b", "c"]) == '"a b" c'


# -- where the child is started -------------------------------------------------------------

def test_popen_before_the_hub_ever_ran():
    # run in a fresh interpreter: the hub does not exist before Popen
    code = ("import sys\n"
            "from stolon import subprocess as sp\n"
            "p = sp.Popen([sys.executable, '-c', 'print(42)'], stdout=sp.PIPE)\n"
            "print(p.communicate()[0].decode().strip(), p.returncode)\n")
    out = sp.check_output([PY, "-c", code.replace("stolon", _lib_name())],
                          env=child_env(), text=True, timeout=30)
    assert out.split() == ["42", "0"]


def test_popen_in_a_native_thread():
    # gevent: TypeError('child watchers are only available on the default loop');
    # stolon waits for the child in that thread's hub thread pool
    results = []

    def in_thread():
        try:
            p = _child("import sys; sys.stdout.write(sys.stdin.read() * 2)",
                       stdin=sp.PIPE, stdout=sp.PIPE)
            results.append((p.communicate(b"ab"), p.returncode, reaped(p.pid)))
        except BaseException as e:
            results.append(e)
        finally:
            stolon.get_hub().destroy(destroy_loop=True)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join(30)
    if _lib_name() == "gevent":
        assert isinstance(results[0], TypeError)
        return
    assert results == [((b"abab", None), 0, True)]


def _lib_name():
    return stolon.__name__


def test_patched_subprocess_and_os_in_a_child_interpreter():
    # patch_all in a fresh interpreter: the stdlib's names are the cooperative ones, and
    # close_fds=False takes the stdlib's posix_spawn path through the patched os
    pytest.importorskip(_lib_name() + ".monkey")
    code = ("import %(lib)s.monkey; %(lib)s.monkey.patch_all()\n"
            "import os, subprocess, sys, time\n"
            "import %(lib)s as lib\n"
            "def child(i):\n"
            "    return subprocess.run([sys.executable, '-c', 'import time; time.sleep(0.3); print(%%d)' %% i],\n"
            "                          capture_output=True, close_fds=False).stdout\n"
            "start = time.monotonic()\n"
            "gs = [lib.spawn(child, i) for i in range(3)]\n"
            "lib.joinall(gs, raise_error=True)\n"
            "print([g.value for g in gs], time.monotonic() - start < 0.85)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    lib.sleep(0.01); os._exit(3)\n"
            "print(os.waitpid(pid, 0) == (pid, 3 << 8))\n") % {"lib": _lib_name()}
    out = sp.check_output([PY, "-c", code], env=child_env(), text=True, timeout=60)
    assert out.splitlines() == ["[b'0\\n', b'1\\n', b'2\\n'] True", "True"]
