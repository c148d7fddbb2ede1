"""stolon.gunicorn: gunicorn worker classes running on stolon.

``gunicorn -k stolon.gunicorn.Worker app:app`` serves the application from one
process per worker, a greenlet per connection: gunicorn's own HTTP parser reads the
requests (the counterpart of gunicorn's ``gevent`` worker).
``-k stolon.gunicorn.PyWSGIWorker`` serves through ``stolon.pywsgi`` instead (the
counterpart of ``gevent_pywsgi``).

In the forked worker the standard library is patched (``stolon.monkey.patch_all()``),
the arbiter's listening sockets become cooperative sockets and the hub is
re-initialised; each listener then gets a StreamServer whose Pool holds
``worker_connections`` connections.  A heartbeat greenlet tells the arbiter the worker
is alive, so a worker whose requests are all waiting is never taken for a hung one.

Stopping: SIGTERM (which the arbiter sends on its own SIGTERM and to the old workers
on SIGHUP) and ``max_requests`` stop gracefully: the listeners close, connections
waiting idle for their next keep-alive request are closed, and running requests get up
to ``graceful_timeout`` seconds before they are killed.  SIGQUIT and SIGINT exit at
once, after gunicorn's ``worker_int`` hook.
"""
import os
import signal
import sys
import time
from datetime import datetime
from functools import partial
from importlib import import_module
from socket import SOCK_STREAM

import gunicorn
from gunicorn.http.wsgi import base_environ
from gunicorn.sock import ssl_context
from gunicorn.workers.base_async import AsyncWorker

import stolon
from stolon._core import GreenletExit, getcurrent
from stolon.event import Event
from stolon.hub import get_hub, reinit, sleep
from stolon.pool import Pool
from stolon.server import StreamServer
from stolon.socket import socket as _CooperativeSocket
from stolon.timeout import Timeout

__all__ = ["Worker", "PyWSGIWorker"]

#: ``SERVER_SOFTWARE`` of the pywsgi-based worker.
VERSION = "stolon/%s gunicorn/%s" % (stolon.__version__, gunicorn.__version__)

# Longest pause between two heartbeats; shorter when the arbiter's timeout is short.
_HEARTBEAT_INTERVAL = 1.0
# Seconds the handlers still running after graceful_timeout get to die once killed.
_KILL_TIMEOUT = 1


class _KeepAliveWait:
    """The context in which a connection waits for its next request: at most
    ``seconds`` (then the ``with`` block ends silently and the connection closes).
    While it waits it is listed in ``waiting`` (greenlet -> Timeout), unless that is
    None, so that a stopping worker can end the wait at once."""

    __slots__ = ("_timeout", "_waiting", "_greenlet")

    def __init__(self, seconds, waiting):
        self._timeout = Timeout(seconds, False)
        self._waiting = waiting
        self._greenlet = None

    def __enter__(self):
        self._timeout.start()
        if self._waiting is not None:
            self._greenlet = greenlet = getcurrent()
            self._waiting[greenlet] = self._timeout
        return self

    def __exit__(self, typ, value, tb):
        if self._waiting is not None:
            self._waiting.pop(self._greenlet, None)
        timeout = self._timeout
        try:
            return timeout.__exit__(typ, value, tb)
        finally:
            timeout.close()


