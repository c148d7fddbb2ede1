"""The io stacks under stolon.fileobject.

``OpenDescriptor`` checks the arguments of the ``FileObject*`` constructors as
``io.open`` does and builds their io stack; ``GreenOpenDescriptor`` builds it over
``GreenFileDescriptorIO``, the raw layer of ``FileObjectPosix`` (``GreenPipeIO`` of
stolon.subprocess, for any fd).
"""
import io
import os
import warnings

from stolon._fileobject import GreenPipeIO
from stolon._socketcommon import cancel_wait_ex


class _NoName:
    """The ``name`` of a raw stream over an object that has none: reading it raises
    AttributeError, as for that object."""


class GreenFileDescriptorIO(GreenPipeIO):
    """The raw stream of ``FileObjectPosix``: a ``GreenPipeIO`` for any fd (a regular
    file can seek, a terminal says so), with the ``mode`` string the caller asked for.
    ``keep_alive`` is the caller's object that owns the fd, if any: it is closed with
    this stream, as gevent does."""

    mode = None         # an instance attribute here (the io layers above may set it)
    _seekable = None

    def __init__(self, fileio, mode, name=_NoName, keep_alive=None):
        GreenPipeIO.__init__(self, fileio)
        self.mode = mode
        self._name = name
        self._keep_alive = keep_alive
        self._can_read = fileio.readable()

    def readall(self):
        # FileIO.readall does not check the mode (a write end would say EBADF)
        if not self._can_read:
            raise io.UnsupportedOperation("read")
        if self._blocking:
            return GreenPipeIO.readall(self)
        # a close by another greenlet ends the read with what had arrived
        readall = self._fio.readall
        chunks = []
        while True:
            data = readall()        # what is there now: None if nothing, b"" at EOF
            if data is None:
                try:
                    self._wait_readable()
                except cancel_wait_ex:
                    break
            elif data:
                chunks.append(data)
            else:
                break
        return b"".join(chunks)

    @property
    def name(self):
        name = self._name
        if name is _NoName:
            raise AttributeError("name")
        return name

    def seekable(self):
        seekable = self._seekable
        if seekable is None:
            try:
                os.lseek(self._fd, 0, os.SEEK_CUR)
            except OSError:
                seekable = False
            else:
                seekable = True
            self._seekable = seekable
        return seekable

    def seek(self, offset, whence=os.SEEK_SET):
        return os.lseek(self._fd, offset, whence)

    def isatty(self):
        return self._fio.isatty()

    def close(self):
        if self.closed:
            return
        keep_alive, self._keep_alive = self._keep_alive, None
        try:
            GreenPipeIO.close(self)
        finally:
            if keep_alive is not None:
                keep_alive.close()

    def __repr__(self):
        return "<%s at 0x%x fileno=%s mode=%r>" % (
            type(self).__name__, id(self), None if self.closed else self._fd, self.mode)


class _OwnFileIO(io.FileIO):
    """The ``FileIO`` that ``OpenDescriptor`` opens for a path or fd: a subclass only so
    that an ``atomic_write`` stream can switch its class to ``_FileIOWriteAll``."""
    __slots__ = ()


def _write_all(stream, write, data):
    # the stdlib's raw write may take only part of the data; loop until it took all
    total = len(data)
    view = memoryview(data).cast("B")
    while view:
        view = view[write(stream, view):]
    return total


class _FileIOWriteAll(_OwnFileIO):
    """A raw file whose ``write`` writes everything (``atomic_write=True``)."""
    __slots__ = ()

    def writeall(self, data):
        """Write all of ``data``; return its length."""
        return _write_all(self, io.FileIO.write, data)

    write = writeall


class _GreenFileDescriptorIOWriteAll(GreenFileDescriptorIO):
    """A ``GreenFileDescriptorIO`` whose ``write`` writes everything
    (``atomic_write=True``)."""

    def writeall(self, data):
        """Write all of ``data``, waiting in the hub as needed; return its length."""
        return _write_all(self, GreenFileDescriptorIO.write, data)

    write = writeall


_ATOMIC_CLASSES = {
    _OwnFileIO: _FileIOWriteAll,
    GreenFileDescriptorIO: _GreenFileDescriptorIOWriteAll,
}


def _pick(preferred_name, preferred, old_name, old, default):
    # gevent takes both spellings of two arguments (closefd/close, buffering/bufsize)
    if preferred is not None and old is not None:
        raise TypeError("Cannot specify both %s=%s and %s=%s" % (
            preferred_name, preferred, old_name, old))
    if preferred is not None:
        return preferred
    return default if old is None else old


def _is_buffered(stream):
    # a text layer buffers inside its codec
    return (isinstance(stream, (io.BufferedIOBase, io.TextIOBase))
            or getattr(stream, "buffer", None) is not None)


def _buffer_size(stream):
    try:
        size = os.fstat(stream.fileno()).st_blksize
    except (OSError, AttributeError):
        return io.DEFAULT_BUFFER_SIZE
    return size if size > 1 else io.DEFAULT_BUFFER_SIZE


_MODE_LETTERS = frozenset("axrwb+tU")


