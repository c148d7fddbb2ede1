"""patch_all(): the patched names, the originals, a second call, cooperative sleep."""
import warnings

warnings.simplefilter("error")   # a second identical patch_all must not warn

from stolon import monkey

assert monkey.patch_all() is True
assert monkey.patch_all() is None

import select
import selectors
import socket
import threading
import time
import _thread

import stolon
import stolon.select
import stolon.socket

print("socket", socket.socket is stolon.socket.socket)
print("create_connection", socket.create_connection is stolon.socket.create_connection)
print("getaddrinfo", socket.getaddrinfo is stolon.socket.getaddrinfo)
print("sleep", time.sleep is stolon.sleep)
print("select", select.select is stolon.select.select)
print("epoll removed", not hasattr(select, "epoll"))
print("DefaultSelector", selectors.DefaultSelector.__module__)
print("patched", monkey.is_module_patched("socket"), monkey.is_object_patched("time", "sleep"))
print("not patched", monkey.is_module_patched("json"), monkey.is_object_patched("time", "time"))
native_sleep = monkey.get_original("time", "sleep")
print("original sleep", native_sleep is not time.sleep and native_sleep.__module__ == "time")
print("original pair", monkey.get_original("time", ["sleep", "time"])[1] is time.time)
print("original fallback", monkey.get_original(("no_such_module_x", "_thread"), "get_ident")
      is not _thread.get_ident)
print("unpatched attribute", monkey.get_original("os", "getpid") is __import__("os").getpid)

start = time.monotonic()
threads = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(10)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed = time.monotonic() - start
print("ten sleeps overlap", elapsed < 0.8, all(not t.is_alive() for t in threads))