class Worker(AsyncWorker):
    """gunicorn worker serving with StreamServer and gunicorn's HTTP parser.

    ``server_class`` and ``wsgi_handler`` (both None here) name a pywsgi-style server
    and handler to use instead of the parser, as PyWSGIWorker does.
    """

    server_class = None
    wsgi_handler = None

    # set by run(): the Event that wakes the main greenlet when ``alive`` turns false
    _stopping = None
    _loop = None

    @property
    def alive(self):
        """False once the worker should stop.  Whatever clears it (a signal handler,
        ``max_requests``, the reloader) also wakes the main greenlet, through the loop:
        signal handlers run between two bytecodes of any greenlet."""
        return self._alive

    @alive.setter
    def alive(self, value):
        self._alive = value
        if not value and self._stopping is not None:
            self._loop.run_callback(self._stopping.set)

    def patch(self):
        """Patch the standard library and make the arbiter's listeners cooperative."""
        try:
            monkey = import_module("stolon.monkey")
        except ModuleNotFoundError as ex:
            if ex.name != "stolon.monkey":
                raise
            self.log.error("stolon.monkey is not available: the standard library is not "
                           "patched, and blocking calls in the application block the "
                           "whole worker")
        else:
            monkey.patch_all()
        # the fd moves to the cooperative socket; gunicorn's wrapper keeps none
        self.sockets = [_CooperativeSocket(listener.FAMILY, SOCK_STREAM, fileno=listener.sock.detach())
                        for listener in self.sockets]

    def init_process(self):
        self.patch()
        # the arbiter may have used a hub before forking this process
        reinit()
        super().init_process()

    def notify(self):
        """Heartbeat to the arbiter; exit if the arbiter is gone (the worker now has
        another parent)."""
        super().notify()
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            sys.exit(0)

    def timeout_ctx(self):
        # a stopping worker may end the wait of a connection it has answered (its
        # client knows an idle keep-alive connection can close), not that of a new
        # one, whose first request may be on its way
        answered = getcurrent() in self._answered
        return _KeepAliveWait(self.cfg.keepalive, self._waiting if answered else None)

    def run(self):
        self._loop = get_hub().loop
        self._waiting = {}
        self._answered = set()
        self._stopping = Event()
        servers = [self._make_server(listener) for listener in self.sockets]
        heartbeat = stolon.spawn(self._heartbeat)
        try:
            for server in servers:
                server.start()
            if self.alive:
                self._stopping.wait()
            self._stop(servers)
        finally:
            heartbeat.kill(block=False)
            # The process exits next.  The arbiter repeats its SIGTERM until it is gone,
            # and one landing once the interpreter has put the default handlers back
            # would end it by the signal, which the arbiter logs as an error.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def _make_server(self, listener):
        ssl_args = {"ssl_context": ssl_context(self.cfg)} if self.cfg.is_ssl else {}
        pool = Pool(self.worker_connections)
        if self.server_class is not None:
            environ = base_environ(self.cfg)
            environ.update({"wsgi.multithread": True, "SERVER_SOFTWARE": VERSION})
            return self.server_class(listener, application=self.wsgi, spawn=pool, log=self.log,
                                     handler_class=self.wsgi_handler, environ=environ, **ssl_args)
        server = StreamServer(listener, handle=partial(self.handle, listener), spawn=pool, **ssl_args)
        if self.cfg.workers > 1:
            # take one connection per wake-up: the other workers get their share
            server.max_accept = 1
        return server

    def _heartbeat(self):
        interval = min(self.timeout, _HEARTBEAT_INTERVAL) if self.timeout else _HEARTBEAT_INTERVAL
        while True:
            self.notify()
            sleep(interval)

    def _stop(self, servers):
        """Stop accepting, end idle keep-alive waits, and give the running requests
        ``graceful_timeout`` seconds; kill those still running then."""
        for server in servers:
            server.close()
        for greenlet, timeout in list(self._waiting.items()):
            self._loop.run_callback(self._end_wait, greenlet, timeout)
        deadline = time.monotonic() + self.cfg.graceful_timeout
        for server in servers:
            if not server.pool.join(timeout=max(deadline - time.monotonic(), 0.0)):
                break
        else:
            return
        self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
        for server in servers:
            server.pool.kill(block=True, timeout=_KILL_TIMEOUT)

    def _end_wait(self, greenlet, timeout):
        # still waiting for the request: end the wait as its keep-alive timeout would
        if self._waiting.get(greenlet) is timeout:
            greenlet.throw(timeout)

    def handle(self, listener, client, addr):
        # accepted sockets take socket.getdefaulttimeout(); the parser wants blocking
        client.setblocking(1)
        try:
            super().handle(listener, client, addr)
        finally:
            self._answered.discard(getcurrent())

    def handle_request(self, listener_name, req, sock, addr):
        try:
            handled = super().handle_request(listener_name, req, sock, addr)
            self._answered.add(getcurrent())
            return handled
        except (GreenletExit, SystemExit):
            # killed after graceful_timeout, or the application called sys.exit(): close
            # this connection without an error page.  A SystemExit left to the hub would
            # end the whole worker, every other connection with it (gunicorn's gevent
            # worker swallows it too).
            raise StopIteration() from None

    def handle_quit(self, sig, frame):
        # gunicorn's handler sleeps and exits: not inside whatever greenlet the signal
        # interrupted
        stolon.spawn(super().handle_quit, sig, frame)

    def handle_usr1(self, sig, frame):
        # reopening the log files takes their locks: not inside the interrupted greenlet
        stolon.spawn(super().handle_usr1, sig, frame)


class PyWSGIWorker(Worker):
    """gunicorn worker serving through ``stolon.pywsgi``'s WSGIServer and WSGIHandler,
    with gunicorn's access log."""

    def init_process(self):
        if self.server_class is None or self.wsgi_handler is None:
            server_class, handler_class = _pywsgi_classes()
            if self.server_class is None:
                self.server_class = server_class
            if self.wsgi_handler is None:
                self.wsgi_handler = handler_class
        super().init_process()


class _Response:
    """What gunicorn's access log reads of a response."""

    __slots__ = ("status", "headers", "sent")

    def __init__(self, status, headers, sent):
        self.status = status
        self.headers = headers
        self.sent = sent


_PYWSGI_CLASSES = []


def _pywsgi_classes():
    """``(PyWSGIServer, PyWSGIHandler)``, made on first use: stolon.pywsgi is only
    needed by PyWSGIWorker."""
    if not _PYWSGI_CLASSES:
        try:
            from stolon import pywsgi
        except ImportError as ex:
            raise RuntimeError("stolon.gunicorn.PyWSGIWorker needs stolon.pywsgi") from ex

        class PyWSGIHandler(pywsgi.WSGIHandler):
            """WSGIHandler logging to gunicorn's access log, with gunicorn's extra
            environ keys (``gunicorn.sock``, ``RAW_URI``)."""

            def log_request(self):
                elapsed = (datetime.fromtimestamp(self.time_finish)
                           - datetime.fromtimestamp(self.time_start))
                status = self.status
                if isinstance(status, bytes):
                    status = status.decode("latin-1")
                response = _Response(status, getattr(self, "response_headers", {}),
                                     self.response_length)
                headers = self.headers.items() if hasattr(self, "headers") else []
                self.server.log.access(response, headers, self.environ, elapsed)

            def get_environ(self):
                environ = super().get_environ()
                environ["gunicorn.sock"] = self.socket
                environ["RAW_URI"] = self.path
                return environ

        class PyWSGIServer(pywsgi.WSGIServer):
            """The WSGIServer of PyWSGIWorker."""

        _PYWSGI_CLASSES[:] = [PyWSGIServer, PyWSGIHandler]
    return tuple(_PYWSGI_CLASSES)

