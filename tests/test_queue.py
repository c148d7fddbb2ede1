"""stolon.queue: gevent.queue's semantics (cross-checked against gevent 26.9).

Greenlets here are plain ones from ``stolon.spawn_raw``; a test that leaves one
blocked kills it before returning.
"""
import gc
import queue as stdlib_queue
import re
import warnings
import weakref

import pytest

import stolon
import stolon.queue as Q
from stolon.exceptions import BlockingSwitchOutError, LoopExit


def spawn(function, *args):
    return stolon.spawn_raw(function, *args)


def collect(results, q, count=1, **kwargs):
    """A greenlet body: get ``count`` items from ``q`` into ``results``."""
    def run():
        for _ in range(count):
            results.append(q.get(**kwargs))
    return run


def waiting(q):
    """(blocked getters, blocked putters), read from ``str(q)`` (gevent's compiled
    queues do not expose the waiter lists)."""
    text = str(q)
    counts = []
    for kind in ("getters", "putters"):
        found = re.search(kind + r"\[(\d+)\]", text)
        counts.append(int(found.group(1)) if found else 0)
    return tuple(counts)


def finish(*greenlets):
    """Kill whatever is still alive and let it unwind."""
    for g in greenlets:
        if not g.dead:
            stolon.kill(g)
    stolon.sleep(0)
    assert all(g.dead for g in greenlets)


# -- the module --------------------------------------------------------------------------

def test_exceptions_are_the_stdlib_ones():
    assert Q.Empty is stdlib_queue.Empty
    assert Q.Full is stdlib_queue.Full
    if hasattr(stdlib_queue, "ShutDown"):
        assert Q.ShutDown is stdlib_queue.ShutDown
    assert issubclass(Q.ShutDown, Exception)
    with pytest.raises(stdlib_queue.Empty):
        Q.Queue().get_nowait()
    with pytest.raises(stdlib_queue.Full):
        Q.Queue(1, [1]).put_nowait(2)


def test_public_names():
    assert Q.JoinableQueue is Q.Queue
    assert set(Q.__all__) == {"Queue", "PriorityQueue", "LifoQueue", "SimpleQueue",
                              "JoinableQueue", "Channel", "ShutDown", "Empty", "Full"}
    for cls in (Q.PriorityQueue, Q.LifoQueue, Q.UnboundQueue):
        assert issubclass(cls, Q.Queue)
    assert issubclass(Q.Queue, Q.SimpleQueue)
    assert not hasattr(Q.SimpleQueue, "shutdown")
    assert not hasattr(Q.SimpleQueue, "join")


def test_subscriptable():
    alias = Q.Queue[int]
    assert alias.__origin__ is Q.Queue and alias.__args__ == (int,)
    assert Q.Channel[str].__origin__ is Q.Channel


# -- size and bounds ---------------------------------------------------------------------

def test_fifo_and_size():
    q = Q.Queue()
    assert q.maxsize is None and q.empty() and not q.full()
    assert len(q) == 0 and bool(q) is True
    for i in range(3):
        q.put(i)
    assert q.qsize() == len(q) == 3 and not q.empty()
    assert [q.get(), q.get_nowait(), q.get(block=False)] == [0, 1, 2]


def test_maxsize_zero_warns_and_means_unbounded():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = Q.Queue(0)
    assert q.maxsize is None
    assert [w.category for w in caught] == [DeprecationWarning]
    assert str(caught[0].message) == ("Queue(0) now equivalent to Queue(None); "
                                      "if you want a channel, use Channel")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Q.Queue(-5).maxsize is None
        assert Q.SimpleQueue(None).maxsize is None


def test_bounded_full_and_maxsize_setter():
    q = Q.Queue(2)
    q.put(1)
    q.put(2)
    assert q.full() and q.maxsize == 2
    with pytest.raises(Q.Full):
        q.put(3, block=False)
    q.maxsize = None
    assert not q.full() and q.maxsize is None
    q.put(3)
    q.maxsize = -1
    assert q.maxsize is None
    q.maxsize = 3
    assert q.full()


