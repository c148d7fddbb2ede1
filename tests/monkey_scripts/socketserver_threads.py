"""socketserver.ThreadingTCPServer with a line-echo handler; clients in threads, each
holding its connection open while the others talk."""
from stolon import monkey

monkey.patch_all()

import socket
import socketserver
import threading
import time


class EchoHandler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(b"%s %s" % (threading.current_thread().name.encode()[:6], line))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    request_queue_size = 64


server = Server(("127.0.0.1", 0), EchoHandler)
serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
serving.start()
replies = {}
start = time.monotonic()


def client(n):
    with socket.create_connection(server.server_address, timeout=5) as sock:
        stream = sock.makefile("rwb")
        lines = []
        for round_ in range(3):
            stream.write(b"client%d round%d\n" % (n, round_))
            stream.flush()
            lines.append(stream.readline().decode().split(" ", 1)[1].strip())
            time.sleep(0.05)   # all clients hold their connection at once
        stream.close()
        replies[n] = lines


clients = [threading.Thread(target=client, args=(n,)) for n in range(10)]
for thread in clients:
    thread.start()
for thread in clients:
    thread.join()
print("replies", all(replies[n] == ["client%d round%d" % (n, r) for r in range(3)]
                     for n in range(10)), len(replies))
print("overlapped", time.monotonic() - start < 0.5)
server.shutdown()
serving.join()
server.server_close()
print("server stopped", not serving.is_alive())
