"""stolon.fileobject: FileObjectPosix, FileObjectThread, FileObjectBlock (gevent.fileobject).

Validated against gevent 26.9 with the names switched."""
import errno
import io
import os
import threading
import time

import pytest

import stolon
from stolon.fileobject import FileObject, FileObjectBlock, FileObjectPosix, FileObjectThread

from conftest import live_object_count, open_fd_count


def FD_WARM_UP():
    # the hub's loop and thread pool, kept for the whole process
    r, w = os.pipe()
    reader, writer = FileObjectPosix(r, "rb"), FileObjectPosix(w, "wb")
    waiting = stolon.spawn(reader.read, 1)
    stolon.sleep(0.001)
    writer.write(b"x")
    writer.flush()
    waiting.get(timeout=5)
    reader.close()
    writer.close()
    stolon.get_hub().threadpool.apply(int)


def is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def assert_file_object_closed(exc_info):
    # gevent's FileObjectClosed (an OSError), not the io layers' ValueError
    assert isinstance(exc_info.value, OSError)
    assert exc_info.value.errno == errno.EBADF
    assert exc_info.value.strerror == "Bad file descriptor (FileObject was closed)"


def test_module_names():
    import stolon.fileobject as module
    assert module.__all__ == ["FileObjectPosix", "FileObjectThread", "FileObjectBlock",
                              "FileObject"]
    assert FileObject is FileObjectPosix


# -- FileObjectPosix: waiting in the hub ------------------------------------------------

def test_posix_read_lets_other_greenlets_run(pipe):
    r, w = pipe
    reader = FileObjectPosix(r, "rb", close=False)
    writer = FileObjectPosix(w, "wb", close=False)
    ticks = []

    def tick():
        for i in range(20):
            ticks.append(i)
            stolon.sleep(0)
        writer.write(b"hello")
        writer.flush()

    reading = stolon.spawn(reader.read, 5)
    stolon.sleep(0)
    assert not reading.ready()          # parked on the empty pipe, not blocking the hub
    ticker = stolon.spawn(tick)
    assert reading.get(timeout=5) == b"hello"
    ticker.join(timeout=5)
    assert ticks == list(range(20))
    assert not os.get_blocking(r)
    reader.close()
    writer.close()


def test_posix_large_write_fills_the_pipe(pipe):
    r, w = pipe
    data = bytes(range(256)) * 4096     # 1 MiB: many times the pipe's room
    reader = FileObjectPosix(r, "rb")
    writer = FileObjectPosix(w, "wb")
    ticks = []
    running = [True]

    def tick():
        while running[0]:
            ticks.append(None)
            stolon.sleep(0.0005)

    def write():
        writer.write(data)
        writer.close()                  # flushes, then EOF for the reader

    ticker = stolon.spawn(tick)
    writing = stolon.spawn(write)
    received = stolon.spawn(reader.read).get(timeout=10)
    writing.get(timeout=5)
    running[0] = False
    ticker.join(timeout=5)
    assert received == data
    assert ticks                        # the hub ran other greenlets meanwhile
    reader.close()


def test_posix_unbuffered_binary(pipe):
    r, w = pipe
    reader = FileObjectPosix(r, "rb", bufsize=0)
    writer = FileObjectPosix(w, "wb", buffering=0)
    assert reader.io is reader.fileio
    assert type(reader.io).__name__ == "GreenFileDescriptorIO"
    assert writer.write(b"abc") == 3
    assert reader.read(100) == b"abc"   # what is there, without waiting for 100
    buf = bytearray(4)
    writer.write(b"wxyz")
    assert reader.readinto(buf) == 4 and buf == bytearray(b"wxyz")
    writer.close()
    assert reader.read() == b""
    reader.close()


def test_posix_readall_returns_what_arrived_when_closed_by_another_greenlet(pipe):
    r, w = pipe
    reader = FileObjectPosix(r, "rb", bufsize=0)
    os.write(w, b"abc")
    reading = stolon.spawn(reader.read)
    stolon.sleep(0.01)
    reader.close()
    assert reading.get(timeout=5) == b"abc"


def test_posix_close_wakes_a_waiting_reader(pipe):
    r, w = pipe
    reader = FileObjectPosix(r, "rb", bufsize=0)
    reading = stolon.spawn(reader.read, 10)
    stolon.sleep(0.01)
    reader.close()
    reading.join(timeout=5)
    assert isinstance(reading.exception, OSError)
    assert reading.exception.errno == errno.EBADF
    assert reading.exception.strerror == "File descriptor was closed in another greenlet"
    assert not is_open(r)