def test_initial_items_and_copy():
    q = Q.Queue(5, [1, 2])
    assert q.unfinished_tasks == 2 and q.qsize() == 2
    c = q.copy()
    assert type(c) is Q.Queue and c.maxsize == 5 and c.unfinished_tasks == 2
    assert [c.get(), c.get()] == [1, 2] and q.qsize() == 2
    s = Q.SimpleQueue(None, "ab").copy()
    assert type(s) is Q.SimpleQueue and [s.get(), s.get()] == ["a", "b"]
    p = Q.PriorityQueue(None, [3, 1, 2]).copy()
    assert [p.get(), p.get(), p.get()] == [1, 2, 3]


def test_str():
    assert str(Q.SimpleQueue(3, [1])) == "<SimpleQueue maxsize=3 queue=deque([1])>"
    assert str(Q.SimpleQueue()) == "<SimpleQueue>"
    assert str(Q.Channel()) == "<Channel >"
    assert repr(Q.LifoQueue()).startswith("<LifoQueue at 0x")
    assert str(Q.Queue(2, [1, 2])).startswith("<Queue maxsize=2 queue=deque([1, 2]) tasks=2")


def test_negative_timeout():
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        Q.Queue().get(timeout=-1)
    with pytest.raises(ValueError, match="non-negative"):
        Q.Queue(2).put(1, timeout=-1)
    with pytest.raises(Q.Empty):
        Q.Queue().get(block=False, timeout=-1)
    # a full queue: the negative timeout simply expires at once
    with pytest.raises(Q.Full):
        Q.Queue(1, [1]).put(2, timeout=-1)


# -- waiting -----------------------------------------------------------------------------

def test_get_timeout_raises_empty():
    q = Q.Queue()
    with pytest.raises(Q.Empty):
        q.get(timeout=0.01)
    assert waiting(q) == (0, 0)
    with pytest.raises(Q.Empty):
        q.peek(timeout=0.001)


def test_put_timeout_raises_full():
    q = Q.Queue(1, ["x"])
    with pytest.raises(Q.Full):
        q.put("y", timeout=0.01)
    assert waiting(q) == (0, 0) and list(q.queue) == ["x"]


def test_blocked_getters_served_in_order():
    q = Q.Queue()
    results = []
    gs = [spawn(collect(results, q)) for _ in range(4)]
    stolon.sleep(0)
    assert waiting(q) == (4, 0)
    for i in range(4):
        q.put(i)
    assert q.qsize() == 4           # getters take their item only when they run
    stolon.sleep(0)
    assert results == [0, 1, 2, 3] and q.qsize() == 0
    finish(*gs)


def test_blocked_putters_fill_in_arrival_order():
    q = Q.Queue(1, ["first"])
    gs = [spawn(q.put, i) for i in range(3)]
    stolon.sleep(0)
    assert [q.get() for _ in range(4)] == ["first", 0, 1, 2]
    stolon.sleep(0)
    assert all(g.dead for g in gs) and waiting(q) == (0, 0)


def test_waiting_getter_woken_by_put():
    q = Q.Queue()
    results = []
    g = spawn(collect(results, q, timeout=5))
    stolon.sleep(0)
    q.put("item")
    stolon.sleep(0)
    assert results == ["item"] and g.dead


def test_killed_getter_does_not_lose_the_item():
    q = Q.Queue()
    results = []
    victim = spawn(collect(results, q))
    survivor = spawn(collect(results, q))
    stolon.sleep(0)
    stolon.kill(victim)     # lands before the wake-up scheduled by put() below
    q.put("item")
    stolon.sleep(0)
    assert victim.dead and results == ["item"] and survivor.dead
    assert waiting(q) == (0, 0) and q.qsize() == 0


def test_killed_last_getter_leaves_item_in_queue():
    q = Q.Queue()
    results = []
    g = spawn(collect(results, q))
    stolon.sleep(0)
    stolon.kill(g)
    q.put("kept")
    stolon.sleep(0)
    assert g.dead and results == [] and q.get_nowait() == "kept"


def test_timed_out_getter_does_not_lose_the_item():
    q = Q.Queue()
    errors = []

    def getter():
        try:
            q.get(timeout=0.001)
        except Q.Empty as ex:
            errors.append(ex)
    g = spawn(getter)
    # join, not a fixed sleep: under load the loop's cached time can lag by more
    # than a short sleep, and the sleep would end before the getter's timeout
    with stolon.Timeout(5):
        while not g.dead:
            stolon.sleep(0.001)
    q.put("kept")
    assert g.dead and len(errors) == 1 and q.get_nowait() == "kept"


