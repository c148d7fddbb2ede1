"""stolon.subprocess: the ``subprocess`` module with a cooperative ``Popen``, as
gevent.subprocess.

``Popen`` is the stdlib's class with the waiting parts replaced: its pipes are
non-blocking and parked on the hub (``stdin``, ``stdout``, ``stderr`` keep their
binary or text layers), ``wait(timeout)`` parks on the loop's child watcher instead
of calling ``waitpid``, and ``communicate(input, timeout)`` feeds and drains the pipes
in greenlets, so several children run and talk at once.  A ``TimeoutExpired`` from
``communicate`` loses nothing: calling it again picks up where the first call was.
The child is started by the stdlib's own code (``_posixsubprocess``, all arguments
included); only the short wait for its ``exec`` still blocks the thread.

The loop reaps only the children it watches (``stolon.os.waitpid`` can wait for them
too).  A ``Popen`` made in a native thread other than the main one waits for its child
in that thread's hub thread pool (gevent raises ``TypeError`` there; see
``stolon._child_watch``).  ``run``, ``call``, ``check_call``, ``check_output``,
``getoutput`` and ``getstatusoutput`` use this ``Popen``; every other name is the
stdlib's.
"""
import errno as _errno
import io as _io
import subprocess as _stdlib

from stolon import _child_watch
from stolon._fileobject import hand_to_child, make_cooperative
from stolon._greenlet import joinall, killall, spawn
from stolon.event import AsyncResult
from stolon.hub import get_hub

PIPE = _stdlib.PIPE
STDOUT = _stdlib.STDOUT
DEVNULL = _stdlib.DEVNULL
CalledProcessError = _stdlib.CalledProcessError
TimeoutExpired = _stdlib.TimeoutExpired
SubprocessError = _stdlib.SubprocessError
CompletedProcess = _stdlib.CompletedProcess
list2cmdline = _stdlib.list2cmdline

# what one read from an output pipe asks for (the stdlib's communicate reads as much)
_READ_SIZE = 32768

__implements__ = ["Popen", "call", "check_call", "check_output", "run", "getoutput",
                  "getstatusoutput"]


class _Communication:
    """The greenlets of one ``Popen.communicate``: one writes ``input`` and closes
    stdin, one per output pipe reads it to the end and closes it.  Made once per
    Popen, so a call after a timeout waits for the same greenlets and no output is
    lost.  ``received`` maps "stdout"/"stderr" to the bytes read so far (a list of
    chunks), which a ``TimeoutExpired`` carries as the stdlib's does."""

    __slots__ = ("stdin", "stdout", "stderr", "greenlets", "received")

    def __init__(self, popen, input_data):
        self.stdin = self.stdout = self.stderr = None
        self.received = {}
        if popen.stdin:
            self.stdin = spawn(self._write_and_close, popen.stdin, input_data)
        if popen.stdout:
            self.stdout = spawn(self._read_and_close, popen.stdout,
                                self.received.setdefault("stdout", []))
        if popen.stderr:
            self.stderr = spawn(self._read_and_close, popen.stderr,
                                self.received.setdefault("stderr", []))
        self.greenlets = tuple(g for g in (self.stdin, self.stdout, self.stderr) if g is not None)

    def received_so_far(self, name):
        """The bytes read from pipe ``name`` until now, or None if there are none."""
        chunks = self.received.get(name)
        return b"".join(chunks) if chunks else None

    @staticmethod
    def _write_and_close(pipe, data):
        try:
            if data:
                pipe.write(data)
                pipe.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass    # the child exited without reading: as the stdlib, not an error
        except OSError as e:
            if e.errno != _errno.EINVAL:    # also a closed reader, on some systems
                raise
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    @staticmethod
    def _read_and_close(pipe, chunks):
        # Bytes are read chunk by chunk, from below a text layer, so that what has
        # arrived is known when a timeout interrupts; text is decoded at the end as
        # the pipe's own layer would have (universal newlines).
        text = isinstance(pipe, _io.TextIOWrapper)
        source = pipe.buffer if text else pipe
        read = getattr(source, "read1", source.read)
        try:
            while True:
                chunk = read(_READ_SIZE)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            try:
                pipe.close()
            except OSError:
                pass
        data = b"".join(chunks)
        if text:
            return _io.TextIOWrapper(_io.BytesIO(data), encoding=pipe.encoding,
                                     errors=pipe.errors).read()
        return data


