"""stolon.threadpool: a pool of native worker threads (gevent.threadpool's API).

``ThreadPool(maxsize)`` runs blocking functions in real OS threads so that the greenlets
of the owning hub keep running.  ``spawn(func, *args, **kwargs)`` queues a task and
returns an ``AsyncResult``; the worker that runs it signals the hub's loop through an
``async_`` watcher (the only thread-safe way into a loop), and the hub side then stores
the value or the exception (with its traceback) in the result, waking the greenlets
that wait on it.  Threads are started on demand, up to ``maxsize``; ``size`` can be set
to grow or shrink the pool, ``kill()`` stops every thread.

The threads come from the ``_thread`` functions bound when this module is imported, so
monkey-patching ``threading`` later does not turn workers into greenlets.  A worker has
no hub: a task that uses a cooperative function (``stolon.sleep``) creates a hub of its
own in that thread, which is destroyed when the worker exits.

Each hub has a lazily created pool for blocking helpers such as the DNS resolver:
``Hub.threadpool`` (of ``stolon.config.threadpool``'s class, with ``hub.threadpool_size``
threads at most, idle ones exiting after ``config.threadpool_idle_task_timeout`` seconds).
"""
import concurrent.futures
import os
import sys
import threading
from _queue import Empty as _QueueEmpty
from _queue import SimpleQueue as _NativeQueue
from _thread import allocate_lock as _allocate_native_lock
from _thread import get_ident as _get_thread_ident
from _thread import start_new_thread as _start_new_thread
from concurrent.futures import _base as _futures_base

from stolon._core import _get_hub, getcurrent
from stolon._greenlet import Greenlet
from stolon.event import AsyncResult
from stolon.exceptions import InvalidThreadUseError
from stolon.hub import get_hub, sleep
from stolon.lock import Semaphore
from stolon.pool import GroupMappingMixin
from stolon.timeout import Timeout

__all__ = ["ThreadPool", "ThreadResult", "ThreadPoolExecutor"]

# the shortest and longest pause while waiting for workers to take or finish tasks
_MIN_POLL_DELAY = 0.0005
_MAX_POLL_DELAY = 0.05


def _poll_until(done):
    """Sleep cooperatively, each pause twice the last, until ``done()`` is true (the
    worker threads send no word when they take or finish a task)."""
    delay = _MIN_POLL_DELAY
    while not done():
        sleep(delay)
        delay = min(delay * 2, _MAX_POLL_DELAY)


def _format_hub(hub):
    if hub is None:
        return "<missing>"
    return "<%s at 0x%x thread_ident=0x%x>" % (type(hub).__name__, id(hub), hub.thread_ident)


class _TaskQueue:
    """An unbounded queue safe for native threads, counting the tasks put but not yet
    done (``None``, the order for one worker to exit, counts as a task too)."""

    __slots__ = ("_items", "_count_lock", "unfinished_tasks")

    def __init__(self):
        self._items = _NativeQueue()
        self._count_lock = _allocate_native_lock()
        self.unfinished_tasks = 0

    def put(self, item):
        with self._count_lock:
            self.unfinished_tasks += 1
        self._items.put(item)

    def get(self, timeout):
        """The next item; blocks for at most ``timeout`` seconds (None: forever), then
        raises ``_queue.Empty``."""
        return self._items.get(True, timeout)

    def task_done(self):
        with self._count_lock:
            self.unfinished_tasks -= 1


