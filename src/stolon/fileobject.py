"""stolon.fileobject: file objects whose blocking calls let other greenlets run, as
gevent.fileobject.

All three classes take ``io.open``'s arguments, ``(fobj, mode='r', buffering=-1,
closefd=True, encoding=None, errors=None, newline=None)``, with gevent's older
spellings ``bufsize`` and ``close`` too.  ``fobj`` is a file descriptor, an object
with ``fileno()`` or a path.

- ``FileObjectPosix``: the fd goes non-blocking and every read or write that would
  block parks the greenlet in the hub until the fd is ready.  Meant for pipes,
  sockets and terminals (regular files never make a read wait).  The fd stays
  non-blocking after ``close()``.  ``fileio`` is the raw layer.
- ``FileObjectThread``: every call runs in the hub's thread pool (or ``threadpool``),
  one at a time under ``lock`` (``True``: a new ``Semaphore``; false: none; or a
  lock of your own).  Works with any file-like object.
- ``FileObjectBlock``: the same interface, blocking the thread (for tests and
  debugging).

``FileObject`` is the class ``stolon.config.fileobject`` names when this module is
first imported (``STOLON_FILE`` or gevent's ``GEVENT_FILE``: ``posix``, ``thread``,
``block`` or a dotted class name); ``FileObjectPosix`` by default.

The io methods (``read``, ``readline``, ``write``, ``seek``, ...) are those of the io
stack built from the arguments (text layer, buffer, raw file), looked up once; other
attributes are read from it on demand.  On a closed file object, the io methods and
attributes raise ``FileObjectClosed`` (an ``OSError`` with EBADF), as in gevent.
"""
import functools
import sys
from errno import EBADF

from stolon._config import config as _config
from stolon._fileobject_io import GreenOpenDescriptor, OpenDescriptor
from stolon.hub import get_hub
from stolon.lock import DummySemaphore, Semaphore

__all__ = [
    "FileObjectPosix",
    "FileObjectThread",
    "FileObjectBlock",
    "FileObject",
]


class FileObjectClosed(OSError):
    """Using a file object after its ``close()``."""

    def __init__(self):
        OSError.__init__(self, EBADF, "Bad file descriptor (FileObject was closed)")


class _ClosedIO:
    """What a closed file object holds instead of its io stack: only the name is left."""
    __slots__ = ("name",)

    def __init__(self, stream):
        try:
            self.name = stream.name
        except AttributeError:
            pass

    def __getattr__(self, name):
        if name == "name":      # the stream had none
            raise AttributeError
        raise FileObjectClosed

    def __bool__(self):
        return False


class FileObjectBase:
    """What the three file objects share: delegation to the io stack, ``close``,
    iteration by lines, the context manager."""

    #: the io stack's methods copied onto the instance (wrapped by ``_wrap_method``)
    _delegate_methods = (
        "flush", "fileno", "writable", "readable", "seek", "seekable", "tell",
        "read", "readline", "readlines", "read1", "readinto",
        "write", "writeall", "writelines", "truncate",
    )

    _io = None

    def __init__(self, stream, closefd):
        self._io = stream
        self._close = closefd
        self._do_delegate_methods()

    @property
    def io(self):
        """The io stack this object drives; assigning another one re-delegates."""
        return self._io

    @io.setter
    def io(self, stream):
        self._io = stream
        self._do_delegate_methods()

    def _do_delegate_methods(self):
        stream = self._io
        cls = type(self)
        instance_dict = self.__dict__
        for name in self._delegate_methods:
            if hasattr(cls, name):
                continue
            method = getattr(stream, name, None)
            if method:
                instance_dict[name] = self._wrap_method(method)
            else:
                instance_dict.pop(name, None)

    def _wrap_method(self, method):
        """The callable that stands for ``method`` of the io stack."""
        return method

    @property
    def closed(self):
        """True once ``close()`` was called."""
        return isinstance(self._io, _ClosedIO)

    def close(self):
        """Close the io stack (which closes the file as ``closefd`` says); again: nothing."""
        stream = self._io
        if isinstance(stream, _ClosedIO):
            return
        self._io = _ClosedIO(stream)
        try:
            self._do_close(stream, self._close)
        finally:
            stream = None
            instance_dict = self.__dict__
            for name in self._delegate_methods:
                instance_dict.pop(name, None)

    def _do_close(self, stream, closefd):
        raise NotImplementedError

    def __getattr__(self, name):
        return getattr(self._io, name)

    def __repr__(self):
        return "<%s at 0x%x %s_fobj=%r%s>" % (
            type(self).__name__, id(self), "closed" if self.closed else "", self._io,
            self._extra_repr())

    def _extra_repr(self):
        return ""

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __bool__(self):
        return True


