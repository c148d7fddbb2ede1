"""A WSGI application for the gunicorn worker tests (tests/test_gunicorn.py).

Paths: ``/`` says hello; ``/pid`` answers the worker's pid; ``/echo`` answers the
request body; ``/sleep?S`` waits S seconds cooperatively; ``/stream?S`` sends a first
line, waits S seconds, then sends the last (a client sees the request is running);
``/patched`` answers which stdlib modules the worker patched; ``/exit`` calls
``sys.exit(1)``.
"""
import os
import sys

import stolon


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/pid":
        body = str(os.getpid()).encode()
    elif path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
    elif path == "/sleep":
        stolon.sleep(float(query))
        body = b"slept"
    elif path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
        return _stream(float(query))
    elif path == "/exit":
        sys.exit(1)
    elif path == "/patched":
        from stolon import monkey
        body = " ".join("%s=%s" % (name, monkey.is_module_patched(name))
                        for name in ("socket", "time")).encode()
    else:
        body = b"hello world"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _stream(seconds):
    yield b"started\n"
    stolon.sleep(seconds)
    yield b"done"
