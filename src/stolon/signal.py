"""stolon.signal: the ``signal`` module with gevent's cooperative SIGCHLD handling, and
``signal_handler`` (gevent's ``gevent.signal_handler``).

SIGCHLD belongs to the loop's child watchers, so ``signal(SIGCHLD, handler)`` does not
install a process-level handler: it records ``handler``, which then runs in a new
greenlet each time a child forked by ``stolon.os.fork`` (or started by
``stolon.subprocess``) terminates.  ``getsignal(SIGCHLD)`` answers consistently.
``SIG_IGN`` and ``SIG_DFL`` become the process's disposition, but while children are
watched the loop keeps its own handler on top and puts theirs back when it no longer
needs SIGCHLD: watched children are still reported (with ``SIG_IGN`` in place the
kernel would reap them unseen).  gevent lets them replace the loop's handler until the
next child watcher starts, and a wait for a child watched across the change can hang.
Every other signal number, and every other name, is the ``signal`` module's.
"""
import os
import signal as _signal
import sys

from stolon import _child_watch
from stolon._greenlet import Greenlet
from stolon.hub import get_hub
from stolon.os import ignored_errors

_signal_signal = _signal.signal
_signal_getsignal = _signal.getsignal
_signal_set_wakeup_fd = _signal.set_wakeup_fd
_SIGCHLD = getattr(_signal, "SIGCHLD", None)
_NOT_READ = object()

_child_handler = _NOT_READ
_child_wakeup_fd = -1
_child_wakeup_fd_warn_on_full_buffer = True

__implements__ = ["signal", "getsignal", "set_wakeup_fd"]
__extensions__ = ["signal_handler"]


def getsignal(signalnum):
    """``signal.getsignal``; for SIGCHLD the handler given to this module's ``signal``."""
    global _child_handler
    if signalnum != _SIGCHLD:
        return _signal_getsignal(signalnum)
    if _child_handler is _NOT_READ:
        _child_handler = _signal_getsignal(_SIGCHLD)
    return _child_handler


def signal(signalnum, handler):
    """``signal.signal``, except for SIGCHLD (see the module docstring); returns the
    previous handler."""
    global _child_handler
    if signalnum != _SIGCHLD:
        return _signal_signal(signalnum, handler)
    if handler not in (_signal.SIG_IGN, _signal.SIG_DFL) and not callable(handler):
        raise TypeError("signal handler must be signal.SIG_IGN, signal.SIG_DFL, or a callable object")
    previous = getsignal(signalnum)
    _child_handler = handler
    if handler == _signal.SIG_IGN or handler == _signal.SIG_DFL:
        _child_watch.with_sigchld_released(lambda: _signal_signal(signalnum, handler))
    return previous


def set_wakeup_fd(fd, /, *, warn_on_full_buffer=True):
    """``signal.set_wakeup_fd``; SIGCHLD from watched children writes to ``fd`` too."""
    global _child_wakeup_fd, _child_wakeup_fd_warn_on_full_buffer
    previous = _signal_set_wakeup_fd(fd, warn_on_full_buffer=warn_on_full_buffer)
    _child_wakeup_fd = fd
    _child_wakeup_fd_warn_on_full_buffer = warn_on_full_buffer
    return previous


def _on_child_exit():
    # In the hub after a watched child terminated: the handler runs in its own
    # greenlet so that it may block.
    handler = _child_handler
    if not callable(handler):
        return
    if _child_wakeup_fd >= 0:
        Greenlet(_write_wakeup_byte, _child_wakeup_fd, _child_wakeup_fd_warn_on_full_buffer).switch()
    Greenlet(handler, _SIGCHLD, None).switch()


def _write_wakeup_byte(fd, warn_on_full_buffer):
    try:
        os.write(fd, bytes((_SIGCHLD,)))
    except OSError as e:
        if warn_on_full_buffer or e.errno not in ignored_errors:
            get_hub().handle_error("set_wakeup_fd", *sys.exc_info())


class signal_handler:
    """``signal_handler(signalnum, handler, *args, **kwargs)``: call
    ``handler(*args, **kwargs)`` in a new greenlet each time the process receives
    ``signalnum`` (gevent's ``gevent.signal_handler``, the class ``gevent.hub.signal``).

    The watcher does not keep the loop running (``ref`` is False; assign to change
    that).  ``cancel()`` stops further deliveries and drops the handler and its
    arguments.  An exception from the handler goes to ``hub.handle_error`` with no
    context, so it is printed and raised in the main greenlet."""

    #: the class of the greenlet each delivery runs in
    greenlet_class = Greenlet

    def __init__(self, signalnum, handler, *args, **kwargs):
        if not callable(handler):
            raise TypeError("signal handler must be callable.")
        self.hub = get_hub()
        self.watcher = self.hub.loop.signal(signalnum, ref=False)
        self.handler = handler
        self.args = args
        self.kwargs = kwargs
        self.watcher.start(self._start)

    @property
    def ref(self):
        return self.watcher.ref

    @ref.setter
    def ref(self, value):
        self.watcher.ref = value

    def cancel(self):
        """Stop handling the signal and release the watcher, the handler and its
        arguments."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher.close()
        self.watcher = None
        self.handler = None
        self.args = None
        self.kwargs = None
        self.hub = None

    def _start(self):
        try:
            self.greenlet_class(self.handle).switch()
        except:  # noqa: E722 -- whatever it is, the loop must go on
            self.hub.handle_error(None, *sys.exc_info())

    def handle(self):
        """Run the handler (in its greenlet); errors go to ``hub.handle_error``."""
        try:
            self.handler(*self.args, **self.kwargs)
        except:  # noqa: E722
            self.hub.handle_error(None, *sys.exc_info())


if _SIGCHLD is not None:
    _child_watch.sigchld_hook = _on_child_exit

__imports__ = [name for name in dir(_signal)
               if not name.startswith("__") and name not in globals()]
globals().update((name, getattr(_signal, name)) for name in __imports__)

__all__ = __implements__ + __extensions__