class _Worker:
    """One worker thread of a pool: takes tasks from the pool's queue and runs them
    until it gets ``None``, or has been idle for the pool's ``idle_task_timeout``."""

    __slots__ = ("_pool", "_hub", "_task_queue", "_idle_timeout", "_thread_ident", "__weakref__")

    def __init__(self, pool):
        # runs in the pool's thread; the pool registers us before the thread starts so
        # that its size counts us at once
        self._pool = pool
        self._hub = pool.hub
        self._task_queue = pool.task_queue
        timeout = pool._idle_task_timeout
        self._idle_timeout = None if timeout is None or timeout < 0 else timeout
        self._thread_ident = 0
        pool._workers.add(self)
        try:
            _start_new_thread(self._run, ())
        except BaseException:
            pool._workers.discard(self)
            raise

    def _run(self):
        self._thread_ident = _get_thread_ident()
        task_queue = self._task_queue
        get = task_queue.get
        task_done = task_queue.task_done
        timeout = self._idle_timeout
        run_task = self._run_task
        exit_requested = False
        task = None
        try:
            while True:
                # waiting for a task is not blocking a hub: tell a monitor watching
                # this thread's hub (one made by an earlier task)
                monitor = getattr(_get_hub(), "periodic_monitoring_thread", None)
                if monitor is not None:
                    monitor.ignore_current_greenlet_blocking()
                try:
                    task = get(timeout)
                except _QueueEmpty:
                    return
                try:
                    if task is None:
                        exit_requested = True
                        return
                    run_task(*task)
                    task = None
                finally:
                    task_done()
        except Exception as ex:
            # the machinery failed (not the task: its errors go to its result)
            print("Failed to run worker thread. Task=%r Exception=%r" % (task, ex), file=sys.stderr)
        finally:
            self._finish(exit_requested)

    def _run_task(self, func, args, kwargs, thread_result, _exc_info=sys.exc_info,
                  _setprofile=sys.setprofile, _settrace=sys.settrace):
        # the hooks threading.setprofile/settrace install apply to the task only:
        # read for every task, since they may change while the worker lives
        profile = getattr(threading, "_profile_hook", None)
        trace = getattr(threading, "_trace_hook", None)
        if profile is not None:
            _setprofile(profile)
        if trace is not None:
            _settrace(trace)
        try:
            thread_result.set(func(*args, **kwargs))
        except BaseException:
            thread_result.handle_error((self, func), _exc_info())
        finally:
            if profile is not None:
                _setprofile(None)
            if trace is not None:
                _settrace(None)

    def _finish(self, exit_requested):
        # a hub a task created in this thread dies with the thread
        own_hub = _get_hub()
        if own_hub is not None:
            own_hub.destroy(True)
        pool = self._pool
        self._pool = self._hub = self._task_queue = None
        if pool is None:
            return
        pool._workers.discard(self)
        if not exit_requested and pool.task_queue.unfinished_tasks:
            # idle expiry raced with a new task: let the pool's thread start another
            # worker (adjusting the pool is only safe there)
            pool.hub.loop.run_callback_threadsafe(pool.adjust)

    def __repr__(self):
        return "<ThreadPoolWorker at 0x%x thread_ident=0x%x threadpool-hub=%s>" % (
            id(self), self._thread_ident, _format_hub(self._hub))