def test_posix_atomic_write_writes_everything(pipe):
    r, w = pipe
    data = b"x" * 300000
    writer = FileObjectPosix(w, "wb", bufsize=0, atomic_write=True)
    reader = FileObjectPosix(r, "rb")
    reading = stolon.spawn(reader.read, len(data))
    assert writer.write(data) == len(data)
    assert writer.writeall(b"") == 0
    assert reading.get(timeout=5) == data
    writer.close()
    reader.close()
    plain = FileObjectPosix(os.open(os.devnull, os.O_WRONLY), "wb", bufsize=0)
    assert not hasattr(plain, "writeall")
    plain.close()


# -- text mode ---------------------------------------------------------------------------

def test_posix_text_encoding(pipe):
    r, w = pipe
    writer = FileObjectPosix(w, "w", encoding="latin-1")
    reader = FileObjectPosix(r, "rb")
    assert writer.encoding == "latin-1"
    writer.write("caf\xe9\n")
    writer.flush()
    assert reader.read(5) == b"caf\xe9\n"
    writer.close()
    reader.close()


def test_posix_text_newline_translation(pipe):
    r, w = pipe
    writer = FileObjectPosix(w, "w", newline="\r\n")
    reader = FileObjectPosix(r, "rb", bufsize=0)
    writer.write("a\nb\n")
    writer.flush()
    assert reader.read(100) == b"a\r\nb\r\n"
    reader.close()
    r2, w2 = os.pipe()
    universal = FileObjectPosix(r2, "r")            # newline=None: universal newlines
    os.write(w2, b"x\r\ny\rz\n")
    os.close(w2)
    assert universal.read() == "x\ny\nz\n"
    assert universal.newlines == ("\r", "\n", "\r\n")
    universal.close()
    writer.close()


def test_posix_newline_empty_keeps_line_ends(pipe):
    r, w = pipe
    reader = FileObjectPosix(r, "r", newline="")
    os.write(w, b"a\r\nb\rc\n")
    os.close(w)
    assert list(reader) == ["a\r\n", "b\r", "c\n"]
    reader.close()


def test_posix_readline_and_iteration(pipe):
    r, w = pipe
    reader = FileObjectPosix(r, "r")
    writer = FileObjectPosix(w, "w")

    def write():
        for line in ("one\n", "two\n", "three\n", "four"):
            writer.write(line)
            writer.flush()
            stolon.sleep(0.001)
        writer.close()

    writing = stolon.spawn(write)
    assert reader.readline() == "one\n"
    assert iter(reader) is reader
    assert next(reader) == "two\n"
    assert list(reader) == ["three\n", "four"]
    assert reader.readline() == ""
    writing.get(timeout=5)
    reader.close()


def test_posix_readlines_and_writelines(pipe):
    r, w = pipe
    writer = FileObjectPosix(w, "wb")
    reader = FileObjectPosix(r, "rb")
    writer.writelines([b"a\n", b"b\n", b"c"])
    writer.close()
    assert reader.readlines() == [b"a\n", b"b\n", b"c"]
    reader.close()


def test_posix_line_buffering(pipe):
    r, w = pipe
    writer = FileObjectPosix(w, "w", buffering=1)
    assert writer.line_buffering
    writer.write("line\n")                          # flushed by the newline
    assert os.read(r, 100) == b"line\n"
    writer.close()


def test_binary_line_buffering_warns(pipe):
    r, w = pipe
    with pytest.warns(RuntimeWarning, match="line buffering"):
        writer = FileObjectPosix(w, "wb", buffering=1, close=False)
    writer.close()


def test_posix_modes_and_names(pipe):
    r, w = pipe
    cases = [("rU", "r", "TextIOWrapper"), ("r", "r", "TextIOWrapper"),
             ("rt", "rt", "TextIOWrapper"), ("rb", "rb", "BufferedReader")]
    for mode, reported, layer in cases:
        fobj = FileObjectPosix(r, mode, close=False)
        assert type(fobj.io).__name__ == layer
        assert fobj.fileio.mode == reported
        assert fobj.name == r
        assert fobj.fileno() == r
        assert fobj.readable() and not fobj.writable()
        assert not fobj.seekable() and not fobj.isatty()
        fobj.close()
    assert is_open(r)


# -- regular files -----------------------------------------------------------------------

