"""stolon.timeout: Timeout, an exception raised in the current greenlet when a timer
expires, and with_timeout."""
from stolon._core import getcurrent
from stolon.hub import get_hub

__all__ = ["Timeout", "with_timeout"]

_NONE = object()


class _NoTimer:
    """The timer of a Timeout that never fires (``seconds=None``)."""
    pending = False
    active = False
    seconds = None
    timer = None

    def start(self, *args, **kwargs):
        raise AssertionError("non-expiring timer cannot be started")

    def stop(self):
        pass

    cancel = close = stop

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        return None


_NO_TIMER = _NoTimer()


class Timeout(BaseException):
    """``Timeout(seconds=None, exception=None, ref=True, priority=-1)``: once started,
    raises in the greenlet that started it after ``seconds`` (``None``: never;
    ``0``/negative: at the next loop turn).  It raises itself unless ``exception`` is
    an exception class or instance; ``exception=False`` makes the ``with`` block end
    silently.  A ``BaseException``, so ``except Exception`` does not swallow it."""

    def __init__(self, seconds=None, exception=None, ref=True, priority=-1, _one_shot=False):
        BaseException.__init__(self)
        self.seconds = seconds
        self.exception = exception
        self._one_shot = _one_shot
        if seconds is None:
            self.timer = _NO_TIMER
        else:
            self.timer = get_hub().loop.timer(max(seconds or 0.0, 0.0), ref=ref, priority=priority)

    def start(self):
        """Arm the timer for the current greenlet."""
        if self.pending:
            raise AssertionError("%r is already started; to restart it, cancel it first" % self)
        if self.seconds is None:
            return
        if self.exception is None or self.exception is False or isinstance(self.exception, str):
            throws = self
        else:
            throws = self.exception
        # update=True: count from now, not from the loop's clock of its last turn
        # (which may be stale after a busy stretch of greenlet code)
        self.timer.start(self._on_expiration, getcurrent(), throws, update=True)

    def _on_expiration(self, glet, exception):
        glet.throw(exception)

    @classmethod
    def start_new(cls, timeout=None, exception=None, ref=True, _one_shot=False):
        """A started Timeout (a Timeout instance passed in is started if need be)."""
        if isinstance(timeout, Timeout):
            if not timeout.pending:
                timeout.start()
            return timeout
        timeout = cls(timeout, exception, ref=ref, _one_shot=_one_shot)
        timeout.start()
        return timeout

    @staticmethod
    def _start_new_or_dummy(timeout, exception=None, ref=True):
        if timeout is None:
            return _NO_TIMER
        return Timeout.start_new(timeout, exception, ref, _one_shot=True)

    @property
    def pending(self):
        return self.timer.pending or self.timer.active

    def cancel(self):
        """Disarm (it may be started again, unless it was a one-shot)."""
        self.timer.stop()
        if self._one_shot:
            self.close()

    def close(self):
        """Disarm and release the timer for good."""
        self.timer.close()
        self.timer = _NO_TIMER

    def __repr__(self):
        pending = " pending" if self.pending else ""
        exception = "" if self.exception is None else " exception=%r" % (self.exception,)
        return "<%s at %s seconds=%s%s%s>" % (type(self).__name__, hex(id(self)), self.seconds,
                                              exception, pending)

    def __str__(self):
        if self.seconds is None:
            return ""
        suffix = "" if self.seconds == 1 else "s"
        if self.exception is None:
            return "%s second%s" % (self.seconds, suffix)
        if self.exception is False:
            return "%s second%s (silent)" % (self.seconds, suffix)
        return "%s second%s: %s" % (self.seconds, suffix, self.exception)

    def __enter__(self):
        if not self.pending:
            self.start()
        return self

    def __exit__(self, typ, value, tb):
        self.cancel()
        if value is self and self.exception is False:
            return True
        return None


def with_timeout(seconds, function, *args, **kwds):
    """``function(*args, **kwds)`` under a Timeout; with ``timeout_value=`` given, that
    value is returned on expiry instead of raising."""
    timeout_value = kwds.pop("timeout_value", _NONE)
    timeout = Timeout.start_new(seconds, _one_shot=True)
    try:
        try:
            return function(*args, **kwds)
        except Timeout as ex:
            if ex is timeout and timeout_value is not _NONE:
                return timeout_value
            raise
    finally:
        timeout.cancel()
