"""os.fork() in a patched program: the child's threading has one valid main thread
(the forking greenlet), the other threads are dead there, and both processes exit
cleanly.  argv[1] says which greenlet forks: "main", "thread" (a threading.Thread),
"dummy" (a spawned greenlet that asked for current_thread() first)."""
import sys

from stolon import monkey

monkey.patch_all()

import os
import threading
import time

import stolon

mode = sys.argv[1]
role = "parent"


def in_child(bystander):
    current = threading.current_thread()
    main = threading.main_thread()
    print("child main", current is main, type(main).__name__, main.name,
          main.ident == threading.get_ident(), flush=True)
    print("child threads", threading.enumerate() == [main], threading.active_count(),
          flush=True)
    start = time.monotonic()
    bystander.join()
    print("child bystander dead", not bystander.is_alive(), time.monotonic() - start < 0.05,
          flush=True)
    worker = threading.Thread(target=lambda: (time.sleep(0.02),
                                              print("child new thread ran", flush=True)))
    worker.start()
    # the bystander's greenlet was copied into the child and finishes here, quietly
    time.sleep(0.15)


def fork_and_wait(bystander):
    global role
    pid = os.fork()
    if pid == 0:
        role = "child"
        in_child(bystander)
        return
    _, status = os.waitpid(pid, 0)
    print("parent sees child exit", os.WEXITSTATUS(status), flush=True)


def dummy_fork(bystander):
    threading.current_thread()   # a dummy thread now stands for this greenlet
    fork_and_wait(bystander)


bystander = threading.Thread(target=time.sleep, args=(0.1,), name="bystander")
bystander.start()
if mode == "main":
    fork_and_wait(bystander)
elif mode == "thread":
    forker = threading.Thread(target=fork_and_wait, args=(bystander,), name="forker")
    forker.start()
    forker.join()
else:
    stolon.spawn(dummy_fork, bystander).join()
bystander.join()
print(role, "exits", flush=True)