class OpenDescriptor:
    """The arguments of a ``FileObject*`` constructor (those of ``io.open``, plus gevent's
    older ``bufsize`` and ``close`` spellings and ``atomic_write``), checked as
    ``io.open`` checks them; ``opened()`` builds the io stack they describe.

    ``fobj`` is a file descriptor, an object with ``fileno()`` (used as the raw
    stream as it is) or a path (always closed with the stack).  Unlike ``io.open``,
    text may be unbuffered (``buffering=0``)."""

    def __init__(self, fobj, mode="r", bufsize=None, close=None, encoding=None,
                 errors=None, newline=None, buffering=None, closefd=None,
                 atomic_write=False):
        closefd = _pick("closefd", closefd, "close", close, True)
        buffering = _pick("buffering", buffering, "bufsize", bufsize, -1)
        if not hasattr(fobj, "fileno"):
            if not isinstance(fobj, int):
                fobj = os.fspath(fobj)
                closefd = True
        if not isinstance(mode, str):
            raise TypeError("invalid mode: %r" % (mode,))
        if not isinstance(buffering, int):
            raise TypeError("invalid buffering: %r" % (buffering,))
        if encoding is not None and not isinstance(encoding, str):
            raise TypeError("invalid encoding: %r" % (encoding,))
        if errors is not None and not isinstance(errors, str):
            raise TypeError("invalid errors: %r" % (errors,))
        flags = set(mode)
        if not flags <= _MODE_LETTERS or len(mode) > len(flags):
            raise ValueError("invalid mode: %r" % (mode,))
        creating, reading, writing, appending = ("x" in flags, "r" in flags,
                                                 "w" in flags, "a" in flags)
        updating, text, binary = "+" in flags, "t" in flags, "b" in flags
        if "U" in flags:
            if creating or writing or appending or updating:
                raise ValueError("mode U cannot be combined with 'x', 'w', 'a', or '+'")
            reading = True
        if text and binary:
            raise ValueError("can't have text and binary mode at once")
        if creating + reading + writing + appending > 1:
            raise ValueError("can't have read/write/append mode at once")
        if not (creating or reading or writing or appending):
            raise ValueError("must have exactly one of read/write/append mode")
        if binary:
            for name, value in (("an encoding", encoding), ("an errors", errors),
                                ("a newline", newline)):
                if value is not None:
                    raise ValueError("binary mode doesn't take %s argument" % name)
            if buffering == 1:
                warnings.warn("line buffering (buffering=1) isn't supported in binary "
                              "mode, the default buffer size will be used",
                              RuntimeWarning, 3)
        #: the mode for ``io.FileIO`` (no 't', 'b' or 'U')
        self.fileio_mode = ("x" if creating else "") + ("r" if reading else "") + (
            "w" if writing else "") + ("a" if appending else "") + ("+" if updating else "")
        #: the mode the stack reports
        self.mode = self.fileio_mode + ("t" if text else "") + ("b" if binary else "")
        self._fobj = fobj
        self.binary = binary
        self.buffering = buffering
        self.encoding = encoding
        self.errors = errors
        self.newline = newline
        self.closefd = closefd
        self.atomic_write = atomic_write
        if updating:
            self._buffer_class = io.BufferedRandom
        elif reading:
            self._buffer_class = io.BufferedReader
        else:
            self._buffer_class = io.BufferedWriter

    def opened(self):
        """``(stream, raw)``: the io stack the arguments describe, and its raw bottom
        layer (the caller's object itself when it has ``fileno()``)."""
        raw = self._open_raw()
        try:
            return self._wrap(raw), raw
        except BaseException:
            raw.close()
            raise

    def _open_raw(self):
        fobj = self._fobj
        if hasattr(fobj, "fileno"):
            return fobj
        return _OwnFileIO(fobj, self.fileio_mode, self.closefd)

    def _wrap(self, raw):
        binary = self.binary
        if binary and isinstance(raw, io.TextIOBase):
            # bytes under a text layer would bypass its decoder
            raise ValueError("Unable to perform binary IO on top of text IO stream")
        buffering = self.buffering
        line_buffering = buffering == 1 or (buffering < 0 and raw.isatty())
        if line_buffering or buffering < 0:
            buffering = _buffer_size(raw)
        result = raw
        if buffering and not _is_buffered(raw):
            try:
                result = self._buffer_class(raw, buffering)
            except AttributeError:
                # not an io stream (no readable()/writable()): used as it is
                pass
        if not binary and not isinstance(raw, io.TextIOBase):
            result = io.TextIOWrapper(result, self.encoding, self.errors, self.newline,
                                      line_buffering)
        if result is not self._fobj:
            try:
                result.mode = self.mode
            except (AttributeError, TypeError):
                pass        # read-only on the buffered layers and FileIO
        if self.atomic_write and not _is_buffered(result):
            atomic_class = _ATOMIC_CLASSES.get(type(result))
            if atomic_class is not None:
                result.__class__ = atomic_class
        return result


class GreenOpenDescriptor(OpenDescriptor):
    """``OpenDescriptor`` for ``FileObjectPosix``: the raw layer is always a
    ``GreenFileDescriptorIO`` on the fd, whichever kind of ``fobj`` gave it."""

    def _open_raw(self):
        fobj = self._fobj
        if isinstance(fobj, int):
            fileio = io.FileIO(fobj, self.fileio_mode, self.closefd)
            return GreenFileDescriptorIO(fileio, self.mode, fobj)
        if not hasattr(fobj, "fileno"):     # a path: the stream owns the file
            fileio = io.FileIO(fobj, self.fileio_mode, True)
            return GreenFileDescriptorIO(fileio, self.mode, fobj)
        # the caller's object owns the fd: it is closed with the stream (gevent's rule)
        fileio = io.FileIO(fobj.fileno(), self.fileio_mode, False)
        return GreenFileDescriptorIO(fileio, self.mode, getattr(fobj, "name", _NoName), fobj)
