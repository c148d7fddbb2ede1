"""The main module ends while threads still do socket I/O; the interpreter must exit
with status 0 and nothing on stderr, patched (argv[2] == "patch") or not.  argv[1]:
"non-daemon" (a client thread still talking to a server thread), "daemon" (daemon
threads blocked in accept() and queue.get()), "executor" (a ThreadPoolExecutor with
work queued, never shut down), "none"."""
import sys

if sys.argv[2:] == ["patch"]:
    from stolon import monkey
    monkey.patch_all()

import concurrent.futures
import queue
import socket
import threading
import time

mode = sys.argv[1]


def serve_one(listener):
    conn, _ = listener.accept()
    with conn:
        for _ in range(3):
            data = conn.recv(100)
            time.sleep(0.05)
            conn.sendall(data.upper())
    listener.close()


def talk(address):
    with socket.create_connection(address, timeout=5) as sock:
        replies = []
        for word in (b"a", b"b", b"c"):
            sock.sendall(word)
            replies.append(sock.recv(100))
    print("client finished", replies, flush=True)


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(5)
if mode == "non-daemon":
    threading.Thread(target=serve_one, args=(listener,)).start()
    threading.Thread(target=talk, args=(listener.getsockname(),)).start()
elif mode == "daemon":
    threading.Thread(target=listener.accept, daemon=True).start()
    threading.Thread(target=queue.Queue().get, daemon=True).start()
elif mode == "executor":
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    for n in range(4):
        # one write per line: print() writes the newline separately, and real
        # threads could interleave there
        pool.submit(lambda n=n: (time.sleep(0.02), sys.stdout.write("job %d\n" % n),
                                 sys.stdout.flush()))
    listener.close()
else:
    listener.close()
print("main module done", flush=True)
