"""The main module ends while threads still run: non-daemon ones finish first; a
daemon one blocked forever and a greenlet joining the main thread do not stop exit."""
import sys

from stolon import monkey

monkey.patch_all()

import threading
import time

mode = sys.argv[1]


def late(n):
    time.sleep(0.05 * n)
    print("late thread", n, "done", flush=True)


def join_main():
    threading.main_thread().join()
    print("main thread joined", flush=True)


if mode in ("non-daemon", "all"):
    for n in (1, 2):
        threading.Thread(target=late, args=(n,)).start()
if mode in ("daemon", "all"):
    threading.Thread(target=threading.Event().wait, daemon=True).start()
    threading.Thread(target=join_main, daemon=True).start()
if mode == "timer":
    threading.Timer(0.05, print, args=("timer fired",), kwargs={"flush": True}).start()
    cancelled = threading.Timer(0.05, print, args=("cancelled timer fired",))
    cancelled.start()
    cancelled.cancel()
print("main module done", flush=True)
