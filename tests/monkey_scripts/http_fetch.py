"""urllib.request against a ThreadingHTTPServer, both in the patched process."""
from stolon import monkey

monkey.patch_all()

import http.server
import threading
import urllib.request


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("path=%s thread=%s" % (self.path, type(threading.current_thread()).__name__)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
serving.start()
url = "http://127.0.0.1:%d" % server.server_address[1]
results = []


def fetch(n):
    with urllib.request.urlopen("%s/item%d" % (url, n), timeout=5) as response:
        results.append((response.status, response.read().decode()))


fetchers = [threading.Thread(target=fetch, args=(n,)) for n in range(4)]
for thread in fetchers:
    thread.start()
for thread in fetchers:
    thread.join()
for result in sorted(results):
    print(*result)
server.shutdown()
serving.join()
server.server_close()
print("server stopped", not serving.is_alive())
