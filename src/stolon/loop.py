"""stolon.loop: the event loop and its watchers, with gevent's loop API.

``loop(flags=None, default=None)`` wraps one C loop (``csrc/loop``, libev's model);
``flags`` names the backend (``'epoll'``, ``'poll'``, ``'kqueue'``) or ``None`` for the
best one.  Watchers come from its factory methods (``io``, ``timer``, ``signal``,
``child``, ``idle``, ``prepare``, ``check``, ``fork``, ``async_``) and call
``callback(*args)``.  Exceptions from callbacks go to ``loop.handle_error(context,
type, value, tb)`` (which prints them, or passes them to ``loop.error_handler``);
``KeyboardInterrupt`` and ``SystemExit`` stop the loop and are raised by ``run()``.
As in gevent, ``start(callback, EVENTS, *args)`` passes the events (``READ``, ``WRITE``,
...) in the place of ``EVENTS``.

The default loop: ``loop(default=True)`` returns the process's default loop if one
exists (from any thread, as gevent's libev loop shares ``ev_default_loop``);
``default=None`` makes the default loop only in the main thread and only if there is
none yet.

Lifetime: a started watcher is owned by its loop until it stops, so one the program
no longer references keeps running (as in gevent) until ``stop()``, ``close()`` or
``loop.destroy()``.  After ``destroy()`` every watcher of the loop is inert and
``start()`` raises ``ValueError('operation on destroyed loop')``.

Threads: a loop belongs to one thread.  While it blocks in the kernel it has released
the GIL; other threads may then only call ``async_.send()`` and
``run_callback_threadsafe()`` (anything else raises ``RuntimeError``).
"""
from stolon import _core

loop = _core.loop
watcher = _core.watcher
io = _core.io
timer = _core.timer
signal = _core.signal
child = _core.child
idle = _core.idle
prepare = _core.prepare
check = _core.check
fork = _core.fork
async_ = _core.async_
callback = _core.callback

READ = _core.READ
WRITE = _core.WRITE
ERROR = _core.ERROR      # in revents: the fd was bad (closed under the watcher)
MINPRI = _core.MINPRI
MAXPRI = _core.MAXPRI
EVBREAK_CANCEL = _core.EVBREAK_CANCEL
EVBREAK_ONE = _core.EVBREAK_ONE
EVBREAK_ALL = _core.EVBREAK_ALL
#: ``w.start(cb, EVENTS, *args)`` calls ``cb(revents, *args)`` (gevent's ``GEVENT_CORE_EVENTS``).
EVENTS = GEVENT_CORE_EVENTS = _core.EVENTS


def supported_backends():
    """The backend names this build supports, best first."""
    names = []
    for name in ("epoll", "kqueue", "poll"):
        try:
            loop(name).destroy()
        except ValueError:
            continue
        names.append(name)
    return names


__all__ = ["loop", "watcher", "io", "timer", "signal", "child", "idle", "prepare", "check",
           "fork", "async_", "callback", "READ", "WRITE", "ERROR", "MINPRI", "MAXPRI", "EVBREAK_CANCEL",
           "EVBREAK_ONE", "EVBREAK_ALL", "EVENTS", "GEVENT_CORE_EVENTS", "supported_backends"]