class ThreadPool(GroupMappingMixin):
    """``ThreadPool(maxsize, hub=None, idle_task_timeout=-1)``: at most ``maxsize``
    native threads running tasks for the greenlets of ``hub``'s thread (the current
    thread's hub by default).  Threads start on demand; with ``idle_task_timeout`` >= 0
    a thread that waits that long for a task exits.

    Use it only from the hub's thread.  It offers the ``apply``/``map``/``imap`` family
    of ``stolon.pool.Pool`` (``apply_async`` always returns a greenlet).  ``len()`` is
    the number of unfinished tasks (so the pool is true only while it has some).
    ``spawn`` blocks once ``maxsize + 1`` tasks are outstanding."""

    __slots__ = ("hub", "_maxsize", "manager", "pid", "fork_watcher", "_available", "_workers",
                 "task_queue", "_idle_task_timeout")

    def __init__(self, maxsize, hub=None, idle_task_timeout=-1):
        if hub is None:
            hub = get_hub()
        self.hub = hub
        self._idle_task_timeout = idle_task_timeout
        self.fork_watcher = hub.loop.fork(ref=False)
        self._reset(maxsize)

    def _reset(self, maxsize):
        self.pid = os.getpid()
        self.manager = None
        self.task_queue = _TaskQueue()
        self._workers = set()
        self._maxsize = 0
        # one unit more than maxsize: a task may wait in the queue while every thread
        # is busy, so that a thread finishing one finds the next at once
        self._available = Semaphore(1, self.hub)
        self._set_maxsize(maxsize)

    # -- size --------------------------------------------------------------------------

    def _get_maxsize(self):
        return self._maxsize

    def _set_maxsize(self, maxsize):
        if not isinstance(maxsize, int):
            raise TypeError("maxsize must be integer: %r" % (maxsize,))
        if maxsize < 0:
            raise ValueError("maxsize must not be negative: %r" % (maxsize,))
        available = self._available
        available.counter += maxsize - self._maxsize
        self._maxsize = maxsize
        self.adjust()
        # spawns blocked on a smaller pool may proceed now
        available._check_and_notify()

    maxsize = property(_get_maxsize, _set_maxsize, doc="""The largest number of threads;
        also (roughly) how many tasks may be outstanding before ``spawn`` blocks.""")

    def _get_size(self):
        return len(self._workers)

    def _set_size(self, size):
        if size < 0:
            raise ValueError("Size of the pool cannot be negative: %r" % (size,))
        if size > self._maxsize:
            raise ValueError("Size of the pool cannot be bigger than maxsize: %r > %r"
                             % (size, self._maxsize))
        if self.manager:
            self.manager.kill()
        workers = self._workers
        while len(workers) < size:
            _Worker(self)

        def surplus_gone():
            # one None per surplus thread, counting those already queued
            while len(workers) - size > self.task_queue.unfinished_tasks:
                self.task_queue.put(None)
            # the hub cannot wait: there the threads exit on their own
            return len(workers) <= size or getcurrent() is self.hub
        _poll_until(surplus_gone)
        self._watch_fork()

    size = property(_get_size, _set_size, doc="""The number of running worker threads.
        Setting it starts or stops threads (between 0 and ``maxsize``); shrinking waits
        until the surplus threads have finished their tasks and exited.""")

    def free_count(self):
        """How many more tasks could run at once without waiting for a thread (a
        stolon extension, as ``Pool.free_count``)."""
        return max(0, self._maxsize - len(self))

    def __len__(self):
        return self.task_queue.unfinished_tasks

    def __repr__(self):
        return "<%s at 0x%x tasks=%s size=%s maxsize=%s hub=%s>" % (
            type(self).__name__, id(self), len(self), self.size, self.maxsize,
            _format_hub(self.hub))

    # -- threads -----------------------------------------------------------------------

    def _watch_fork(self):
        # only a pool with threads has anything to rebuild in a forked child
        if self._workers:
            self.fork_watcher.start(self._on_fork)
        else:
            self.fork_watcher.stop()

    def _adjust_step(self):
        workers = self._workers
        task_queue = self.task_queue
        while len(workers) < self._maxsize and task_queue.unfinished_tasks > len(workers):
            _Worker(self)
        while len(workers) - self._maxsize > task_queue.unfinished_tasks:
            task_queue.put(None)
        self._watch_fork()

    def _adjust_wait(self):
        def adjusted():
            self._adjust_step()
            return len(self._workers) <= self._maxsize
        _poll_until(adjusted)

    def adjust(self):
        """Start threads for waiting tasks (up to ``maxsize``) and ask surplus threads
        to exit (a greenlet keeps asking until they have)."""
        self._adjust_step()
        if not self.manager and len(self._workers) > self._maxsize:
            self.manager = Greenlet.spawn(self._adjust_wait)

    def _on_fork(self):
        if os.getpid() == self.pid:
            return
        # only the forking thread survives: forget the workers and their queue
        for worker in list(self._workers):
            worker._pool = None
        self._reset(self._maxsize)

    def join(self):
        """Wait (cooperatively) until every queued task has been run."""
        _poll_until(lambda: self.task_queue.unfinished_tasks <= 0)

    def kill(self):
        """Stop every thread (each finishes the tasks queued before this call first)."""
        self.size = 0
        self.fork_watcher.close()

    # -- tasks -------------------------------------------------------------------------

    def spawn(self, func, *args, **kwargs):
        """Queue ``func(*args, **kwargs)`` for a worker thread and return an
        ``AsyncResult`` for its outcome.  Blocks while the pool is saturated.  Only from
        the thread of the pool's hub (else ``InvalidThreadUseError``)."""
        if self.hub is not get_hub():
            raise InvalidThreadUseError
        while True:
            available = self._available
            available.acquire()
            if available is self._available:
                break   # else a fork reset the pool while we waited
        result = AsyncResult()
        thread_result = None
        try:
            thread_result = ThreadResult(result, self.hub, available.release)
            self.task_queue.put((func, args, kwargs, thread_result))
            self.adjust()
        except BaseException:
            if thread_result is not None:
                thread_result.destroy_in_main_thread()
            available.release()
            raise
        return result

    # hooks of GroupMappingMixin

    def _apply_immediately(self):
        # a task calling apply() on its own pool runs the function in its thread:
        # waiting there for the pool's hub would never end
        return get_hub() is not self.hub

    def _apply_async_cb_spawn(self, callback, result):
        callback(result)

    def _apply_async_use_greenlet(self):
        return True


