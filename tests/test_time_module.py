"""stolon.time: the time module with a cooperative sleep (gevent.time)."""
import time

import stolon
import stolon.time


def test_sleep_is_the_hubs_and_lets_other_greenlets_run():
    assert stolon.time.sleep is stolon.sleep
    ran = []
    stolon.spawn(ran.append, "other")
    start = time.monotonic()
    stolon.time.sleep(0.01)
    assert ran == ["other"]
    assert time.monotonic() - start >= 0.01


def test_every_other_name_is_the_stdlibs_object():
    names = [name for name in vars(time) if not name.startswith("__") and name != "sleep"]
    assert names
    for name in names:
        assert getattr(stolon.time, name) is getattr(time, name), name
    assert stolon.time.__implements__ == ["sleep"]
    assert stolon.time.__all__ == ["sleep"]
