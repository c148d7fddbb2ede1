"""stolon.pywsgi's parts without the network: Input (Content-Length and chunked
bodies, 100-continue), the environ classes, LoggingLogAdapter, the server's
configuration (environ, logs, max_accept, handler_class) -- and HTTPS, when
stolon.ssl is there."""
import io
import logging
import pickle
import warnings

import pytest

import stolon
import stolon.socket
import stolon.ssl
from stolon import pywsgi
from stolon.pywsgi import Environ, Input, LoggingLogAdapter, SecureEnviron, WSGISecureEnviron
from conftest import logger_records, read_all

LOCAL = ("127.0.0.1", 0)
# after renaming for the cross-check this is the other library's name
UNDER_STOLON = stolon.__name__ == "stol" + "on"



def FD_WARM_UP():
    """conftest's module_closes_its_fds counts from here: the resolver's first use
    opens what stays open."""
    server = pywsgi.WSGIServer(LOCAL, None, log=None)
    server.start()
    server.stop()


# -- Input -------------------------------------------------------------------------------

def body(data, length=None, chunked=False, socket=None):
    return Input(io.BufferedReader(io.BytesIO(data)), length, socket=socket, chunked_input=chunked)


def test_input_with_content_length_stops_at_the_length():
    stream = body(b"line1\nline2\nrest|next request", length=16)
    assert stream.readline() == b"line1\n"
    assert stream.readline(3) == b"lin"
    assert stream.read(2) == b"e2"
    assert list(stream) == [b"\n", b"rest"]
    assert stream.read() == b"" and stream.readline() == b""
    assert stream.rfile.read() == b"|next request"


def test_input_without_length_is_empty():
    stream = body(b"GET / HTTP/1.1\r\n")
    assert stream.read() == b"" and stream.readline() == b"" and stream.readlines() == []


def test_input_negative_sizes_mean_all():
    assert body(b"abc\ndef", length=7).read(-1) == b"abc\ndef"
    assert body(b"abc\ndef", length=7).readline(-5) == b"abc\n"


def test_input_short_body_raises():
    stream = body(b"abc", length=10)
    with pytest.raises(IOError, match="unexpected end of file while reading request at position 3"):
        stream.read()


def test_chunked_input_decodes_and_stops_after_trailers():
    data = b"3\r\nabc\r\n5;ext=\"q\"\r\nde\nfg\r\n0\r\nTrailer-One: x\r\nT2:y\r\n\r\nNEXT"
    stream = body(data, chunked=True)
    assert stream.read(2) == b"ab"
    assert stream.readline() == b"cde\n"
    assert stream.read() == b"fg"
    assert stream.read() == b""
    assert stream.rfile.read() == b"NEXT"


def test_chunked_input_readlines():
    stream = body(b"4\r\na\nb\n\r\n2\r\nc\n\r\n0\r\n\r\n", chunked=True)
    assert stream.readlines() == [b"a\n", b"b\n", b"c\n"]


@pytest.mark.parametrize("data", [
    b"g\r\n",
    b"3\r\nabcX\r\n",
    b"1" * 17 + b"\r\n",
    b"3;" + b"e" * (pywsgi.MAX_REQUEST_LINE + 10) + b"\r\nabc\r\n0\r\n\r\n",
    b"0\r\n" + b"T: " + b"x" * (pywsgi.MAX_REQUEST_LINE + 10) + b"\r\n\r\n",
    b"0\r\nBad{name: x\r\n\r\n",
    b"3\n",
])
def test_chunked_input_errors_are_client_errors(data):
    with pytest.raises(pywsgi._InvalidClientInput):
        body(data, chunked=True).read()


@pytest.mark.parametrize("line, error", [
    (b"1x\r\n", ("Non-hex data", b"x")),
    (b"zz\r\n", ("Non-hex data", b"z")),
    (b"1" * 17 + b"\r\n", ("Chunk-size too large.",)),
    (b"1" * 17 + b"z\r\n", ("Chunk-size too large.",)),
])
def test_chunk_size_errors_name_the_first_bad_byte(line, error):
    # as gevent's reader, which stops at the first byte that cannot be part of a size
    with pytest.raises(pywsgi._InvalidClientInput) as caught:
        body(line + b"abc\r\n0\r\n\r\n", chunked=True).read()
    assert caught.value.args == error


def test_chunked_input_eof_raises():
    with pytest.raises(IOError):
        body(b"5\r\nab", chunked=True).read()


class RecordingSocket:
    def __init__(self):
        self.sent = []

    def sendall(self, data):
        self.sent.append(data)


def test_100_continue_on_first_read_only():
    sock = RecordingSocket()
    stream = body(b"abcdef", length=6, socket=sock)
    assert sock.sent == []
    assert stream.read(2) == b"ab"
    assert stream.read() == b"cdef"
    assert sock.sent == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_discard_reads_the_rest_without_100_continue():
    sock = RecordingSocket()
    stream = body(b"abcdefNEXT", length=6, socket=sock)
    stream._discard()
    assert sock.sent == []
    assert stream.rfile.read() == b"NEXT"