def test_fast_path_get_takes_item_before_waiting_getter_runs():
    q = Q.Queue()
    results = []
    g = spawn(collect(results, q))
    stolon.sleep(0)
    q.put("first")
    assert q.get_nowait() == "first"      # the waiter has not run yet
    stolon.sleep(0)
    assert results == [] and waiting(q) == (1, 0)
    q.put("second")
    stolon.sleep(0)
    assert results == ["second"]
    finish(g)


def test_get_frees_slot_for_waiting_putter():
    q = Q.Queue(1, ["a"])
    g = spawn(q.put, "b")
    stolon.sleep(0)
    assert waiting(q) == (0, 1)
    assert q.get() == "a"
    stolon.sleep(0)
    assert g.dead and q.get_nowait() == "b"


def test_get_wakes_putter_when_getter_waits():
    q = Q.Queue(1, ["a"])
    g = spawn(q.put, "b")
    stolon.sleep(0)
    assert [q.get(), q.get()] == ["a", "b"]
    stolon.sleep(0)
    assert g.dead


def test_peek():
    q = Q.Queue()
    with pytest.raises(Q.Empty):
        q.peek_nowait()
    results = []

    def peeker():
        results.append(q.peek())
    g = spawn(peeker)
    stolon.sleep(0)
    q.put(7)
    stolon.sleep(0)
    assert g.dead and results == [7] and q.qsize() == 1
    assert q.peek() == 7 and q.peek_nowait() == 7 and q.get() == 7


def test_get_with_nothing_else_raises_loop_exit():
    q = Q.Queue()
    with pytest.raises(LoopExit) as info:
        q.get()
    assert str(info.value).startswith("This operation would block forever")
    assert waiting(q) == (0, 0)
    full = Q.Queue(1, [1])
    with pytest.raises(LoopExit):
        full.put(2)
    assert waiting(full) == (0, 0)


def test_iteration_until_stop_iteration():
    q = Q.Queue()
    for item in (1, 2, StopIteration, 3):
        q.put(item)
    assert list(q) == [1, 2]
    assert q.get() == 3
    assert iter(q) is q


def test_iteration_waits_for_producer():
    q = Q.Queue(1)

    def produce():
        for i in range(5):
            q.put(i)
        q.put(StopIteration)
    g = spawn(produce)
    assert list(q) == [0, 1, 2, 3, 4]
    finish(g)


def test_ping_pong_between_two_greenlets():
    there, back = Q.Queue(), Q.Queue()
    done = Q.Queue()
    count = 1000

    def echo():
        for _ in range(count):
            back.put(there.get() + 1)

    def drive():
        total = 0
        for i in range(count):
            there.put(i)
            total += back.get() - i
        done.put(total)
    gs = [spawn(echo), spawn(drive)]
    assert done.get() == count
    stolon.sleep(0)
    assert all(g.dead for g in gs)


# -- inside the hub ----------------------------------------------------------------------

def in_hub(function):
    """Run ``function`` as a hub callback; return what it returned or raised."""
    outcome = []

    def call():
        try:
            outcome.append(("value", function()))
        except BaseException as ex:     # noqa: B902 -- record everything raised
            outcome.append(("error", ex))
    stolon.get_hub().loop.run_callback(call)
    stolon.sleep(0)
    return outcome[0]


def test_get_in_hub_raises_empty_instead_of_blocking():
    kind, error = in_hub(Q.Queue().get)
    assert kind == "error" and type(error) is Q.Empty
    kind, error = in_hub(Q.Queue().peek)
    assert kind == "error" and type(error) is Q.Empty


def test_put_in_hub_to_full_queue_raises_full():
    kind, error = in_hub(lambda: Q.Queue(1, [1]).put(2))
    assert kind == "error" and type(error) is Q.Full
    q = Q.Queue(2)
    assert in_hub(lambda: q.put(1)) == ("value", None) and q.get() == 1


def test_get_in_hub_takes_from_waiting_putter():
    q = Q.Queue(1, ["a"])
    g = spawn(q.put, "b")
    stolon.sleep(0)
    q.get()
    assert in_hub(q.get) == ("value", "b")
    assert g.dead