def test_posix_on_a_path_seeks(tmp_path):
    path = str(tmp_path / "f")
    with FileObjectPosix(path, "w+") as fobj:
        assert fobj.name == path and fobj.mode == "w+"
        fobj.write("hello\nworld\n")
        assert fobj.seekable()
        fobj.seek(0)
        assert fobj.readlines() == ["hello\n", "world\n"]
        assert fobj.tell() == 12
    assert fobj.closed
    with FileObjectPosix(path, "rb") as fobj:
        assert fobj.readline() == b"hello\n"
        assert fobj.read1(2) == b"wo"
        assert fobj.tell() == 8


def test_posix_pipe_seek_and_unsupported(pipe):
    r, w = pipe
    reader = FileObjectPosix(r, "rb")
    with pytest.raises(io.UnsupportedOperation):
        reader.seek(0)
    with pytest.raises(OSError) as exc:
        reader.tell()
    assert exc.value.errno == errno.ESPIPE
    with pytest.raises(io.UnsupportedOperation, match="write"):
        reader.write(b"x")
    reader.close()
    writer = FileObjectPosix(w, "wb", bufsize=0)
    with pytest.raises(io.UnsupportedOperation, match="read"):
        writer.read()
    with pytest.raises(io.UnsupportedOperation, match="read"):
        writer.readinto(bytearray(1))
    writer.close()


# -- close -------------------------------------------------------------------------------

def test_posix_close_closes_the_fd(pipe):
    r, w = pipe
    fobj = FileObjectPosix(r, "rb")
    assert not fobj.closed
    fobj.close()
    assert fobj.closed
    assert fobj.fileio is None
    assert not is_open(r)
    fobj.close()                                    # again: nothing


def test_posix_close_false_keeps_the_fd_non_blocking(pipe):
    r, w = pipe
    writer = FileObjectPosix(w, "wb", close=False)
    writer.write(b"kept")
    writer.close()                                  # flushes
    assert is_open(w)
    assert not os.get_blocking(w)                   # gevent does not restore blocking mode
    assert os.read(r, 10) == b"kept"


def test_closed_file_object_raises_file_object_closed(pipe):
    r, w = pipe
    fobj = FileObjectPosix(r, "rb")
    fobj.close()
    # the lookup itself raises: the methods left with the stream
    for call in (lambda: fobj.read, lambda: fobj.readline(), lambda: fobj.fileno(),
                 lambda: fobj.flush(), lambda: next(fobj), lambda: fobj.mode):
        with pytest.raises(OSError) as exc:
            call()
        assert_file_object_closed(exc)
    assert fobj.name == r                           # the name outlives the stream
    assert "closed_fobj=" in repr(fobj)
    assert bool(fobj)


def test_posix_context_manager_and_repr(pipe):
    r, w = pipe
    with FileObjectPosix(r, "rb") as fobj:
        assert repr(fobj).startswith("<FileObjectPosix at 0x")
        assert "_fobj=<_io.BufferedReader name=%d>" % r in repr(fobj)
        assert "fileno=%d mode='rb'" % r in repr(fobj.fileio)
    assert fobj.closed and not is_open(r)


def test_posix_over_an_object_with_fileno_closes_it(pipe):
    r, w = pipe
    wrapped = open(r, "rb")
    fobj = FileObjectPosix(wrapped, "rb", close=False)
    assert fobj.fileio.name == r
    os.write(w, b"data")
    assert fobj.read(4) == b"data"
    fobj.close()
    assert wrapped.closed                           # gevent closes it, close=False or not


def test_io_assignment_delegates_to_the_new_stream(pipe):
    r, w = pipe
    fobj = FileObjectBlock(r, "rb", close=False)
    old = fobj.io
    fobj.io = io.BytesIO(b"hello\nthere")
    assert list(fobj) == [b"hello\n", b"there"]
    old.close()
    fobj.close()
    assert is_open(r)


# -- FileObjectThread --------------------------------------------------------------------

def test_thread_on_a_regular_file(tmp_path):
    path = str(tmp_path / "f")
    with FileObjectThread(path, "w") as fobj:
        assert fobj.threadpool is stolon.get_hub().threadpool
        assert fobj.write("hello\nworld\n") == 12
    with FileObjectThread(path, "rb") as fobj:
        assert fobj.name == path and fobj.mode == "rb"
        assert fobj.read.__name__ == "read"
        assert list(fobj) == [b"hello\n", b"world\n"]
        assert "threadpool=<ThreadPool" in repr(fobj)
    with pytest.raises(OSError) as exc:
        fobj.read()
    assert_file_object_closed(exc)


@pytest.mark.skipif(stolon.__name__ != "st" + "olon",
                    reason="gevent takes `threadpool or the hub's`: an idle pool is false")
