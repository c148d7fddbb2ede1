"""A ThreadingHTTPServer for the client scenarios (imported after patching, so its
threads are greenlets): GET /<name>?delay=<seconds> answers "<name>" after sleeping;
POST echoes the body back upper-cased."""
import http.server
import threading
import time
from urllib.parse import parse_qs, urlsplit


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, body, content_type="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = urlsplit(self.path)
        delay = float(parse_qs(parts.query).get("delay", ["0"])[0])
        if delay:
            time.sleep(delay)
        self._answer(parts.path.lstrip("/").encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(body.upper())

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # a hundred clients connect at once: the default backlog of 5 would make some
    # of them wait for SYN retransmissions
    request_queue_size = 256
    daemon_threads = True


class LocalServer:
    """``with LocalServer() as url:`` serves in a thread until the block ends."""

    def __enter__(self):
        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05})
        self.thread.start()
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()