class Popen(_stdlib.Popen):
    """``subprocess.Popen`` whose pipes, ``wait``, ``poll`` and ``communicate``
    cooperate with other greenlets (see the module docstring).  ``result`` is an
    ``AsyncResult`` set to the return code when the child terminates."""

    _communication = None

    def __init__(self, args, bufsize=-1, *popenargs, **kwargs):
        hub = get_hub()
        self._hub = hub
        self._loop = hub.loop
        self._bufsize = -1 if bufsize is None else bufsize
        self.result = AsyncResult()
        # stdin, stdout, stderr: after executable among the positional arguments
        for stream in popenargs[1:4] + tuple(map(kwargs.get, ("stdin", "stdout", "stderr"))):
            if stream is not None and not isinstance(stream, int):
                hand_to_child(stream)
        super().__init__(args, bufsize, *popenargs, **kwargs)

    def _execute_child(self, *args):
        # the stdlib has wrapped the pipes; make them cooperative before the fork, as
        # it wraps them before, then start the child with the stdlib's code
        bufsize = self._bufsize
        for name in ("stdin", "stdout", "stderr"):
            pipe = getattr(self, name)
            if pipe is not None:
                setattr(self, name, make_cooperative(pipe, bufsize))
        super()._execute_child(*args)
        # referenced: a greenlet in wait() keeps the loop running; the status is ours
        self._watched = _child_watch.watch(self.pid, self._on_child, self._loop, True,
                                           collected_by_callback=True)

    def _on_child(self, watcher):
        # in the hub: the child terminated
        if self.returncode is None:
            self._handle_exitstatus(watcher.rstatus)
        self.result.set(self.returncode)

    def rawlink(self, callback):
        """Call ``callback(self)`` in the hub once the child has terminated."""
        self.result.rawlink(lambda _result: callback(self))

    def _internal_poll(self, _deadstate=None, **_ignored):
        # The return code comes from the child watcher; let an exit the kernel has
        # reported reach it (not from __del__ or the stdlib's _cleanup: _deadstate).
        if self.returncode is None:
            if _deadstate is None:
                _child_watch.deliver_pending_exit(self._watched, self._loop)
            self._restore_returncode()
        return self.returncode

    def _restore_returncode(self):
        # code that sets returncode back to None after the child was reaped (as
        # CPython's own tests do) must not make it look alive: the child is gone and
        # its status is in result
        result = self.result
        if self.returncode is None and result.ready():
            self.returncode = result.value

    def _wait(self, timeout):
        # the stdlib's wait() calls this (and keeps its KeyboardInterrupt handling)
        if self.returncode is None:
            self.result.wait(timeout)
            self._restore_returncode()
            if self.returncode is None:
                raise TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, input=None, timeout=None):
        """Send ``input`` to stdin (then close it), read stdout and stderr to the end,
        wait for the child; returns ``(stdout, stderr)`` (None for a stream that is not
        a pipe).  After ``TimeoutExpired`` the child runs on and a later call resumes
        (its ``input`` is ignored)."""
        endtime = None if timeout is None else _stdlib._time() + timeout
        communication = self._communication
        if communication is None:
            communication = self._communication = _Communication(self, input)
            self._communication_started = True
        greenlets = communication.greenlets
        if greenlets:
            done = joinall(greenlets, timeout=timeout)
            for g in done:
                g.get()     # a failed writer or reader raises here, before a timeout
            if len(done) != len(greenlets):
                raise TimeoutExpired(self.args, timeout,
                                     output=communication.received_so_far("stdout"),
                                     stderr=communication.received_so_far("stderr"))
        self.wait(timeout=None if endtime is None else self._remaining_time(endtime))
        return (None if communication.stdout is None else communication.stdout.value,
                None if communication.stderr is None else communication.stderr.value)

    def __exit__(self, exc_type, value, traceback):
        # Greenlets of communicate() still parked in the pipes are stopped first (each
        # closes its pipe as it unwinds); closing a pipe under another reader raises
        # RuntimeError ("reentrant call"), which must not hide the exception unwinding
        # this block nor skip the wait that reaps the child.
        if self._communication is not None:
            running = [g for g in self._communication.greenlets if not g.dead]
            if running:
                killall(running)
        for pipe in (self.stdout, self.stderr):
            if pipe:
                try:
                    pipe.close()
                except RuntimeError:
                    pass
        try:
            if self.stdin:
                self.stdin.close()
        finally:
            if exc_type == KeyboardInterrupt:
                if self._sigint_wait_secs > 0:
                    try:
                        self._wait(timeout=self._sigint_wait_secs)
                    except TimeoutExpired:
                        pass
                self._sigint_wait_secs = 0
            else:
                self.wait()