def test_put_in_hub_lets_waiting_getter_make_room():
    q = Q.Queue(1)
    results = []
    g = spawn(collect(results, q))
    stolon.sleep(0)
    q.put_nowait("a")       # the getter has not run yet: the queue is full
    assert in_hub(lambda: q.put("b")) == ("value", None)
    assert results == ["a"] and q.get_nowait() == "b"
    finish(g)


def test_channel_get_in_hub_is_a_blocking_switch():
    kind, error = in_hub(Q.Channel().get)
    assert kind == "error" and type(error) is BlockingSwitchOutError
    kind, error = in_hub(Q.Channel().get_nowait)
    assert kind == "error" and type(error) is BlockingSwitchOutError
    kind, error = in_hub(lambda: Q.Channel().put(1))
    assert kind == "error" and type(error) is Q.Full


# -- tasks and shutdown ------------------------------------------------------------------

def test_task_done_and_join():
    q = Q.JoinableQueue()
    assert q.join() is True
    done = []

    def worker():
        for item in q:
            done.append(item)
            q.task_done()
    g = spawn(worker)
    for i in range(3):
        q.put(i)
    assert q.unfinished_tasks == 3
    assert q.join() is True
    assert done == [0, 1, 2] and q.unfinished_tasks == 0
    with pytest.raises(ValueError, match="task_done\\(\\) called too many times"):
        q.task_done()
    finish(g)


def test_join_timeout_returns_false():
    q = Q.Queue(None, [1])
    assert q.join(timeout=0.01) is False
    q.get()
    q.task_done()
    assert q.join(timeout=0.01) is True


def test_join_waiters_all_released():
    q = Q.Queue()
    q.put(1)
    released = []
    gs = [spawn(lambda n=n: released.append((n, q.join()))) for n in range(3)]
    stolon.sleep(0)
    assert released == []
    q.get()
    q.task_done()
    stolon.sleep(0)
    assert released == [(0, True), (1, True), (2, True)]
    finish(*gs)


def test_unfinished_tasks_argument():
    q = Q.Queue(None, [1, 2], unfinished_tasks=5)
    assert q.unfinished_tasks == 5
    assert Q.Queue(None, [], unfinished_tasks=4).unfinished_tasks == 4


def test_shutdown_puts_raise_gets_drain_first():
    q = Q.Queue()
    q.put(1)
    q.shutdown()
    with pytest.raises(Q.ShutDown):
        q.put(2)
    assert q.get() == 1
    with pytest.raises(Q.ShutDown):
        q.get()
    with pytest.raises(Q.ShutDown):
        q.get_nowait()
    with pytest.raises(Q.ShutDown):
        q.peek()


def test_shutdown_immediate_discards_items_and_finishes_tasks():
    q = Q.Queue(None, [1, 2])
    joined = []
    g = spawn(lambda: joined.append(q.join()))
    stolon.sleep(0)
    q.shutdown(immediate=True)
    assert q.qsize() == 0 and q.unfinished_tasks == 0
    with pytest.raises(Q.ShutDown):
        q.get()
    stolon.sleep(0)
    assert joined == [True]
    finish(g)


def test_shutdown_wakes_waiters_with_shutdown():
    q = Q.Queue()
    errors = []

    def getter():
        try:
            q.get()
        except Q.ShutDown as ex:
            errors.append(("get", type(ex)))
    full = Q.Queue(1, [0])

    def putter():
        try:
            full.put(1)
        except Q.ShutDown as ex:
            errors.append(("put", type(ex)))
    gs = [spawn(getter), spawn(putter)]
    stolon.sleep(0)
    q.shutdown()
    full.shutdown()
    assert waiting(q) == waiting(full) == (0, 0)
    stolon.sleep(0)
    assert errors == [("get", Q.ShutDown), ("put", Q.ShutDown)]
    assert all(g.dead for g in gs)


# -- the other kinds ---------------------------------------------------------------------

def test_priority_queue():
    q = Q.PriorityQueue(None, [(3, "c"), (1, "a")])
    q.put((2, "b"))
    q.put((0, "z"))
    assert q.peek() == (0, "z")
    assert [q.get()[1] for _ in range(4)] == ["z", "a", "b", "c"]
    assert q.unfinished_tasks == 4