# -- request headers -----------------------------------------------------------------

@pytest.mark.parametrize("block", [
    b"Host: x\r\nAccept: */*\r\n\r\nBODY",
    b"X-A: 1\r\nX-A: 2\r\nX-Empty:\r\nX-Tabs:\t v \t\r\n\r\n",
    b"X-Folded: a\r\n b\r\n\tc\r\nNext: 1\r\n\r\n",
    b"Bad Name: x\r\nAfter: 1\r\n\r\n",
    b"NoColon\r\nAfter: 1\r\n\r\n",
    b":empty-name\r\n\r\n",
    b"Bare-LF: 1\nOther: 2\n\nBODY",
    b"Latin: caf\xe9\r\n\r\n",
    b"Stray: a\rb\r\n\r\n",
    b"At-EOF: 1\r\n",
    b"",
    b"".join(b"H%d: v\r\n" % i for i in range(99)) + b"\r\n",
])
def test_request_headers_parse_as_http_client_does(block):
    import http.client
    ours_stream = io.BufferedReader(io.BytesIO(block))
    ours = pywsgi.headers_factory(ours_stream)
    reference_stream = io.BufferedReader(io.BytesIO(block))
    reference = http.client.parse_headers(reference_stream)
    assert ours.items() == reference.items()
    assert [ours.get_all(name) for name in ours.keys()] == [reference.get_all(name) for name in reference.keys()]
    assert ours.status == ""
    assert ours_stream.read() == reference_stream.read()


def test_request_header_limits():
    too_many = b"".join(b"H%d: v\r\n" % i for i in range(100)) + b"\r\n"
    with pytest.raises(Exception, match="got more than 100 headers"):
        pywsgi.headers_factory(io.BufferedReader(io.BytesIO(too_many)))
    too_long = b"X: " + b"a" * 65536 + b"\r\n\r\n"
    message = pywsgi.headers_factory(io.BufferedReader(io.BytesIO(too_long)))
    assert message.status == "Line too long" and message.items() == []


def test_request_headers_api():
    message = pywsgi.headers_factory(io.BufferedReader(io.BytesIO(
        b"Content-Type: text/html\r\nX: 1\r\n\r\n")))
    assert message.getheader("x") == "1" and message.getheader("missing", 5) == 5
    assert message.typeheader == "text/html"
    assert list(message.headers) == ["Content-Type: text/html\r\n", "X: 1\r\n"]


# -- environ classes -----------------------------------------------------------------

def test_environ_copy_and_pickle():
    env = Environ(a=1)
    copy = env.copy()
    assert type(copy) is Environ and copy == {"a": 1}
    restored = pickle.loads(pickle.dumps(env))
    assert type(restored) is dict and restored == {"a": 1}
    assert dict(env.iteritems()) == {"a": 1}


def test_secure_environ_repr():
    env = SecureEnviron(key="value")
    assert repr(env).startswith("<pywsgi.SecureEnviron dict (keys: 1) at ")
    env.whitelist_keys = {"key"}
    assert repr(env) == "{'key': 'value'}"
    env["secure"] = "secret"
    assert repr(env) == "{'key': 'value', 'secure': '<MASKED>'}"
    env.print_masked_keys = False
    assert repr(env) == "{'key': 'value', (hidden keys: 1)}"
    env.secure_repr = False
    assert repr(env) == str(env) == "{'key': 'value', 'secure': 'secret'}"
    with pytest.raises(AttributeError):
        env.other


def test_wsgi_secure_environ_shows_only_the_client():
    env = WSGISecureEnviron(REMOTE_ADDR="::1", HTTP_AUTHORIZATION="secret")
    assert repr(env) == "{'REMOTE_ADDR': '::1', (hidden keys: 1)}"


# -- LoggingLogAdapter -------------------------------------------------------------

def test_logging_log_adapter():
    with logger_records("test_pywsgi_parts.adapter") as (logger, records):
        adapter = LoggingLogAdapter(logger, logging.WARNING)
        adapter.write("one\n")
        adapter.writelines(["two", "three\n"])
        adapter.flush()
        assert adapter.name == "test_pywsgi_parts.adapter"     # read through
        adapter.custom = 5                                      # written through
        assert logger.custom == 5
        del adapter.custom
        assert not hasattr(logger, "custom")
    assert records == [(logging.WARNING, "one"), (logging.WARNING, "two"), (logging.WARNING, "three")]


# -- server configuration ----------------------------------------------------------

