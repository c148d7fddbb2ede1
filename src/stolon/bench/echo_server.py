"""The servers of the echo benchmark cases, one per library, run as a child process:

    python echo_server.py LIBRARY [wsgi]

Listens on 127.0.0.1 (a free port), prints the port on one line, and serves until its
stdin closes (so it never outlives the benchmark that started it).  A line "rss" on
stdin makes it print its resident set size in bytes (the idle-connections case).

- stolon, gevent: a StreamServer whose handler is synchronous-looking greenlet code,
  ``recv`` then ``sendall`` until the peer closes.
- asyncio, uvloop: an asyncio Protocol that writes back what it receives, on the
  library's own event loop.
- with "wsgi" (stolon, gevent): the library's pywsgi.WSGIServer with a hello-world
  application, no access log, on a listener with TCP_NODELAY.
"""
import importlib
import resource
import sys
import threading

# run by path: this directory is sys.path[0], and importing memprobe takes it off
# (its module names must not shadow the measured library's imports)
from memprobe import rss


def _exit_when_stdin_closes(stop):
    # a thread, not the server's loop, reads the commands: it answers while the
    # loop is busy, and what it allocates is the same for every library
    def watch():
        for line in sys.stdin:
            if line.strip() == "rss":
                print(rss()[0], flush=True)
        stop()
    threading.Thread(target=watch, daemon=True).start()


def _allow_many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def serve_greenlets(name):
    lib = importlib.import_module(name)
    server_mod = importlib.import_module(name + ".server")

    def handle(sock, address):
        recv, sendall = sock.recv, sock.sendall
        try:
            while True:
                data = recv(65536)
                if not data:
                    break
                sendall(data)
        except ConnectionError:
            pass    # the client closes with a request in flight: a reset, not an error
        sock.close()

    server = server_mod.StreamServer(("127.0.0.1", 0), handle, backlog=1024)
    server.start()
    print(server.server_port, flush=True)
    hub = lib.get_hub()
    # the watcher thread may not touch the hub: it wakes it through an async watcher
    wake = hub.loop.async_()
    wake.start(server.stop)
    _exit_when_stdin_closes(wake.send)
    server.serve_forever()


_HELLO = b"Hello, World!\n"
_HELLO_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(_HELLO)))]


def _hello_app(environ, start_response):
    start_response("200 OK", _HELLO_HEADERS)
    return [_HELLO]


def serve_wsgi(name):
    lib = importlib.import_module(name)
    pywsgi = importlib.import_module(name + ".pywsgi")
    gsocket = importlib.import_module(name + ".socket")
    # TCP_NODELAY on the listener, which accepted sockets inherit (Linux): gevent's
    # pywsgi sends the headers and the body in two writes, and with Nagle's algorithm
    # the body would wait for the client's delayed ACK (about 40 ms) on every
    # request, which measures the kernel's timer rather than the server
    listener = gsocket.socket()
    listener.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_REUSEADDR, 1)
    listener.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    server = pywsgi.WSGIServer(listener, _hello_app, log=None)
    server.start()
    print(server.server_port, flush=True)
    wake = lib.get_hub().loop.async_()
    wake.start(server.stop)
    _exit_when_stdin_closes(wake.send)
    server.serve_forever()


class _Echo:
    """asyncio.Protocol's echo (a plain class with its methods: asyncio accepts it)."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        pass

    def eof_received(self):
        return False

    def pause_writing(self):
        pass

    def resume_writing(self):
        pass


def serve_asyncio(name):
    import asyncio

    loop = importlib.import_module("uvloop").new_event_loop() if name == "uvloop" else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(_Echo, "127.0.0.1", 0, backlog=1024))
    print(server.sockets[0].getsockname()[1], flush=True)
    _exit_when_stdin_closes(lambda: loop.call_soon_threadsafe(loop.stop))
    loop.run_forever()
    server.close()


def main(argv):
    name = argv[1]
    _allow_many_fds()
    if argv[2:] == ["wsgi"]:
        serve_wsgi(name)
    elif name in ("asyncio", "uvloop"):
        serve_asyncio(name)
    else:
        serve_greenlets(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