def test_lifo_queue():
    q = Q.LifoQueue(None, [1, 2])
    q.put(3)
    assert q.peek() == 3 and q.unfinished_tasks == 3
    assert [q.get(), q.get(), q.get()] == [3, 2, 1]


def test_unbound_queue():
    with pytest.raises(ValueError, match="UnboundQueue has no maxsize"):
        Q.UnboundQueue(3)
    q = Q.UnboundQueue()
    for i in range(100):
        q.put(i, block=False)
    assert q.qsize() == 100 and q.maxsize is None and q.unfinished_tasks == 100
    results = []
    g = spawn(collect(results, q, 101))
    stolon.sleep(0)
    q.put("last")
    stolon.sleep(0)
    assert results[-1] == "last" and g.dead


def test_stdlib_style_subclass_hooks():
    class Stack(Q.SimpleQueue):
        def _init(self, maxsize):
            self.queue = []

        def _put(self, item):
            self.queue.append(item)

        def _get(self):
            return self.queue.pop()
    s = Stack(2)
    s.put(1)
    s.put(2)
    assert s.full() and [s.get(), s.get()] == [2, 1]


def logging_queue(base, slotted):
    """A ``base`` subclass whose _qsize, _put and _get note their calls in
    ``q.calls``; with ``slotted`` its instances have no __dict__."""
    class Logging(base):
        if slotted:
            __slots__ = ("calls",)

        def __init__(self, *args):
            self.calls = []
            base.__init__(self, *args)

        def _qsize(self):
            self.calls.append("qsize")
            return base._qsize(self)

        def _put(self, item):
            self.calls.append("put")
            base._put(self, item)

        def _get(self):
            self.calls.append("get")
            return base._get(self)
    return Logging


SUBCLASS_KINDS = [(base, slotted) for base in (Q.SimpleQueue, Q.Queue)
                  for slotted in (True, False)]


@pytest.mark.parametrize("base,slotted", SUBCLASS_KINDS)
def test_subclass_hooks_used_without_waiting(base, slotted):
    q = logging_queue(base, slotted)()
    q.put("a")
    assert q.calls == ["put"]
    assert q.get() == "a"
    assert "qsize" in q.calls and q.calls[-1] == "get"


@pytest.mark.parametrize("base,slotted", SUBCLASS_KINDS)
def test_subclass_hooks_used_by_waiting_getters_and_putters(base, slotted):
    q = logging_queue(base, slotted)(1)
    results = []
    getter = spawn(collect(results, q))
    stolon.sleep(0)
    q.calls.clear()
    q.put("a")                      # handed to the waiting getter by a hub callback
    stolon.sleep(0)
    assert results == ["a"] and q.calls.count("put") == 1 and q.calls.count("get") == 1
    q.put("b")
    putter = spawn(q.put, "c")      # the queue is full: waits
    stolon.sleep(0)
    q.calls.clear()
    assert q.get() == "b"
    stolon.sleep(0)                 # the hub callback admits the waiting putter
    assert q.calls.count("put") == 1 and putter.dead and q.get() == "c"
    finish(getter)


def test_put_hook_alone_is_used():
    class Tagging(Q.Queue):
        __slots__ = ()

        def _put(self, item):
            Q.Queue._put(self, ("tagged", item))
    q = Tagging()
    q.put(1)
    assert q.get() == ("tagged", 1) and q.unfinished_tasks == 1


def test_qsize_hook_alone_is_used():
    class Pausable(Q.Queue):
        __slots__ = ("paused",)

        def _qsize(self):
            return 0 if self.paused else Q.Queue._qsize(self)
    q = Pausable()
    q.paused = True
    q.put(1)
    with pytest.raises(Q.Empty):
        q.get(block=False)
    q.paused = False
    assert q.get() == 1


def test_hook_set_on_an_instance_is_used():
    class Plain(Q.Queue):
        pass
    q = Plain()
    q._get = lambda: "from the instance"
    q.put(1)
    assert q.get() == "from the instance"


def test_hook_of_a_subclass_of_an_instantiated_class_is_used():
    class Slotted(Q.Queue):
        __slots__ = ()

    class Doubling(Slotted):
        __slots__ = ()

        def _get(self):
            return 2 * Slotted._get(self)
    plain = Slotted()
    plain.put(1)
    assert plain.get() == 1 and plain.unfinished_tasks == 1
    q = Doubling()
    q.put(1)
    assert q.get() == 2