def test_server_defaults_and_environ():
    server = pywsgi.WSGIServer(LOCAL, None, environ={"x": 1, "SERVER_NAME": "given"})
    try:
        assert server.handler_class is pywsgi.WSGIHandler
        assert server.log is server.error_log
        assert server.environ["wsgi.errors"] is server.error_log
        assert server.environ["wsgi.url_scheme"] == "http"
        assert server.environ["GATEWAY_INTERFACE"] == "CGI/1.1"
        assert server.environ["x"] == 1
        assert server.max_accept == pywsgi.WSGIServer.max_accept
        env = server.get_environ()
        assert env == server.environ and env is not server.environ and type(env) is dict
        server.start()
        assert server.environ["SERVER_NAME"] == "given"
        assert server.environ["SERVER_PORT"] == str(server.server_port)
    finally:
        server.stop()


def test_server_environ_class_and_multiprocess():
    class Server(pywsgi.WSGIServer):
        environ_class = Environ
    server = Server(LOCAL, None, log=None, environ={"wsgi.multiprocess": True})
    try:
        assert type(server.get_environ()) is Environ
        assert server.max_accept == 1
        server.environ["wsgi.errors"] = None
        server.set_environ()        # keeps the earlier update, restores wsgi.errors
        assert server.environ["wsgi.multiprocess"] is True
        assert server.environ["wsgi.errors"] is server.error_log
    finally:
        server.close()


def test_log_none_is_a_silent_file():
    server = pywsgi.WSGIServer(LOCAL, None, log=None, error_log=None)
    try:
        server.log.write("x")
        server.log.writelines(["x"])
        server.log.flush()
        assert server.environ["wsgi.errors"] is server.error_log
    finally:
        server.close()


class _CountingHandler(pywsgi.WSGIHandler):
    formatted = 0

    def format_request(self):
        _CountingHandler.formatted += 1
        return pywsgi.WSGIHandler.format_request(self)


def _handle_one(server, request):
    """Serve ``request`` with ``server``'s handler class, without the network; return
    the handler."""
    class Connection:
        sent = []

        def sendall(self, data):
            self.sent.append(bytes(data))

        def close(self):
            pass
    rfile = io.BufferedReader(io.BytesIO(request))
    handler = server.handler_class(Connection(), ("127.0.0.1", 1), server, rfile=rfile)
    handler.handle()
    return handler


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"hi"]


@pytest.mark.parametrize("log, lines", [
    # gevent formats the line for log=None too, then drops it
    pytest.param(None, 0, marks=pytest.mark.skipif(not UNDER_STOLON, reason="stolon only")),
    (io.StringIO(), 1)])
def test_the_access_line_is_formatted_only_for_a_log(log, lines):
    server = pywsgi.WSGIServer(LOCAL, _hello, log=log, handler_class=_CountingHandler)
    try:
        _CountingHandler.formatted = 0
        _handle_one(server, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert _CountingHandler.formatted == lines
    finally:
        server.close()


class _LinesOnlyHeaders:
    """A MessageClass of the old mimetools kind: ``headers`` is all it has to list."""

    def __init__(self, fp, seekable):
        self.lines = []
        while True:
            line = fp.readline().decode("latin-1")
            if line in ("\r\n", ""):
                break
            self.lines.append(line)
        self.status = ""
        self.headers = self.lines
        self.typeheader = None

    def get(self, name, default=None):
        return default

    getheader = get


def test_environ_from_a_message_class_with_header_lines_only():
    seen = []

    def app(environ, start_response):
        seen.append({key: value for key, value in environ.items() if key.startswith("HTTP_")})
        return _hello(environ, start_response)

    class Handler(pywsgi.WSGIHandler):
        MessageClass = _LinesOnlyHeaders

    server = pywsgi.WSGIServer(LOCAL, app, log=None, handler_class=Handler)
    try:
        _handle_one(server, b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n b\r\n"
                            b"X_Under: dropped\r\nAccept: 1\r\nAccept: 2\r\n\r\n")
    finally:
        server.close()
    assert seen == [{"HTTP_HOST": "h", "HTTP_X_LONG": "a\r\n b", "HTTP_ACCEPT": "1,2"}]


def test_handle_keyword_is_deprecated():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        server = pywsgi.WSGIServer(LOCAL, None, handle=lambda *args: None)
    server.close()
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "Did you mean application?" in str(caught[0].message)


# -- HTTPS ---------------------------------------------------------------------------

def test_https(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))

    def app(environ, start_response):
        start_response("200 OK", [])
        return [environ["wsgi.url_scheme"].encode()]
    server = pywsgi.WSGIServer(LOCAL, app, log=None, certfile=str(certfile), keyfile=str(keyfile))
    try:
        server.start()
        context = stolon.ssl.SSLContext(stolon.ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(str(cafile))
        raw = stolon.socket.create_connection(("127.0.0.1", server.server_port), 2.0)
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            response = read_all(sock)
    finally:
        server.stop()
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"\r\n\r\nhttps")