class _Inert:
    """Stands for a ThreadResult's watcher, receiver and release once they are spent."""

    __slots__ = ()

    def send(self):
        pass

    stop = close = send

    def __call__(self, _result):
        pass

    def __bool__(self):
        return False


_INERT = _Inert()


class ThreadResult:
    """``ThreadResult(receiver, hub, call_when_ready)``: carries one task's outcome from
    a worker thread to the hub's thread.  The worker calls ``set(value)`` or
    ``handle_error(context, exc_info)``, which only send the async watcher; in the hub,
    ``call_when_ready()`` runs, an error is reported to ``hub.handle_error`` and then
    ``receiver(self)`` takes the outcome (the link protocol: ``successful()``,
    ``value``, ``exception``, ``exc_info``).  Create and destroy it in the hub's
    thread."""

    __slots__ = ("exc_info", "async_watcher", "_call_when_ready", "value", "context", "hub",
                 "receiver")

    def __init__(self, receiver, hub, call_when_ready):
        self.receiver = receiver
        self.hub = hub
        self.context = None
        self.value = None
        self.exc_info = ()
        self._call_when_ready = call_when_ready
        self.async_watcher = hub.loop.async_()
        self.async_watcher.start(self._on_async)

    @property
    def exception(self):
        return self.exc_info[1] if self.exc_info else None

    def successful(self):
        return self.exception is None

    def _on_async(self):
        # in the hub's thread
        watcher = self.async_watcher
        self.async_watcher = _INERT
        watcher.stop()
        watcher.close()
        try:
            self._call_when_ready()
            if self.exc_info:
                self.hub.handle_error(self.context, *self.exc_info)
            self.context = None
            self.hub = None
            self._call_when_ready = _INERT
            self.receiver(self)
        finally:
            self.receiver = _INERT
            self.value = None
            if self.exc_info:
                # the receiver keeps the traceback; we need not
                self.exc_info = (self.exc_info[0], self.exc_info[1], None)

    def destroy_in_main_thread(self):
        """Drop the watcher and references without delivering (hub's thread only)."""
        self.async_watcher.stop()
        self.async_watcher.close()
        self.async_watcher = _INERT
        self.context = None
        self.hub = None
        self._call_when_ready = _INERT
        self.receiver = _INERT

    def set(self, value):
        """From the worker: the task returned ``value``."""
        self.value = value
        self.async_watcher.send()

    def handle_error(self, context, exc_info):
        """From the worker: the task raised ``exc_info``."""
        self.context = context
        self.exc_info = exc_info
        self.async_watcher.send()


# -- concurrent.futures ------------------------------------------------------------------

