"""urllib.request and http.client against a ThreadingHTTPServer in the same patched
process: sequential, keep-alive and concurrent requests."""
from stolon import monkey

monkey.patch_all()

import http.client
import json
import threading
import urllib.request

from _local_http import LocalServer

with LocalServer() as url:
    with urllib.request.urlopen(url + "/plain", timeout=5) as response:
        print("urllib GET", response.status, response.read().decode())
    request = urllib.request.Request(url + "/echo", data=b"shout", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        print("urllib POST", response.status, response.read().decode())

    port = int(url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    bodies = []
    for n in range(3):   # one keep-alive connection
        connection.request("GET", "/keepalive%d" % n)
        response = connection.getresponse()
        bodies.append(response.read().decode())
    connection.request("POST", "/json", body=json.dumps({"a": 1}),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    print("http.client", bodies, response.status, response.read().decode())
    connection.close()

    results = {}

    def fetch(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/c%d?delay=0.1" % n)
        results[n] = conn.getresponse().read().decode()
        conn.close()

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("concurrent", [results[n] == "c%d" % n for n in range(20)].count(True))
print("done")