def test_put_inherited_past_queue_still_counts_tasks():
    class Direct(Q.Queue):
        __slots__ = ()

        def put(self, item, block=True, timeout=None):
            Q.SimpleQueue.put(self, item, block, timeout)
    q = Direct()
    q.put(1)
    assert q.unfinished_tasks == 1 and q.get() == 1


def test_overridden_unlock_is_used():
    calls = []

    class Watched(Q.Queue):
        __slots__ = ()

        def _unlock(self):
            calls.append("unlock")
            Q.Queue._unlock(self)
    q = Watched()
    results = []
    g = spawn(collect(results, q))
    stolon.sleep(0)
    q.put("a")
    stolon.sleep(0)
    assert calls == ["unlock"] and results == ["a"]
    finish(g)


@pytest.mark.parametrize("kind,order", [
    (Q.Queue, ("b", "a")), (Q.SimpleQueue, ("b", "a")),
    (Q.PriorityQueue, ("a", "b")), (Q.LifoQueue, ("a", "b"))])
def test_ping_pong_with_each_kind(kind, order):
    # two items per round: the order they come back in shows the kind's rule
    there, back = kind(), Q.Queue()
    count = 200

    def echo():
        for _ in range(count):
            first, second = there.get(), there.get()
            back.put((first[0], first[1], second[1]))
    g = spawn(echo)
    for i in range(count):
        there.put((i, "b"))
        there.put((i, "a"))
        assert back.get() == (i,) + order
    stolon.sleep(0)
    assert g.dead and there.qsize() == 0


def test_getter_that_fails_after_its_item_does_not_stall_the_queue():
    q = Q.Queue()
    results = []

    def failing():
        results.append(q.get())
        # ends the greenlet inside the hub callback that woke it; the hub reports it
        raise ValueError("expected by the test")
    spawn(failing)
    stolon.sleep(0)
    q.put(1)
    stolon.sleep(0)
    g = spawn(collect(results, q))
    stolon.sleep(0)
    q.put(2)
    stolon.sleep(0)
    assert results == [1, 2] and g.dead


def test_used_queue_is_freed_without_the_cycle_collector():
    q = Q.Queue()
    results = []
    g = spawn(collect(results, q))
    stolon.sleep(0)
    q.put(1)                        # wakes the getter through a hub callback
    q.put(2)
    assert q.get() == 1 and results == []
    stolon.sleep(0)
    assert results == [2] and g.dead
    ref = weakref.ref(q)
    gc.disable()
    try:
        del q, g
        assert ref() is None
    finally:
        gc.enable()


def test_woken_getter_that_blocks_a_putter():
    # the first getter, once woken, fills the queue and waits to put more; the
    # same hub callback then serves the second getter and admits that putter
    q = Q.Queue(1)
    results = []

    def first():
        results.append(q.get())
        q.put("x")
        q.put("y")
        results.append("first done")
    gs = [spawn(first), spawn(collect(results, q))]
    stolon.sleep(0)
    q.put("a")
    stolon.sleep(0)
    assert results == ["a", "x", "first done"] and q.get() == "y"
    stolon.sleep(0)
    assert all(g.dead for g in gs)


# -- Channel -----------------------------------------------------------------------------

def test_channel_put_waits_for_a_getter():
    ch = Q.Channel()
    assert ch.qsize() == 0 and ch.empty() and ch.full()
    events = []

    def producer():
        ch.put("x")
        events.append("put returned")
    g = spawn(producer)
    stolon.sleep(0)
    assert events == [] and ch.balance == 1
    events.append(ch.get())
    stolon.sleep(0)
    assert events == ["x", "put returned"] and g.dead and ch.balance == 0


def test_channel_get_waits_for_a_putter():
    ch = Q.Channel()
    results = []
    gs = [spawn(collect(results, ch)) for _ in range(2)]
    stolon.sleep(0)
    assert ch.balance == -2
    ch.put(1)
    ch.put(2)
    assert results == [1, 2]
    stolon.sleep(0)
    assert all(g.dead for g in gs)