def _allocate_lock_is_patched():
    # a monkey-patched threading allocates cooperative locks; only then can a
    # threading.Condition wait while the hub keeps delivering results
    return threading._allocate_lock is not _allocate_native_lock


class _DoneCallback:
    """A link that calls ``fn(future)``, printing what it raises."""

    __slots__ = ("future", "fn")

    def __init__(self, future, fn):
        self.future = future
        self.fn = fn

    def __call__(self, _result):
        future = self.future
        try:
            self.fn(future)
        except Exception:
            future.asyncresult.hub.print_exception((self.fn, future), *sys.exc_info())


class _FutureProxy:
    """A ``concurrent.futures.Future`` look-alike over the ``AsyncResult`` of a pool
    task: ``result()`` and ``exception()`` wait cooperatively (other greenlets keep
    running), and ``stolon.wait`` accepts it.  Other attributes come from the result."""

    def __init__(self, asyncresult):
        self.asyncresult = asyncresult

    # what concurrent.futures.wait/as_completed read; usable only with a patched
    # threading (see _allocate_lock_is_patched)

    @property
    def _condition(self):
        condition = self.__dict__.get("_condition")
        if condition is None:
            if not (self.done() or _allocate_lock_is_patched()):
                raise AttributeError("_condition")
            condition = self.__dict__["_condition"] = threading.Condition()
        return condition

    @property
    def _waiters(self):
        waiters = self.__dict__.get("_waiters")
        if waiters is None:
            waiters = self.__dict__["_waiters"] = []
            self.asyncresult.rawlink(self._notify_waiters)
        return waiters

    def _notify_waiters(self, _result):
        for waiter in self.__dict__["_waiters"]:
            if self.successful():
                waiter.add_result(self)
            else:
                waiter.add_exception(self)

    @property
    def _state(self):
        return _futures_base.FINISHED if self.done() else _futures_base.RUNNING

    def set_running_or_notify_cancel(self):
        """Tasks never wait in a cancellable state: nothing to do."""

    def running(self):
        return not self.done()

    def result(self, timeout=None):
        try:
            return self.asyncresult.result(timeout=timeout)
        except Timeout:
            raise concurrent.futures.TimeoutError() from None

    def exception(self, timeout=None):
        # stolon returns the exception as concurrent.futures does (gevent's proxy
        # raises it)
        if not self.asyncresult.ready():
            self.asyncresult.wait(timeout)
            if not self.asyncresult.ready():
                raise concurrent.futures.TimeoutError()
        return self.asyncresult.exception

    def add_done_callback(self, fn):
        """Call ``fn(future)`` when done (now if it is); its exceptions are printed."""
        if self.done():
            fn(self)
        else:
            self.asyncresult.rawlink(_DoneCallback(self, fn))

    def rawlink(self, fn):
        self.asyncresult.rawlink(lambda _result: fn(self))

    def __str__(self):
        return str(self.asyncresult)

    def __getattr__(self, name):
        return getattr(self.asyncresult, name)


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """``concurrent.futures.ThreadPoolExecutor`` backed by a ``ThreadPool`` of the
    current hub: native threads even under monkey-patching, and futures whose
    ``result()`` lets other greenlets run while it waits.  ``max_workers`` is the
    pool's ``maxsize``; the other arguments are accepted and ignored.

    ``concurrent.futures.wait``/``as_completed`` need a monkey-patched ``threading``
    (or only finished futures); waiting on the futures themselves always works."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._threadpool = ThreadPool(self._max_workers)

    def submit(self, fn, *args, **kwargs):
        with self._shutdown_lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        # spawn may wait for a free thread: not while holding a native lock, which
        # another greenlet of this thread could then block on forever
        return _FutureProxy(self._threadpool.spawn(fn, *args, **kwargs))

    def shutdown(self, wait=True, **kwargs):
        """Refuse new tasks and stop the threads once they have run the queued tasks."""
        super().shutdown(wait, **kwargs)
        pool = self._threadpool
        if pool is not None:
            self._threadpool = None
            pool.kill()

    kill = shutdown
