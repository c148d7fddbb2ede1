"""stolon._abstract_linkable: the one FIFO wait queue under events and semaphores.

An object that can be waited on keeps a list of *links*: callables that get the object
as their only argument once it is ready.  A greenlet waits by linking itself (a link
that is a greenlet means "switch into it with the object") and switching to the hub;
it resumes when the link is run.  Links are
removed before they are called, and all of them are called in the order they were
added, from one hub callback (``loop.run_callback``), never from ``set()`` or
``release()`` themselves.  That callback is *the notifier*; at most one is pending per
object.

Fairness: a greenlet that calls ``wait()`` while a notification is under way and finds
the object already ready does not jump the queue.  It parks in ``_arrived`` and is
woken after everybody who blocked first (gevent's issue 1520 behaviour).

Objects that notify everyone (``_notify_all``: Event, AsyncResult) call every link that
was present when the notifier started; semaphores call links only while ``ready()``
stays true, so each wake-up hands over a unit that is really there.

Threads.  An object belongs to the hub of the first thread that waits on it (``hub``).
Waiting from another thread raises ``InvalidThreadUseError`` (Semaphore catches it and
takes its cross-thread paths).  Making it ready from another thread is allowed: the
notification is sent to the owning hub with ``loop.run_callback_threadsafe``, so the
waiting greenlets are always switched to from their own thread.  In pure Python a
sequence of steps here is not atomic against other threads; Semaphore therefore holds
a per-object lock (``_lock``) around its operations and drops it around every switch.
"""
import sys
from _thread import get_ident
from collections import deque

from stolon._core import error as _GreenletError
from stolon._core import getcurrent, greenlet, schedule_notify
from stolon.exceptions import InvalidSwitchError, InvalidThreadUseError
from stolon.hub import Hub, _get_hub, _live_hubs, get_hub
from stolon.timeout import Timeout

__all__ = ["AbstractLinkable"]


class _ForeignNotifier:
    """Stands for the notifier while a notification requested from another thread is
    on its way to the owning hub: it keeps a second request from being sent, and a
    stale one (cancelled, or superseded) from running."""

    __slots__ = ("pending",)

    def __init__(self):
        self.pending = True

    def stop(self):
        self.pending = False


class _InlineNotifier:
    """The notifier while links run directly, with no hub to run them (nothing else can
    be running in this thread then)."""

    __slots__ = ()
    pending = False

    def stop(self):
        pass


_INLINE = _InlineNotifier()