def test_thread_uses_the_given_pool_even_when_it_is_idle(tmp_path):
    from stolon.threadpool import ThreadPool
    pool = ThreadPool(1)
    try:
        assert len(pool) == 0       # idle, so false
        with FileObjectThread(str(tmp_path / "f"), "w", threadpool=pool) as fobj:
            assert fobj.threadpool is pool
            fobj.write("x")
    finally:
        pool.kill()


class RecordingReader(io.RawIOBase):
    """A raw stream that records the threads that read it and how many reads overlap."""

    def __init__(self, barrier=None):
        io.RawIOBase.__init__(self)
        self.threads = set()
        self.active = self.most_active = 0
        self.barrier = barrier
        self._guard = threading.Lock()

    def readable(self):
        return True

    def readinto(self, buf):
        with self._guard:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        self.threads.add(threading.get_ident())
        if self.barrier is not None:
            self.barrier.wait()
        else:
            time.sleep(0.01)
        with self._guard:
            self.active -= 1
        buf[:1] = b"x"
        return 1


def test_thread_calls_run_in_the_pool_one_at_a_time():
    raw = RecordingReader()
    fobj = FileObjectThread(raw, "rb", bufsize=0)
    readers = [stolon.spawn(fobj.read, 1) for _ in range(4)]
    assert [g.get(timeout=5) for g in readers] == [b"x"] * 4
    assert raw.most_active == 1
    assert threading.get_ident() not in raw.threads
    fobj.close()
    assert raw.closed


def test_thread_without_lock_runs_calls_together():
    raw = RecordingReader(threading.Barrier(2, timeout=5))
    fobj = FileObjectThread(raw, "rb", bufsize=0, lock=False)
    assert type(fobj.lock).__name__ == "DummySemaphore"
    readers = [stolon.spawn(fobj.read, 1) for _ in range(2)]
    assert [g.get(timeout=10) for g in readers] == [b"x"] * 2   # both met at the barrier
    assert raw.most_active == 2
    fobj.close()


def test_thread_shares_a_given_lock():
    from stolon.lock import Semaphore
    lock = Semaphore()
    raw = RecordingReader()
    fobj = FileObjectThread(raw, "rb", bufsize=0, lock=lock)
    assert fobj.lock is lock
    lock.acquire()
    reading = stolon.spawn(fobj.read, 1)
    stolon.sleep(0.02)
    assert not reading.ready() and not raw.threads      # waits for the lock's holder
    lock.release()
    assert reading.get(timeout=5) == b"x"
    fobj.close()


def test_thread_bad_lock():
    with pytest.raises(TypeError, match=r"Expected a Semaphore or boolean, got <class 'int'>"):
        FileObjectThread(io.BytesIO(), "rb", lock=5)


def test_thread_on_a_pipe_lets_greenlets_run(pipe):
    r, w = pipe
    reader = FileObjectThread(r, "rb", close=False)
    ticks = []

    def tick():
        for i in range(10):
            ticks.append(i)
            stolon.sleep(0.001)
        os.write(w, b"ping")

    reading = stolon.spawn(reader.read, 4)
    ticker = stolon.spawn(tick)
    assert reading.get(timeout=5) == b"ping"
    ticker.join(timeout=5)
    assert ticks == list(range(10))
    assert os.get_blocking(r)                       # the pool's thread blocks, not the fd
    reader.close()
    assert is_open(r)


def test_thread_close_flushes_and_closes_in_the_pool(tmp_path):
    path = str(tmp_path / "f")
    wrapped = open(path, "wb")
    fobj = FileObjectThread(wrapped, "wb", close=False)
    assert fobj.io is wrapped                       # already buffered: used as it is
    fobj.write(b"abc")
    fobj.close()
    assert not wrapped.closed                       # close=False
    wrapped.close()
    with open(path, "rb") as check:
        assert check.read() == b"abc"
    fobj = FileObjectThread(path, "r", close=False)  # a path is always closed
    stream = fobj.io
    fobj.close()
    assert stream.closed


def test_thread_text_over_binary_file_object():
    fobj = FileObjectThread(io.BytesIO(b"a\nb"), "rb")
    assert fobj.readlines() == [b"a\n", b"b"]
    fobj.close()
    fobj = FileObjectThread(io.StringIO("a\nb"), "r")
    assert fobj.readlines() == ["a\n", "b"]
    fobj.close()


# -- FileObjectBlock ---------------------------------------------------------------------

