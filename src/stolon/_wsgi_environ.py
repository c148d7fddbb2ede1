"""The environ dict classes and log adapters of stolon.pywsgi.

``Environ`` is a dict that stays one when copied or pickled; ``SecureEnviron`` hides
its values when printed (so an error report does not leak cookies or passwords);
``WSGISecureEnviron`` shows the client's address and the Host.  ``LoggingLogAdapter``
lets a ``logging.Logger`` be the server's ``log`` or ``error_log``.
"""

import sys

__all__ = ["Environ", "SecureEnviron", "WSGISecureEnviron", "LoggingLogAdapter"]


class Environ(dict):
    """A dict for WSGI environments: ``copy()`` keeps the class, pickling gives a
    plain dict (provisional API)."""

    __slots__ = ()

    def copy(self):
        return self.__class__(self)

    def iteritems(self):
        """The items (Python 2's name, kept for code written against it)."""
        return self.items()

    def __reduce_ex__(self, proto):
        return (dict, (), None, None, iter(self.items()))


class SecureEnviron(Environ):
    """An environment whose repr masks its values (provisional API).

    ``secure_repr`` (default ``default_secure_repr``, True): mask at all.
    ``whitelist_keys`` (default ``default_whitelist_keys``): keys shown in clear; when
    empty, the repr shows only the number of keys.  ``print_masked_keys`` (default
    ``default_print_masked_keys``): list the other keys with ``'<MASKED>'`` values, or
    only count them.  Each can be set per instance or, with the ``default_`` prefix,
    per class.
    """

    default_secure_repr = True
    default_whitelist_keys = ()
    default_print_masked_keys = True

    # per-instance overrides; an unset one falls back to the class's default_ value
    __slots__ = ("secure_repr", "whitelist_keys", "print_masked_keys")

    def __getattr__(self, name):
        if name in SecureEnviron.__slots__:
            return getattr(type(self), "default_" + name)
        raise AttributeError(name)

    def __repr__(self):
        if not self.secure_repr:
            return Environ.__repr__(self)
        whitelist = self.whitelist_keys
        if not whitelist:
            return "<pywsgi.SecureEnviron dict (keys: %d) at %s>" % (len(self), id(self))
        print_masked = self.print_masked_keys
        shown = {key: (value if key in whitelist else "<MASKED>")
                 for key, value in self.items()
                 if print_masked or key in whitelist}
        text = repr(shown)
        if len(shown) != len(self):
            text = text[:-1] + ", (hidden keys: %d)}" % (len(self) - len(shown))
        return text

    __str__ = __repr__


class WSGISecureEnviron(SecureEnviron):
    """A SecureEnviron that shows ``REMOTE_ADDR``, ``REMOTE_PORT`` and ``HTTP_HOST``
    and only counts the other keys."""

    default_whitelist_keys = ("REMOTE_ADDR", "REMOTE_PORT", "HTTP_HOST")
    default_print_masked_keys = False


class _NoopLog:
    # The log used for ``log=None``: a file-like object that writes nothing (enough
    # of one for wsgiref.validate's checks on wsgi.errors).

    def write(self, *args, **kwargs):
        pass

    def flush(self):
        pass

    def writelines(self, *args, **kwargs):
        pass


class LoggingLogAdapter:
    """A file-like front for a ``logging.Logger``: ``write(msg)`` logs ``msg`` (one
    trailing newline removed) at ``level`` (default INFO).  Other attributes are the
    logger's, read and written through.

    Logging handlers may block (their sockets and locks are not cooperative unless
    the process is monkey-patched early), and may be called in the hub.
    """

    __slots__ = ("_logger", "_level")

    def __init__(self, logger, level=20):
        """Write to ``logger`` at ``level`` (20 is logging.INFO)."""
        self._logger = logger
        self._level = level

    def write(self, msg):
        """Log ``msg`` without its trailing newline."""
        if msg and msg.endswith("\n"):
            msg = msg[:-1]
        self._logger.log(self._level, msg)

    def flush(self):
        """Nothing to flush: the logger's handlers do their own."""

    def writelines(self, lines):
        """``write`` each line."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._logger, name)

    def __setattr__(self, name, value):
        if name in LoggingLogAdapter.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self._logger, name, value)

    def __delattr__(self, name):
        delattr(self._logger, name)


def _make_log(log, level):
    # The server's ``log``/``error_log`` from the constructor's argument.
    if log == "default":
        # read now: sys.stderr may have been replaced since import
        return sys.stderr
    if log is None:
        return _NoopLog()
    if not hasattr(log, "write") and hasattr(log, "log"):
        return LoggingLogAdapter(log, level)
    return log