class AbstractLinkable:
    """Base of the objects greenlets wait on (Event, AsyncResult, Semaphore): the link
    list, the notifier, and waiting with an optional timeout.  Subclasses define
    ``ready()`` and ``_wait_return_value(waited, wait_success)``."""

    __slots__ = ("hub", "_links", "_pending", "_notifier", "_notify_all", "_arrived", "_lock",
                 "__weakref__")

    def __init__(self, hub=None):
        # The hub is captured on first wait, not here, so that module-level objects do
        # not create a hub, nor tie themselves to the thread that built them.
        self.hub = hub
        self._links = []
        self._pending = None    # the links of a notification round not yet called
        self._notifier = None
        self._notify_all = True
        self._arrived = None
        self._lock = None

    def linkcount(self):
        """How many links are waiting (for tests and reprs)."""
        pending = self._pending
        return len(self._links) + (len(pending) if pending else 0)

    def ready(self):
        raise NotImplementedError

    def rawlink(self, callback):
        """Call ``callback(self)`` from the hub once this object is ready (once: the
        link is removed before it is called).  It must not block."""
        if not callable(callback):
            raise TypeError("Expected callable: %r" % (callback,))
        self._links.append(callback)
        self._check_and_notify()

    def unlink(self, callback):
        """Remove a link added with ``rawlink`` (no error if it is not there)."""
        # a link of the round being notified comes first in the queue, as it was
        # linked first
        pending = self._pending
        if not (pending and _remove(pending, callback)):
            _remove(self._links, callback)
        notifier = self._notifier
        if notifier is not None and notifier.pending and not self._links and not self._arrived:
            # nobody left to notify: drop the queued notifier (and its reference to us)
            notifier.stop()
            self._notifier = None

    # -- ownership -----------------------------------------------------------------

    def _capture_hub(self, create):
        """The owning hub, taking the current thread's if there is none yet (creating
        it when ``create``).  Raises InvalidThreadUseError if another thread's hub
        owns this object."""
        hub = self.hub
        if hub is not None and hub.dead:
            self.hub = hub = None
        if hub is None:
            hub = get_hub() if create else _get_hub()
            if self.hub is None:
                self.hub = hub
            hub = self.hub
        if hub is not None and hub.thread_ident != get_ident():
            raise InvalidThreadUseError(hub, _get_hub(), getcurrent())
        return hub

    # -- notifying -----------------------------------------------------------------

    def _check_and_notify(self):
        """Queue the notifier if there are links, none is queued, and we are ready."""
        if not self._links or self._notifier is not None or not self.ready():
            return
        hub = self.hub
        if hub is not None and hub is _get_hub():
            # the notifier's common case runs in C (csrc/py/linkable.c)
            self._notifier = schedule_notify(hub.loop, self)
            return
        try:
            hub = self._capture_hub(False)
        except InvalidThreadUseError:
            self._notify_from_other_thread()
            return
        if hub is not None:
            self._notifier = schedule_notify(hub.loop, self)
            return
        self._notifier = _INLINE
        try:
            self._notify_links()
        finally:
            if self._notifier is _INLINE:
                self._notifier = None

    def _notify_from_other_thread(self):
        loop = self.hub.loop
        if loop is None:
            raise InvalidThreadUseError(self.hub, _get_hub(), getcurrent())
        # The callback object run_callback_threadsafe returns may run before this
        # thread gets to store it, so a placeholder stands for it instead.
        notifier = _ForeignNotifier()
        self._notifier = notifier
        try:
            loop.run_callback_threadsafe(self._notify_links_sent, notifier)
        except BaseException:
            if self._notifier is notifier:
                self._notifier = None
            raise

    def _notify_links_sent(self, notifier):
        """The owning hub's side of a notification sent from another thread."""
        if self._notifier is not notifier:
            return
        if notifier.pending:
            notifier.pending = False
            self._notify_links()
        else:
            self._notifier = None

    def _notify_links(self):
        """The notifier: call the links in order, then those that arrived meanwhile."""
        if self._notifier is None:
            self._check_and_notify()
            return
        links = self._links
        try:
            if len(links) == 1 and not self._arrived and self._lock is None:
                # one waiter, the common hand-off: no list walk, no bookkeeping
                link = links.pop()
                unswitched = None
                try:
                    _call_link(link, self)
                except _GreenletError:
                    unswitched = [link]
                except:  # noqa: E722 -- runs in the hub: nothing may escape
                    self._report_link_error(link)
                late = self._serve_late_arrivals()
                if late:
                    unswitched = (unswitched or []) + late
            else:
                unswitched = self._notify_link_list(links)
                arrived = self._arrived
                if arrived:
                    unswitched += self._notify_link_list(arrived)
                    links.extend(arrived)
        finally:
            self._arrived = None
            self._notifier = None
        if links:
            # a link may have made us ready again for links added meanwhile
            self._check_and_notify()
        if unswitched:
            self._handle_unswitched_notifications(unswitched)

    def _serve_late_arrivals(self):
        """After a one-link hand-off: the woken greenlet may have waited again, and
        arrived behind the round under way; it is served in this round, as gevent
        serves late arrivals, and those arriving meanwhile join the next round.
        Returns the links that could not switch, or None."""
        arrived = self._arrived
        if not arrived:
            return None
        unswitched = self._notify_link_list(arrived)
        self._links.extend(arrived)
        return unswitched

    def _link_failed(self, link, exc):
        """The C notifier's hand-off raised ``exc`` from ``link`` (after the same
        bookkeeping as ``_notify_links``)."""
        if isinstance(exc, _GreenletError):
            self._handle_unswitched_notifications([link])
            return
        hub = self.hub if self.hub is not None else _get_hub()
        if hub is None:
            import traceback
            traceback.print_exception(type(exc), exc, exc.__traceback__)
        else:
            hub.handle_error((link, self), type(exc), exc, exc.__traceback__)

    def _notify_link_list(self, links):
        """Call the links that are in ``links`` on entry, in order, removing each
        before it is called (links added meanwhile stay for the next round); a
        callable that appears twice is called once.  Those a semaphore had no unit
        for go back to the front of ``links``.  Returns the links that could not
        switch (other thread)."""
        unswitched = []
        if not links:
            return unswitched
        # This round's links move to a deque, so that taking each is O(1) however
        # many greenlets wait; unlink() looks there too, so a link removed before
        # its turn is not called.
        pending = deque(links)
        del links[:]
        self._pending = pending
        only_while_ready = not self._notify_all
        called = set() if len(pending) > 1 else None
        lock = self._lock
        try:
            while pending:
                if only_while_ready and not self.ready():
                    break
                link = pending.popleft()
                if called is not None:
                    if id(link) in called:
                        continue
                    called.add(id(link))
                state = None if lock is None else lock._release_save()
                try:
                    _call_link(link, self)
                except _GreenletError:
                    unswitched.append(link)
                except:  # noqa: E722 -- runs in the hub: nothing may escape
                    self._report_link_error(link)
                finally:
                    if state is not None:
                        lock._acquire_restore(state)
        finally:
            self._pending = None
            if pending:
                links[:0] = pending
        return unswitched

    def _report_link_error(self, link):
        hub = self.hub if self.hub is not None else _get_hub()
        if hub is None:
            import traceback
            traceback.print_exc()
        else:
            hub.handle_error((link, self), *sys.exc_info())

    def _handle_unswitched_notifications(self, unswitched):
        """Links that raised greenlet.error belong to a greenlet of another thread:
        resend each ``greenlet.switch`` to its own hub; report the rest."""
        for link in unswitched:
            if not self._notify_all and not self.ready():
                self._print_unswitched(link)
                break
            if _is_parked_greenlet(link):
                glet, resend = link, link.switch
            else:
                glet, resend = getattr(link, "__self__", None), link
                if getattr(link, "__name__", None) != "switch":
                    glet = None
            hub = None
            if isinstance(glet, greenlet):
                hub = glet.parent if isinstance(glet.parent, Hub) else _hub_with_parent(glet)
            if hub is not None and hub.loop is not None:
                hub.loop.run_callback_threadsafe(resend, self)
            else:
                self._print_unswitched(link)

    def _print_unswitched(self, link):
        print("stolon: error: Unable to switch to greenlet", link, "from", self,
              "; crossing thread boundaries is not allowed.", file=sys.stderr)

    # -- waiting -------------------------------------------------------------------

    def _quiet_unlink_all(self, link):
        self.unlink(link)
        arrived = self._arrived
        if arrived:
            _remove(arrived, link)

    def _park(self, late):
        """Link the current greenlet and switch to the hub until a link call resumes
        it; ``late``: queue behind a notification already under way."""
        resume = getcurrent()
        if late:
            if self._arrived is None:
                self._arrived = []
            self._arrived.append(resume)
        else:
            self._links.append(resume)
        try:
            if self._lock is None:
                result = self.hub.switch()
                if result is not self:
                    self._invalid_switch(result)
            else:
                self._switch_to_hub(self.hub)
            resume = None       # the notifier removed the link before calling it
        finally:
            if resume is not None:
                self._quiet_unlink_all(resume)

    def _switch_to_hub(self, hub):
        lock = self._lock
        if lock is None:
            result = hub.switch()
        else:
            state = lock._release_save()
            try:
                result = hub.switch()
            finally:
                lock._acquire_restore(state)
        if result is not self:
            self._invalid_switch(result)

    def _invalid_switch(self, result):
        raise InvalidSwitchError("Invalid switch into %s.wait(): %r" % (type(self).__name__, result))

    def _wait_core(self, timeout, catch=Timeout):
        """Park until notified (True) or ``timeout`` expires (False; with ``catch=()``
        the Timeout is raised instead).  ``self.hub`` must be this thread's hub."""
        if timeout is None:
            self._park(False)
            return True
        timer = Timeout._start_new_or_dummy(timeout)
        try:
            self._park(False)
            return True
        except catch as ex:
            if ex is not timer:
                raise
            return False
        finally:
            timer.cancel()

    def _wait_return_value(self, waited, wait_success):
        raise NotImplementedError

    def _wait(self, timeout=None):
        self._capture_hub(True)
        if self.ready():
            result = self._wait_return_value(False, False)
            if self._notifier is not None:
                self._park(True)
            return result
        return self._wait_return_value(True, self._wait_core(timeout))

    def _at_fork_reinit(self):
        """Forget the hub and any queued notifier (called after fork)."""
        self.hub = None
        self._notifier = None
        self._pending = None
        self._arrived = None


def _remove(links, link):
    """Remove the first ``link`` from ``links``: whether it was there."""
    try:
        links.remove(link)
    except ValueError:
        return False
    return True


def _is_parked_greenlet(link):
    """Waiting greenlets link themselves (not a bound ``switch``: one allocation less
    per wait); a greenlet that is not callable can only be such a link."""
    return isinstance(link, greenlet) and not callable(link)


def _call_link(link, obj):
    """Run one link: switch into a parked greenlet, or call a callback."""
    if _is_parked_greenlet(link):
        link.switch(obj)
    else:
        link(obj)


def _hub_with_parent(glet):
    """The live hub whose parent is ``glet`` (a thread's main greenlet), if any."""
    for hub in list(_live_hubs):
        if hub.loop is not None and hub.parent is glet:
            return hub
    return None