class FileObjectPosix(FileObjectBase):
    """A file object over a non-blocking fd whose reads and writes wait in the hub
    (see the module docstring).  ``fileio`` is its raw layer: reading it directly
    mixes badly with the buffered and text layers above."""

    def __init__(self, *args, **kwargs):
        descriptor = GreenOpenDescriptor(*args, **kwargs)
        stream, self.fileio = descriptor.opened()
        FileObjectBase.__init__(self, stream, descriptor.closefd)

    def _do_close(self, stream, closefd):
        # the raw layer knows whether it closes the fd
        try:
            stream.close()
            self.fileio.close()
        finally:
            self.fileio = None


class FileObjectBlock(FileObjectBase):
    """The file object interface over plain blocking io: other greenlets wait while a
    call blocks."""

    def __init__(self, fobj, *args, **kwargs):
        descriptor = OpenDescriptor(fobj, *args, **kwargs)
        stream, _ = descriptor.opened()
        FileObjectBase.__init__(self, stream, descriptor.closefd)

    def _do_close(self, stream, closefd):
        stream.close()


class FileObjectThread(FileObjectBase):
    """A file object whose every call runs in a thread pool, one at a time.

    ``threadpool``: the pool (default: the hub's).  ``lock``: ``True`` (default) for a
    new ``Semaphore``, a false value for none, or any lock with ``__enter__`` to share
    with other users of the file.  The io stack is opened in the calling thread;
    ``close()`` flushes and closes it in the pool."""

    def __init__(self, *args, **kwargs):
        lock = kwargs.pop("lock", True)
        threadpool = kwargs.pop("threadpool", None)
        descriptor = OpenDescriptor(*args, **kwargs)
        # not `or`: an idle pool is false (its len() is its number of tasks)
        self.threadpool = threadpool if threadpool is not None else get_hub().threadpool
        if lock is True:
            lock = Semaphore()
        elif not lock:
            lock = DummySemaphore()
        if not hasattr(lock, "__enter__"):
            raise TypeError("Expected a Semaphore or boolean, got %r" % type(lock))
        self.lock = lock
        stream, _ = descriptor.opened()
        # the wrapped methods see the stack through this box, not through self (no
        # reference cycle); close() empties it so they fail without a trip to the pool
        self._io_box = [stream]
        FileObjectBase.__init__(self, stream, descriptor.closefd)

    def _do_delegate_methods(self):
        FileObjectBase._do_delegate_methods(self)
        self._io_box[0] = self._io

    def _extra_repr(self):
        return " threadpool=%r" % (self.threadpool,)

    def _wrap_method(self, method):
        io_box = self._io_box
        lock = self.lock
        apply = self.threadpool.apply

        @functools.wraps(method)
        def in_pool(*args, **kwargs):
            if io_box[0] is None:
                raise FileObjectClosed
            with lock:
                return apply(method, args, kwargs)
        return in_pool

    def _do_close(self, stream, closefd):
        self._io_box[0] = None
        pool = self.threadpool
        try:
            with self.lock:
                pool.apply(stream.flush)
        finally:
            if closefd:
                # not under the lock (a call stuck in the pool must not keep the file
                # open); the error comes back as a value so the pool does not report it
                error = pool.apply(_close_reporting_error, (stream,))
                stream = None
                if error is not None:
                    raise error


def _close_reporting_error(stream):
    try:
        stream.close()
    except BaseException:   # handed back to the caller
        return sys.exc_info()[1]
    return None


# read now that the classes exist: the setting's short names import them from here
FileObject = _config.fileobject