def test_channel_timeouts_and_nowait():
    ch = Q.Channel()
    with pytest.raises(Q.Full):
        ch.put_nowait(1)
    with pytest.raises(Q.Full):
        ch.put(1, timeout=0.001)
    with pytest.raises(Q.Empty):
        ch.get_nowait()
    with pytest.raises(Q.Empty):
        ch.get(timeout=0.001)
    assert ch.balance == 0
    with pytest.raises(ValueError, match="Channels have a maxsize of 1"):
        Q.Channel(2)


def test_channel_iteration():
    ch = Q.Channel()

    def produce():
        for item in ("a", "b", StopIteration):
            ch.put(item)
    g = spawn(produce)
    assert list(ch) == ["a", "b"]
    stolon.sleep(0)
    assert g.dead


def test_channel_killed_putter_withdraws_its_item():
    ch = Q.Channel()
    g = spawn(ch.put, "withdrawn")
    stolon.sleep(0)
    assert ch.balance == 1
    stolon.kill(g)
    stolon.sleep(0)
    assert g.dead and ch.balance == 0
    with pytest.raises(Q.Empty):
        ch.get(timeout=0.001)


def test_channel_killed_getter_leaves_the_channel():
    ch = Q.Channel()
    results = []
    g = spawn(collect(results, ch))
    stolon.sleep(0)
    assert ch.balance == -1
    stolon.kill(g)
    stolon.sleep(0)
    assert g.dead and ch.balance == 0 and results == []


# -- more waiting cases ------------------------------------------------------------------

def test_peek_waiter_does_not_consume_and_getters_follow():
    q = Q.Queue()
    results = []

    def peeker():
        results.append(("peek", q.peek()))
    gs = [spawn(peeker), spawn(collect(results, q))]
    stolon.sleep(0)
    q.put("x")
    stolon.sleep(0)
    assert results == [("peek", "x"), "x"] and q.qsize() == 0
    finish(*gs)


def test_error_from_put_hook_is_raised_in_the_waiting_putter():
    q = Q.PriorityQueue(2, [1, 2])
    errors = []

    def putter():
        try:
            q.put("not comparable with ints")
        except TypeError as ex:
            errors.append(ex)
    g = spawn(putter)
    stolon.sleep(0)
    assert q.get() == 1
    stolon.sleep(0)
    assert g.dead and len(errors) == 1


def test_put_with_waiting_getter_from_the_hub():
    q = Q.Queue()
    results = []
    g = spawn(collect(results, q))
    stolon.sleep(0)
    assert in_hub(lambda: q.put("from hub")) == ("value", None)
    stolon.sleep(0)
    assert results == ["from hub"] and g.dead


def test_join_while_release_is_pending_waits_its_turn():
    q = Q.Queue(None, ["task"])
    order = []
    g = spawn(lambda: order.append(("first", q.join())))
    stolon.sleep(0)
    q.get()
    q.task_done()       # schedules the release of the first joiner
    order.append(("second", q.join()))
    assert order == [("first", True), ("second", True)]
    finish(g)


def test_shutdown_immediate_with_waiting_getter():
    q = Q.Queue()
    errors = []

    def getter():
        try:
            q.get()
        except Q.ShutDown:
            errors.append("shut down")
    g = spawn(getter)
    stolon.sleep(0)
    q.shutdown(immediate=True)
    stolon.sleep(0)
    assert errors == ["shut down"] and g.dead
    with pytest.raises(Q.ShutDown):
        q.put(1)


# -- deliberate differences from gevent 26.9 ---------------------------------------------

def test_maxsize_zero_warning_points_at_the_caller():
    # stolon differs: gevent's compiled module attributes this warning to "sys"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Q.Queue(0)
        Q.SimpleQueue(0)
        Q.PriorityQueue(0)
    assert [w.filename for w in caught] == [__file__] * 3


def test_unbound_queue_copy_and_shutdown():
    # stolon differs: gevent 26.9 raises TypeError from both (it passes copy() an
    # argument UnboundQueue does not take, and shutdown() iterates putters=None)
    q = Q.UnboundQueue(None, [1, 2])
    c = q.copy()
    assert type(c) is Q.UnboundQueue and c.unfinished_tasks == 2 and list(c.queue) == [1, 2]
    q.shutdown()
    assert q.get() == 1