def call(*popenargs, timeout=None, **kwargs):
    """Run the command, wait for it and return its return code (the child is killed
    if the wait fails, ``TimeoutExpired`` included)."""
    with Popen(*popenargs, **kwargs) as p:
        try:
            return p.wait(timeout=timeout)
        except BaseException:
            # as the stdlib's: the with block waits for the killed child, except after
            # a KeyboardInterrupt, which wait() has already given its short grace
            p.kill()
            raise


def check_call(*popenargs, **kwargs):
    """``call``, raising ``CalledProcessError`` for a non-zero return code."""
    retcode = call(*popenargs, **kwargs)
    if retcode:
        cmd = kwargs.get("args")
        if cmd is None:
            cmd = popenargs[0]
        raise CalledProcessError(retcode, cmd)
    return 0


def check_output(*popenargs, timeout=None, **kwargs):
    """Run the command and return its output; ``CalledProcessError`` (with
    ``output``) for a non-zero return code.  ``input`` is sent to its stdin."""
    for name in ("stdout", "check"):
        if name in kwargs:
            raise ValueError("%s argument not allowed, it will be overridden." % name)
    if "input" in kwargs and kwargs["input"] is None:
        # as the stdlib: input=None means empty input, not the parent's stdin
        kwargs["input"] = "" if kwargs.get("universal_newlines") or kwargs.get("text") \
            or kwargs.get("encoding") or kwargs.get("errors") else b""
    return run(*popenargs, stdout=PIPE, timeout=timeout, check=True, **kwargs).stdout


def run(*popenargs, input=None, capture_output=False, timeout=None, check=False, **kwargs):
    """Run the command and return a ``CompletedProcess``; the stdlib's arguments.  On
    ``TimeoutExpired`` the child is killed and the exception carries the output read
    until then."""
    if input is not None:
        if kwargs.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used.")
        kwargs["stdin"] = PIPE
    if capture_output:
        if kwargs.get("stdout") is not None or kwargs.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        kwargs["stdout"] = PIPE
        kwargs["stderr"] = PIPE
    with Popen(*popenargs, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except TimeoutExpired:
            # as the stdlib: the exception has the output read until the timeout; the
            # pipes are not drained, since a grandchild may hold them open for long
            process.kill()
            process.wait()
            raise
        except BaseException:
            process.kill()
            raise
        retcode = process.poll()
        if check and retcode:
            raise CalledProcessError(retcode, process.args, output=stdout, stderr=stderr)
    return CompletedProcess(process.args, retcode, stdout, stderr)


def getstatusoutput(cmd, *, encoding=None, errors=None):
    """``(exitcode, output)`` of ``cmd`` run by the shell, stderr included and one
    trailing newline removed."""
    try:
        data = check_output(cmd, shell=True, text=True, stderr=STDOUT,
                            encoding=encoding, errors=errors)
        exitcode = 0
    except CalledProcessError as ex:
        data = ex.output
        exitcode = ex.returncode
    if data[-1:] == "\n":
        data = data[:-1]
    return exitcode, data


def getoutput(cmd, *, encoding=None, errors=None):
    """The output of ``cmd`` run by the shell (see ``getstatusoutput``)."""
    return getstatusoutput(cmd, encoding=encoding, errors=errors)[1]


__imports__ = [name for name in dir(_stdlib)
               if not name.startswith("__") and name not in globals()]
globals().update((name, getattr(_stdlib, name)) for name in __imports__)

__all__ = list(_stdlib.__all__)
