"""threading.local per greenlet; main_thread/current_thread/get_ident identities."""
from stolon import monkey

monkey.patch_all()

import _thread
import _threading_local
import threading

import stolon
import stolon.local

main = threading.main_thread()
print("main is current", threading.current_thread() is main)
print("main ident", main.ident == threading.get_ident() == _thread.get_ident()
      == id(stolon.getcurrent()))
print("native ident differs", monkey.get_original("_thread", "get_ident")() != threading.get_ident())
print("local types", threading.local is stolon.local.local,
      _threading_local.local is stolon.local.local)

data = threading.local()
data.value = "main"
seen = {}


def record(name):
    data.value = name
    stolon.sleep(0.01)    # another greenlet sets its own value meanwhile
    current = threading.current_thread()
    seen[name] = (data.value, current.name, current.ident == threading.get_ident(),
                  current is not main)


threads = [threading.Thread(target=record, args=("t%d" % n,), name="worker-%d" % n)
           for n in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
for name in sorted(seen):
    print(name, seen[name])
print("main keeps its value", data.value)
print("active after join", threading.active_count())
glet = stolon.spawn(threading.current_thread)
glet.join()
dummy = glet.value
print("spawned greenlet", type(dummy).__name__, dummy.daemon, dummy is not main)
stolon.sleep(0)   # the greenlet's links run after join() returns, as in gevent
print("dummy forgotten", dummy.ident not in threading._active)
idents = set()


def add_ident():
    idents.add(threading.get_ident())
    stolon.sleep(0.01)   # alive together: a finished greenlet's id() may be reused


threads = [threading.Thread(target=add_ident) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("distinct idents", len(idents))
joiner = threading.Thread(target=main.join, args=(0.05,))
joiner.start()
joiner.join()
print("joining main times out", main.is_alive())
