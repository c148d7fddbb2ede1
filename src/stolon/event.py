"""stolon.event: Event and AsyncResult (gevent.event).

Both wake their waiters in the order they started waiting, from one hub callback after
``set()``; neither ``set()`` switches.  They are meant for greenlets of one thread; a
``set()`` from another thread is delivered to the owning hub.
"""
import sys
import warnings

from stolon._abstract_linkable import AbstractLinkable
from stolon._core import _get_hub, getcurrent, schedule_notify
from stolon.timeout import Timeout

__all__ = ["Event", "AsyncResult"]

_NONE = object()


class Event(AbstractLinkable):
    """A flag greenlets can wait for (``threading.Event``'s API).  ``set()`` wakes every
    greenlet waiting at that moment, even if the flag is cleared again before they
    run; ``wait()`` returns immediately while the flag is set."""

    __slots__ = ("_flag",)

    def __init__(self):
        AbstractLinkable.__init__(self)
        self._flag = False

    def __str__(self):
        return "<%s.%s at 0x%x %s _links[%s]>" % (type(self).__module__, type(self).__name__, id(self),
                                                  "set" if self._flag else "clear", len(self._links))

    def is_set(self):
        """True if and only if the flag is set."""
        return self._flag

    if sys.version_info >= (3, 10):
        def isSet(self):
            """Deprecated alias of ``is_set()`` (with the stdlib's warning from 3.10 on,
            which a monkey-patched ``threading.Event`` must keep)."""
            warnings.warn("isSet() is deprecated, use is_set() instead", DeprecationWarning,
                          stacklevel=2)
            return self._flag
    else:
        isSet = is_set
    ready = is_set

    def set(self):
        """Set the flag and schedule the wake-up of every waiting greenlet."""
        self._flag = True
        if self._links and self._notifier is None:
            hub = self.hub
            if hub is not None and hub is _get_hub():
                # _check_and_notify's common case, inlined for the hand-off path
                self._notifier = schedule_notify(hub.loop, self)
            else:
                self._check_and_notify()

    def clear(self):
        """Reset the flag; ``wait()`` blocks again until the next ``set()``."""
        self._flag = False

    def wait(self, timeout=None):
        """Block until the flag is set or ``timeout`` seconds pass.  Returns True if the
        flag was set at some point during the wait (even if cleared since), False on
        timeout."""
        # AbstractLinkable._wait, unrolled: this is the hot path of every hand-off
        hub = self.hub
        if hub is None or hub is not _get_hub():
            self._capture_hub(True)
        if self._flag:
            if self._notifier is not None:
                self._park(True)
            return True
        if timeout is not None:
            return self._wait_core(timeout)
        # _park(False), unrolled
        resume = getcurrent()
        self._links.append(resume)
        try:
            result = self.hub.switch()
            if result is not self:
                self._invalid_switch(result)
        except BaseException:
            self._quiet_unlink_all(resume)
            raise
        return True

    def _wait_return_value(self, waited, wait_success):
        if not waited:
            return self._flag
        return wait_success

    def _reset_internal_locks(self):
        """Called by ``threading`` after fork on its Event objects; nothing to do."""


class AsyncResult(AbstractLinkable):
    """A one-shot result: ``set(value)`` or ``set_exception(exc)`` once, and every
    ``get()`` returns the value or raises the exception.  Usable as a link callback
    (``greenlet.link(result)``) and partly as a ``concurrent.futures.Future``."""

    __slots__ = ("_value", "_exc_info", "_imap_task_index")

    def __init__(self):
        AbstractLinkable.__init__(self)
        self._value = _NONE
        self._exc_info = ()

    @property
    def _exception(self):
        return self._exc_info[1] if self._exc_info else _NONE

    @property
    def value(self):
        """The value given to ``set()``, else None."""
        return None if self._value is _NONE else self._value

    @property
    def exc_info(self):
        """``(type, value, traceback)`` given to ``set_exception()``, else ``()``."""
        return self._exc_info

    @property
    def exception(self):
        """The exception given to ``set_exception()``, else None."""
        return self._exc_info[1] if self._exc_info else None

    def __str__(self):
        # gevent's text, including "unset" for a result holding a value
        text = "<%s " % (type(self).__name__,)
        exception = self._exception
        if self.value is not None or exception is not _NONE:
            text += "value=%r " % (self.value,)
        if exception is not None and exception is not _NONE:
            text += "exception=%r " % (exception,)
        if exception is _NONE:
            text += "unset "
        return text + " _links[%s]>" % len(self._links)

    def ready(self):
        """True once a value or an exception is held."""
        return bool(self._exc_info) or self._value is not _NONE

    def successful(self):
        """True if a value (not an exception) is held."""
        return self._value is not _NONE

    def set(self, value=None):
        """Store ``value`` and schedule the wake-up of every waiter."""
        self._value = value
        self._check_and_notify()

    set_result = set

    def set_exception(self, exception, exc_info=None):
        """Store ``exception`` (raised by ``get()``, with ``exc_info``'s traceback when
        given) and schedule the wake-up of every waiter."""
        if exc_info:
            self._exc_info = (exc_info[0], exc_info[1], exc_info[2])
        else:
            self._exc_info = (type(exception), exception, None)
        self._check_and_notify()

    def _raise_exception(self):
        _, value, tb = self._exc_info
        if value.__traceback__ is not tb:
            raise value.with_traceback(tb)
        raise value

    def get(self, block=True, timeout=None):
        """The value, or raise the exception; blocks until one is set.  Raises Timeout
        when ``timeout`` expires, or at once if ``block`` is false and nothing is set."""
        if self._value is not _NONE:
            return self._value
        if self._exc_info:
            return self._raise_exception()
        if not block:
            raise Timeout()
        self._capture_hub(True)
        self._wait_core(timeout, ())
        return self.get(block=False)

    def get_nowait(self):
        """``get(block=False)``."""
        return self.get(block=False)

    def wait(self, timeout=None):
        """Block until set or ``timeout`` passes; returns the value (None if an
        exception is held or the wait timed out).  Never raises the exception."""
        return self._wait(timeout)

    def _wait_return_value(self, waited, wait_success):
        return self.value

    def __call__(self, source):
        """Link protocol: take over a finished greenlet's (or result's) outcome."""
        if source.successful():
            self.set(source.value)
        else:
            self.set_exception(source.exception, getattr(source, "exc_info", None))

    def result(self, timeout=None):
        """``get(timeout=timeout)`` (``concurrent.futures.Future`` API)."""
        return self.get(timeout=timeout)

    def done(self):
        """``ready()`` (``concurrent.futures.Future`` API)."""
        return self.ready()

    def cancel(self):
        """Cancelling is not supported: always False."""
        return False

    def cancelled(self):
        """Always False."""
        return False
