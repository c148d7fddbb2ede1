"""Cooperative pipe file objects for stolon.subprocess.

The stdlib's ``Popen`` wraps each pipe fd in ``io`` objects (a ``FileIO``, then a
``BufferedReader``/``BufferedWriter``, then a ``TextIOWrapper`` in text mode).
``make_cooperative`` peels those layers off, puts the fd in non-blocking mode and
rebuilds the same layers over ``GreenPipeIO``, a raw stream that parks the calling
greenlet on the hub's io watcher whenever the kernel says EAGAIN.  The fd keeps its
owner (the original ``FileIO``): nothing is duplicated and closing any layer closes it.

O_NONBLOCK belongs to the open pipe, not to the fd: a pipe handed to another child
(``Popen(..., stdin=first.stdout)``, the shell-pipeline idiom) would be non-blocking in
that child too, and most programs fail on EAGAIN.  ``hand_to_child`` puts such a pipe
back in blocking mode; this side then waits until the pipe is ready before each read
or write (which can still block the thread if the other process took the data first,
or for a write larger than the room in the pipe: sharing a pipe end is rare).
"""
import io
import os

from stolon.hub import get_hub
from stolon._socketcommon import cancel_wait_ex

_READ = 1
_WRITE = 2


class GreenPipeIO(io.RawIOBase):
    """A raw, non-blocking pipe end whose reads and writes wait in the hub instead of
    blocking the thread.  ``fileio`` is the ``io.FileIO`` that owns the fd."""

    def __init__(self, fileio):
        io.RawIOBase.__init__(self)
        self._fio = fileio
        self._fd = fileio.fileno()
        os.set_blocking(self._fd, False)
        self._blocking = False
        self._hub = get_hub()
        self._read_watcher = None
        self._write_watcher = None

    def hand_to_child(self):
        """The pipe becomes another child's stdio: make it blocking again (see the
        module docstring)."""
        if not self._blocking:
            os.set_blocking(self._fd, True)
            self._blocking = True

    # -- what the io layers above ask ----------------------------------------------

    @property
    def name(self):
        return self._fio.name

    @property
    def mode(self):
        return self._fio.mode

    def fileno(self):
        return self._fd

    def readable(self):
        return self._fio.readable()

    def writable(self):
        return self._fio.writable()

    def seekable(self):
        return False

    def isatty(self):
        return False

    # -- I/O: FileIO answers None for EAGAIN on a non-blocking fd -------------------

    def readinto(self, buffer):
        fio = self._fio
        if self._blocking:
            self._wait_readable()
        while True:
            n = fio.readinto(buffer)
            if n is not None:
                return n
            self._wait_readable()

    def readall(self):
        # FileIO.readall reads until EOF (b"") or EAGAIN (what it has, or None); on a
        # blocking pipe it would block until EOF, so it is read a chunk at a time
        fio = self._fio
        read = fio.read if self._blocking else fio.readall
        chunks = []
        while True:
            if self._blocking:
                self._wait_readable()
            data = read(io.DEFAULT_BUFFER_SIZE) if self._blocking else read()
            if data is None:
                self._wait_readable()
            elif data:
                chunks.append(data)
            else:
                return b"".join(chunks)

    def write(self, data):
        fio = self._fio
        if self._blocking:
            self._wait_writable()
        while True:
            n = fio.write(data)
            if n is not None:
                return n
            self._wait_writable()

    def _wait_readable(self):
        watcher = self._read_watcher
        if watcher is None:
            watcher = self._read_watcher = self._new_watcher(_READ)
        self._hub.wait(watcher)

    def _wait_writable(self):
        watcher = self._write_watcher
        if watcher is None:
            watcher = self._write_watcher = self._new_watcher(_WRITE)
        self._hub.wait(watcher)

    def _new_watcher(self, event):
        # made on the first EAGAIN, kept until close
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return self._hub.loop.io(self._fd, event)

    def close(self):
        """Close the fd; a greenlet parked on it gets ``cancel_wait_ex`` (EBADF)."""
        if self.closed:
            return
        try:
            hub = self._hub
            for watcher in (self._read_watcher, self._write_watcher):
                if watcher is not None:
                    hub.cancel_wait(watcher, cancel_wait_ex, True)
            self._read_watcher = self._write_watcher = None
        finally:
            try:
                self._fio.close()
            finally:
                io.RawIOBase.close(self)


def make_cooperative(fileobj, bufsize):
    """The same stack of io objects as ``fileobj`` (a ``FileIO``, optionally under a
    buffered layer and a ``TextIOWrapper``), rebuilt over a ``GreenPipeIO`` on its fd.
    ``bufsize`` is the ``Popen`` argument (``0``: no buffered layer was made)."""
    text = None
    if isinstance(fileobj, io.TextIOWrapper):
        text = fileobj
        fileobj = text.detach()
    buffered_type = None
    if isinstance(fileobj, (io.BufferedReader, io.BufferedWriter)):
        buffered_type = type(fileobj)
        fileobj = fileobj.detach()
    result = GreenPipeIO(fileobj)
    if buffered_type is not None:
        result = buffered_type(result, bufsize if bufsize > 1 else io.DEFAULT_BUFFER_SIZE)
    if text is not None:
        result = io.TextIOWrapper(result, encoding=text.encoding, errors=text.errors,
                                  line_buffering=text.line_buffering,
                                  write_through=text.write_through)
    return result


def hand_to_child(fileobj):
    """If ``fileobj`` (a ``Popen`` stdio argument) is a layer over a ``GreenPipeIO``,
    make its pipe blocking for the child that receives it."""
    layer = fileobj
    for _ in range(3):      # text, buffered, raw: no deeper (nor round a cycle)
        if isinstance(layer, GreenPipeIO):
            layer.hand_to_child()
            return
        layer = getattr(layer, "buffer", None) or getattr(layer, "raw", None)