def test_block_on_a_path(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "w") as out:
        out.write("hello\nworld\n")
    with FileObjectBlock(path) as fobj:
        assert fobj.mode == "r"
        assert fobj.readline() == "hello\n"
        assert fobj.read() == "world\n"
    assert fobj.closed and not bool(fobj.io)


def test_block_over_a_file_object(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "wb") as out:
        out.write(b"data")
    wrapped = open(path, "rb")
    fobj = FileObjectBlock(wrapped, "rb")
    assert fobj.io is wrapped
    assert fobj.read() == b"data"
    fobj.close()
    assert wrapped.closed
    wrapped = open(path, "r")
    with pytest.raises(ValueError, match="Unable to perform binary IO on top of text IO stream"):
        FileObjectBlock(wrapped, "rb")
    assert wrapped.closed                           # a failed wrap closes the raw object


def test_block_atomic_write(pipe):
    r, w = pipe
    fobj = FileObjectBlock(w, "wb", bufsize=0, atomic_write=True, close=False)
    assert fobj.write(b"abc") == 3
    assert fobj.writeall(bytearray(b"de")) == 2
    assert os.read(r, 10) == b"abcde"
    fobj.close()
    assert is_open(w)


# -- bad arguments -----------------------------------------------------------------------

CLASSES = [FileObjectPosix, FileObjectThread, FileObjectBlock]

BAD_ARGUMENTS = [
    ((0, "rz"), {}, ValueError, "invalid mode: 'rz'"),
    ((0, "rr"), {}, ValueError, "invalid mode: 'rr'"),
    ((0, 5), {}, TypeError, "invalid mode: 5"),
    ((0, "rU+"), {}, ValueError, "mode U cannot be combined with 'x', 'w', 'a', or '+'"),
    ((0, "rw"), {}, ValueError, "can't have read/write/append mode at once"),
    ((0, "b"), {}, ValueError, "must have exactly one of read/write/append mode"),
    ((0, "rtb"), {}, ValueError, "can't have text and binary mode at once"),
    ((0, "rb"), {"encoding": "utf-8"}, ValueError,
     "binary mode doesn't take an encoding argument"),
    ((0, "rb"), {"errors": "strict"}, ValueError, "binary mode doesn't take an errors argument"),
    ((0, "rb"), {"newline": ""}, ValueError, "binary mode doesn't take a newline argument"),
    ((0, "r"), {"encoding": 5}, TypeError, "invalid encoding: 5"),
    ((0, "r"), {"errors": 5}, TypeError, "invalid errors: 5"),
    ((0,), {"bufsize": "x"}, TypeError, "invalid buffering: 'x'"),
    ((0,), {"buffering": 1, "bufsize": 2}, TypeError, "Cannot specify both buffering=1 and bufsize=2"),
    ((0,), {"closefd": True, "close": False}, TypeError,
     "Cannot specify both closefd=True and close=False"),
    ((object(),), {}, TypeError, "expected str, bytes or os.PathLike object, not object"),
    ((1.5,), {}, TypeError, "expected str, bytes or os.PathLike object, not float"),
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("args,kwargs,error,message", BAD_ARGUMENTS)
def test_bad_arguments(cls, args, kwargs, error, message):
    with pytest.raises(error) as exc:
        cls(*args, **kwargs)
    assert str(exc.value) == message


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_closed_fd(cls):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as exc:
        cls(r, "rb")
    assert exc.value.errno == errno.EBADF


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_missing_path(cls, tmp_path):
    with pytest.raises(FileNotFoundError):
        cls(str(tmp_path / "missing"))


def test_posix_needs_a_real_fd():
    with pytest.raises(io.UnsupportedOperation):
        FileObjectPosix(io.BytesIO(b"a"), "rb")


# -- leaks -------------------------------------------------------------------------------

def _pipe_round_trip():
    r, w = os.pipe()
    reader = FileObjectPosix(r, "r")
    writer = FileObjectPosix(w, "w")
    writer.write("ping\n")
    writer.flush()
    assert reader.readline() == "ping\n"
    writer.close()
    reader.close()


def test_open_close_cycles_leak_nothing(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "wb") as out:
        out.write(b"x")

    def cycles(count):
        for _ in range(count):
            _pipe_round_trip()
        for _ in range(count // 10):
            with FileObjectThread(path, "rb") as fobj:
                fobj.read()

    cycles(20)
    fds, objects = open_fd_count(), live_object_count()
    cycles(300)
    assert open_fd_count() == fds
    assert live_object_count() - objects < 100      # a leak per cycle would be >= 300
