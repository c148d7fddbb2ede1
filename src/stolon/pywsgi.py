"""stolon.pywsgi: a cooperative WSGI (PEP 3333) server speaking HTTP/1.0 and 1.1
(gevent.pywsgi's API).

``WSGIServer`` is a StreamServer whose ``handle`` makes one ``handler_class``
(``WSGIHandler``) per connection.  The handler reads requests one after the other
(keep-alive, pipelining: the socket's buffered reader keeps what the client sent
ahead), builds each one's environ, runs the application and writes its response:
with the application's Content-Length, a computed one when the result has a length,
or chunked (HTTP/1.1) otherwise.  Requests that cannot be parsed get a 400 (a request
line of ``MAX_REQUEST_LINE`` characters or more a 414) and the connection is closed;
errors in the application are reported to the hub and answered with a 500 when no
part of the response was sent yet.

Meant for development and trusted networks: for the Internet, put it behind a
reverse proxy or use a production server (gunicorn can run on it).
"""
import errno
import sys
import time
import traceback
from _socket import socket as _RawSocket
from datetime import datetime
from functools import partial
from io import BytesIO
from urllib.parse import unquote

import stolon
from stolon import socket
from stolon._greenlet import GreenletExit
from stolon._wsgi_environ import (Environ, LoggingLogAdapter, SecureEnviron, WSGISecureEnviron,
                                  _make_log, _NoopLog)
from stolon._wsgi_http import (_BAD_REQUEST_RESPONSE, _ERRORS, _NO_BODY_CODES, _REQUEST_TOO_LONG_RESPONSE,
                               _InvalidClientRequest, _RequestHeaders, _current_date, headers_factory)
from stolon._wsgi_http import format_date_time  # noqa: F401 -- gevent.pywsgi has this name
from stolon._wsgi_input import MAX_REQUEST_LINE, Input, _InvalidClientInput
from stolon.server import StreamServer

__all__ = ["WSGIServer", "WSGIHandler", "LoggingLogAdapter", "Environ", "SecureEnviron",
           "WSGISecureEnviron"]

# PATH_INFO is the percent-decoded path as latin-1 text (PEP 3333's "bytes in str")
unquote_latin1 = partial(unquote, encoding="latin-1")

# A connection's unread bytes are taken (without waiting) before it is closed: closing
# with data in the receive buffer sends a reset, which can destroy the response.
_DRAIN_SIZE = 16384
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_raw_recv = _RawSocket.recv

# Versions checked by name before they are parsed: nearly every request has one.
_COMMON_VERSIONS = frozenset(("HTTP/1.1", "HTTP/1.0"))
# Headers that are CGI variables of their own rather than HTTP_ ones.
_ENVIRON_KEYS = frozenset(("CONTENT_TYPE", "CONTENT_LENGTH"))


def _header_line_pairs(lines):
    """``(name, value)`` pairs from ``'Name: value'`` header lines; a line that starts
    with a space or tab continues the value before it."""
    name = value = None
    for line in lines:
        if name is not None and line[:1] in " \t":
            value += line
            continue
        if name is not None:
            yield name, value
        name, value = line.split(":", 1)
    if name is not None:
        yield name, value


class WSGIHandler:
    """Serves the requests of one connection: made by the server with
    ``(socket, address, server)``, then ``handle()`` runs until the connection is
    done.  The application and base environ come from the server.

    Subclass it with care (and give it to the server as ``handler_class``): the
    overridable steps are ``read_requestline``, ``read_request``, ``get_environ``,
    ``handle_one_request``, ``handle_one_response``, ``run_application``,
    ``start_response``/``write``, ``handle_error``, ``log_request`` and
    ``format_request``.
    """

    protocol_version = "HTTP/1.1"

    def MessageClass(self, *args):
        """Parse the request headers from a file (``headers_factory``)."""
        return headers_factory(*args)

    # Per-request state: class attributes give the defaults without constructor work.
    status = None                   # bytes, b'200 OK'
    _orig_status = None             # the str the application gave, for the log
    response_headers = None         # [(b'name', b'value')]
    code = None                     # the int status code
    provided_date = None
    provided_content_length = None
    close_connection = False
    time_start = 0                  # time.time() when the request started
    time_finish = 0                 # ... and when its response was done
    headers_sent = False
    response_use_chunked = False
    response_has_body = True        # False for HEAD: the body is not sent
    connection_upgraded = False     # a 101: the bytes after it are not ours to chunk
    environ = None
    application = None
    requestline = None              # str, 'GET / HTTP/1.1'
    response_length = 0             # bytes sent for the response
    result = None                   # what the application returned
    wsgi_input = None               # the Input of the request
    content_length = 0              # the request's Content-Length (None if absent)
    headers = headers_factory(BytesIO())    # the request headers (gunicorn reads it early)
    request_version = None          # str, 'HTTP/1.1'
    command = None                  # str, 'GET'
    path = None                     # str, '/a%20b?q=1'

    #: An application that breaks the protocol (no start_response, a body for a 204).
    ApplicationError = AssertionError

    #: Socket errors that mean the client went away: not logged, the connection is
    #: closed (provisional API).
    ignored_socket_errors = (errno.EPIPE, errno.ECONNRESET)
    if hasattr(errno, "WSAECONNABORTED"):
        ignored_socket_errors += (errno.WSAECONNABORTED,)

    _print_unexpected_exc = staticmethod(traceback.print_exc)

    def __init__(self, sock, address, server, rfile=None):
        self.socket = sock
        self.client_address = address
        self.server = server
        self.rfile = sock.makefile("rb", -1) if rfile is None else rfile

    # -- the connection -----------------------------------------------------------------

    def handle(self):
        """Serve requests on the connection until it is to be closed (the client's or
        the application's choice, an error, or ``self.socket`` set to None by code that
        takes the connection over), then close it."""
        try:
            while self.socket is not None:
                self.time_start = time.time()
                self.time_finish = 0
                result = self.handle_one_request()
                if result is None:
                    break
                if result is True:
                    continue
                # a request refused before the application: (status, whole response)
                self.status, response = result
                self.socket.sendall(response)
                if self.time_finish == 0:
                    self.time_finish = time.time()
                self.log_request()
                break
        finally:
            self._close()

    def _close(self):
        sock = self.socket
        if sock is not None:
            try:
                if isinstance(sock, _RawSocket):
                    try:
                        _raw_recv(sock, _DRAIN_SIZE, _MSG_DONTWAIT)
                    except OSError:
                        pass
                rfile = self.__dict__.get("rfile")
                if rfile is not None:
                    # the reader holds a reference that would keep the descriptor open
                    rfile.close()
                sock.close()
            except OSError:
                pass
        for name in ("socket", "rfile", "wsgi_input"):
            self.__dict__.pop(name, None)

    def handle_one_request(self):
        """Read one request and answer it.  Returns True to go on with the next
        request, None when the connection is to be closed, or ``(status, response)``:
        a complete response to send before closing (the request was refused)."""
        if self.rfile.closed:
            return None
        try:
            self.requestline = self.read_requestline()
            if isinstance(self.requestline, bytes):
                # subclasses written for Python 2
                self.requestline = self.requestline.decode("latin-1")
        except OSError:
            # the client reset the connection: nothing to answer
            return None
        if not self.requestline:
            return None
        self.response_length = 0
        if len(self.requestline) >= MAX_REQUEST_LINE:
            return ("414", _REQUEST_TOO_LONG_RESPONSE)
        try:
            # read_request may replace self.headers, which get_environ reads
            if not self.read_request(self.requestline):
                return ("400", _BAD_REQUEST_RESPONSE)
        except Exception as ex:  # noqa: BLE001 -- the client's fault: a 400, not a 500
            return self._handle_client_error(ex)
        self.environ = self.get_environ()
        self.application = self.server.application
        self.handle_one_response()
        if self.close_connection or self.rfile.closed:
            return None
        return True

    # -- reading the request --------------------------------------------------------------

    def read_requestline(self):
        """The request line as a str (latin-1), at most ``MAX_REQUEST_LINE`` long."""
        return self.rfile.readline(MAX_REQUEST_LINE).decode("latin-1")

    def _check_http_version(self):
        version = self.request_version
        if version in _COMMON_VERSIONS:
            return True
        if not version.startswith("HTTP/"):
            return False
        try:
            numbers = tuple(int(part) for part in version[5:].split("."))
        except ValueError:
            return False
        return len(numbers) >= 2 and numbers[1] >= 0 and (0, 9) <= numbers < (2, 0)

    def read_request(self, raw_requestline):
        """Parse the request line (a str) and read the headers: sets ``requestline``,
        ``command``, ``path``, ``request_version``, ``headers``, ``content_length`` and
        ``close_connection``.  Returns True, or raises ValueError for a request that
        cannot be parsed (a 400, logged without a traceback)."""
        self.requestline = raw_requestline.rstrip()
        words = self.requestline.split()
        if len(words) == 3:
            self.command, self.path, self.request_version = words
            if not self._check_http_version():
                raise _InvalidClientRequest("Invalid http version: %r" % (raw_requestline,))
        elif len(words) == 2:
            # HTTP/0.9: a bare GET
            self.command, self.path = words
            if self.command != "GET":
                raise _InvalidClientRequest("Expected GET method; Got command=%r; path=%r; raw=%r" % (
                    self.command, self.path, raw_requestline))
            self.request_version = "HTTP/0.9"
        else:
            raise _InvalidClientRequest("Invalid HTTP method: %r" % (raw_requestline,))

        headers = self.headers = self.MessageClass(self.rfile, 0)
        if headers.status:
            raise _InvalidClientRequest("Invalid headers status: %r" % (headers.status,))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            # chunked wins over a Content-Length (RFC 7230 3.3.3)
            del headers["content-length"]
        content_length = headers.get("content-length")
        if content_length is not None:
            content_length = int(content_length)
            if content_length < 0:
                raise _InvalidClientRequest("Invalid Content-Length: %r" % (content_length,))
            if content_length and self.command == "HEAD":
                raise _InvalidClientRequest("Unexpected Content-Length")
        self.content_length = content_length

        version = self.request_version
        if version == "HTTP/1.1":
            self.close_connection = headers.get("Connection", "").lower() == "close"
        elif version == "HTTP/1.0":
            self.close_connection = headers.get("Connection", "close").lower() != "keep-alive"
        else:
            self.close_connection = True
        return True

    def _connection_upgrade_requested(self):
        headers = self.headers
        return (headers.get("Connection", "").lower() == "upgrade"
                or headers.get("Upgrade", "").lower() == "websocket")

    def _headers(self):
        # ('HTTP_NAME', value) for each request header but Content-Type/-Length; names
        # with '_' are dropped (they would be confused with '-' once converted).
        headers = self.headers
        if isinstance(headers, _RequestHeaders):
            # the parsed pairs, rather than lines formatted only to be split again
            pairs = headers.raw_items()
        else:
            # a MessageClass of the mimetools kind: only its lines are known
            pairs = _header_line_pairs(headers.headers)
        for name, value in pairs:
            if "_" not in name:
                key = name.replace("-", "_").upper()
                if key not in _ENVIRON_KEYS:
                    yield "HTTP_" + key, value.strip()

    def get_environ(self):
        """A new environ for the request: the server's ``get_environ()`` plus the
        request's CGI variables, ``HTTP_*`` headers and ``wsgi.input``."""
        env = self.server.get_environ()
        env["REQUEST_METHOD"] = self.command
        # the application is the whole server: its root is the empty script name
        env["SCRIPT_NAME"] = ""
        path, _, query = self.path.partition("?")
        env["PATH_INFO"] = unquote_latin1(path)
        env["QUERY_STRING"] = query

        headers = self.headers
        content_type = headers.typeheader
        if content_type is not None:
            env["CONTENT_TYPE"] = content_type
        length = headers.getheader("content-length")
        if length:
            env["CONTENT_LENGTH"] = length
        env["SERVER_PROTOCOL"] = self.request_version

        client_address = self.client_address
        if isinstance(client_address, tuple):
            env["REMOTE_ADDR"] = str(client_address[0])
            env["REMOTE_PORT"] = str(client_address[1])

        for key, value in self._headers():
            if key in env:
                # repeated headers are one comma-separated list (cookies: '; ')
                env[key] += ("; " if "COOKIE" in key else ",") + value
            else:
                env[key] = value

        expecting = self.socket if env.get("HTTP_EXPECT") == "100-continue" else None
        chunked = env.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        self.wsgi_input = Input(self.rfile, self.content_length, socket=expecting, chunked_input=chunked)
        # an upgraded connection (websockets) has neither length nor chunks: the
        # application reads the raw stream, which does not end with the request
        handling_reads = not self._connection_upgrade_requested()
        env["wsgi.input"] = self.wsgi_input if handling_reads else self.rfile
        env["wsgi.input_terminated"] = handling_reads
        return env

    # -- the response -------------------------------------------------------------------

    def start_response(self, status, headers, exc_info=None):
        """PEP 3333's ``start_response``: check and keep the status and headers (str,
        latin-1, no CR or LF: UnicodeError or ValueError otherwise) and return
        ``write``.  With ``exc_info`` after the headers were sent, raise that error."""
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None

        # checked now, while the application that made them is still running
        response_headers = []
        header = value = None
        try:
            for header, value in headers:
                if not isinstance(header, str):
                    raise UnicodeError("The header must be a native string", header, value)
                if not isinstance(value, str):
                    raise UnicodeError("The value must be a native string", header, value)
                if "\r" in header or "\n" in header:
                    raise ValueError("carriage return or newline in header name", header)
                if "\r" in value or "\n" in value:
                    raise ValueError("carriage return or newline in header value", value)
                response_headers.append((header.encode("latin-1"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise UnicodeError("Non-latin1 header", repr(header), repr(value))
        if not isinstance(status, str):
            raise UnicodeError("The status string must be a native string")
        if "\r" in status or "\n" in status:
            raise ValueError("carriage return or newline in status", status)
        code = int(status.split(" ", 1)[0])

        self.status = status.encode("latin-1")
        self._orig_status = status
        self.response_headers = response_headers
        self.code = code

        provided_connection = None
        self.provided_date = None
        self.provided_content_length = None
        for header, value in headers:
            header = header.lower()
            if header == "connection":
                provided_connection = value
            elif header == "date":
                self.provided_date = value
            elif header == "content-length":
                self.provided_content_length = value

        if self.request_version == "HTTP/1.0" and provided_connection is None:
            response_headers.append((b"Connection", b"close" if self.close_connection else b"keep-alive"))
        elif provided_connection == "close":
            self.close_connection = True

        if code in _NO_BODY_CODES and self.provided_content_length not in (None, "0"):
            raise self.ApplicationError(
                ("Invalid Content-Length for %s response: %r (must be absent or zero)" % (
                    code, self.provided_content_length)).encode("latin-1"))
        return self.write

    def finalize_headers(self):
        """Add what the application left out: Date, and Content-Length (when the
        result has a length) or chunked encoding (HTTP/1.1) for a response with a body."""
        if self.provided_date is None:
            self.response_headers.append((b"Date", _current_date()))
        self.connection_upgraded = self.code == 101
        if self.code not in _NO_BODY_CODES and self.provided_content_length is None:
            if hasattr(self.result, "__len__"):
                total = sum(len(chunk) for chunk in self.result)
                self.response_headers.append((b"Content-Length", str(total).encode("latin-1")))
            else:
                self.response_use_chunked = (not self.connection_upgraded
                                             and self.request_version != "HTTP/1.0")
                if self.response_use_chunked:
                    self.response_headers.append((b"Transfer-Encoding", b"chunked"))

    def _sendall(self, data):
        try:
            self.socket.sendall(data)
        except OSError as ex:
            # the access log shows the failure (a negative code: not all was sent)
            self.status = "socket error: %s" % ex
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += len(data)

    def _write(self, data):
        if not data or not self.response_has_body:
            # empty pieces are allowed (PEP 3333) and would end a chunked body
            return
        if self.response_use_chunked:
            self._sendall(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self._sendall(data)

    def write(self, data):
        """PEP 3333's ``write`` callable: send ``data`` as part of the body (the
        headers go first, with the first call)."""
        if self.code in _NO_BODY_CODES and data:
            raise self.ApplicationError("The %s response must have no body" % self.code)
        if self.headers_sent:
            self._write(data)
        else:
            if not self.status:
                raise self.ApplicationError("The application did not call start_response()")
            self._write_with_headers(data)

    def _write_with_headers(self, data):
        self.headers_sent = True
        self.finalize_headers()
        if self.command == "HEAD":
            # the headers a GET would have, and no body (stolon: gevent sends it)
            self.response_use_chunked = False
            self.response_has_body = False
        head = bytearray(b"HTTP/1.1 ")
        head += self.status
        head += b"\r\n"
        for header, value in self.response_headers:
            head += header
            head += b": "
            head += value
            head += b"\r\n"
        head += b"\r\n"
        if data and not self.response_use_chunked and self.response_has_body and len(data) <= 65536:
            # a small body goes out with the headers: one send instead of two
            head += data
            self._sendall(head)
        else:
            self._sendall(head)
            self._write(data)

    def process_result(self):
        """Send the application's result, then end the response (headers even for an
        empty body; the last chunk of a chunked one)."""
        write = self.write
        for data in self.result:
            if data:
                write(data)
        if self.status and not self.headers_sent:
            # an empty result, and write() never called: the headers are still due
            write(b"")
        if self.response_use_chunked:
            self._sendall(b"0\r\n\r\n")

    def run_application(self):
        """Call the application and send its result; close the result (PEP 3333)."""
        assert self.result is None
        try:
            self.result = self.application(self.environ, self.start_response)
            self.process_result()
        finally:
            close = getattr(self.result, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                # a generator's frame and what it holds go now, not with the handler
                close = None
                self.result = None

    def handle_one_response(self):
        """Run the application for the request already read, read what it left of the
        body, and log the request.  Errors are handled here: bad client input is a
        400, a vanished client closes the connection, anything else ``handle_error``."""
        self.time_start = time.time()
        self.status = None
        self.headers_sent = False
        self.result = None
        self.response_use_chunked = False
        self.response_has_body = True
        self.connection_upgraded = False
        self.response_length = 0
        try:
            try:
                self.run_application()
            finally:
                try:
                    self.wsgi_input._discard()
                except _InvalidClientInput:
                    # the stream is lost: the outer handler answers 400 and closes
                    raise
                except OSError:
                    # not worth more than the application's own error, if any
                    pass
        except _InvalidClientInput as ex:
            # logged: the application may have acted on part of a bad body
            self._handle_client_error(ex)
            self.close_connection = True
            self._send_error_response_if_possible(400)
        except OSError as ex:
            if ex.args[0] in self.ignored_socket_errors:
                self.close_connection = True
            else:
                self.handle_error(*sys.exc_info())
        except:  # noqa: E722 -- anything the application raises is a 500
            self.handle_error(*sys.exc_info())
        finally:
            self.time_finish = time.time()
            self.log_request()

    def _send_error_response_if_possible(self, error_code):
        if self.response_length:
            # part of a response is out: nothing sane can follow it
            self.close_connection = True
            return
        status, headers, body = _ERRORS[error_code]
        try:
            self.start_response(status, list(headers))
            self.write(body)
        except OSError:
            self.close_connection = True

    # -- errors and logs -----------------------------------------------------------------

    def _log_error(self, t, v, tb):
        if not issubclass(t, GreenletExit):
            context = self.environ
            if not isinstance(context, self.server.secure_environ_class):
                # the report must not show cookies or credentials
                context = self.server.secure_environ_class(context)
            self.server.loop.handle_error(context, t, v, tb)

    def handle_error(self, t, v, tb):
        """An unexpected error (not the client's): report it to the hub and answer
        500 if nothing was sent yet."""
        self._log_error(t, v, tb)
        t = v = tb = None
        self._send_error_response_if_possible(500)

    def _handle_client_error(self, ex):
        # A request that cannot be parsed: log a line (a traceback only for errors
        # that are not the expected parse errors) and return the 400 to send.
        if not isinstance(ex, (ValueError, _InvalidClientInput)):
            traceback.print_exc()
        if isinstance(ex, _InvalidClientRequest):
            # already formatted, and may contain '%' from the client
            self.log_error("(from %s) %s", self.client_address, ex.formatted_message)
        else:
            self.log_error("Invalid request (from %s): %s", self.client_address,
                           str(ex) or ex.__class__.__name__)
        return ("400", _BAD_REQUEST_RESPONSE)

    def log_error(self, msg, *args):
        """Write ``msg % args`` (``msg`` alone without args), prefixed with the
        socket, to the server's ``error_log``."""
        if not args:
            message = msg
        else:
            try:
                message = msg % args
            except Exception:  # noqa: BLE001 -- a log line must not fail the request
                self._print_unexpected_exc()
                message = "%r %r" % (msg, args)
        try:
            message = "%s: %s" % (self.socket, message)
        except Exception:  # noqa: BLE001 -- as above
            pass
        try:
            self.server.error_log.write(message + "\n")
        except Exception:  # noqa: BLE001 -- as above
            self._print_unexpected_exc()

    def log_request(self):
        """Write ``format_request()`` to the server's access ``log``."""
        log = self.server.log
        if type(log) is not _NoopLog:
            # (log=None: no line is formatted just to be dropped)
            log.write(self.format_request() + "\n")

    def format_request(self):
        """The access log line: ``client - - [date time] "request line" status
        length duration``."""
        now = datetime.now().replace(microsecond=0)
        length = self.response_length or "-"
        delta = "%.6f" % (self.time_finish - self.time_start) if self.time_finish else "-"
        client_address = self.client_address
        if isinstance(client_address, tuple):
            client_address = client_address[0]
        return '%s - - [%s] "%s" %s %s %s' % (
            client_address or "-",
            now,
            self.requestline or "",
            (self._orig_status or self.status or "000").split()[0],
            length,
            delta)


class WSGIServer(StreamServer):
    """A WSGI server: ``WSGIServer(listener, application=None, backlog=None,
    spawn='default', log='default', error_log='default', handler_class=None,
    environ=None, **ssl_args)``.

    ``listener``, ``backlog``, ``spawn`` and ``ssl_args`` are StreamServer's (SSL makes
    ``wsgi.url_scheme`` 'https').  ``log`` gets the access log lines and ``error_log``
    the errors (it is also ``wsgi.errors``): a file-like object, ``'default'`` for
    ``sys.stderr``, None for nothing, or a ``logging.Logger`` (wrapped in a
    LoggingLogAdapter at INFO and ERROR).  ``handler_class`` replaces WSGIHandler;
    ``environ`` is added to ``base_env`` for every request.
    """

    #: Called as ``handler_class(socket, address, server)`` for each connection; its
    #: ``handle()`` serves the connection and returns when it is done.
    handler_class = WSGIHandler
    #: Where access log lines go (never None; set from ``log``).
    log = None
    #: Where errors go (never None; set from ``error_log``).
    error_log = None
    #: The class of the environs given to handlers: a dict, as PEP 3333 requires
    #: (WSGISecureEnviron, say, hides them from logs).
    environ_class = dict
    #: The class errors are reported with (hiding the request's secrets).
    secure_environ_class = WSGISecureEnviron

    base_env = {"GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_SOFTWARE": "stolon/%d.%d Python/%d.%d" % (stolon.version_info[:2] + sys.version_info[:2]),
                "SCRIPT_NAME": "",
                "wsgi.version": (1, 0),
                "wsgi.multithread": False,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False}

    def __init__(self, listener, application=None, backlog=None, spawn="default", log="default",
                 error_log="default", handler_class=None, environ=None, **ssl_args):
        if "handle" in ssl_args:
            # it would replace our handle() (BaseServer's handle is our application)
            import warnings
            warnings.warn("Passing 'handle' kwarg to WSGIServer is deprecated. Did you mean application?",
                          DeprecationWarning, stacklevel=2)
        StreamServer.__init__(self, listener, backlog=backlog, spawn=spawn, **ssl_args)
        if application is not None:
            self.application = application
        if handler_class is not None:
            self.handler_class = handler_class
        # made here, not as class attributes: sys.stderr may be replaced after import
        self.log = _make_log(log, 20)               # logging.INFO
        self.error_log = _make_log(error_log, 40)   # logging.ERROR
        self.set_environ(environ)
        self.set_max_accept()

    def set_environ(self, environ=None):
        """Rebuild ``environ`` from ``base_env``, the URL scheme, ``environ`` (or the
        one given before) and ``wsgi.errors``."""
        if environ is not None:
            self.environ = environ
        update = getattr(self, "environ", None)
        self.environ = self.environ_class(self.base_env)
        self.environ["wsgi.url_scheme"] = "https" if self.ssl_enabled else "http"
        if update is not None:
            self.environ.update(update)
        if self.environ.get("wsgi.errors") is None:
            self.environ["wsgi.errors"] = self.error_log

    def set_max_accept(self):
        """Accept one connection at a time when several processes share the listener
        (``wsgi.multiprocess``), to spread connections among them."""
        if self.environ.get("wsgi.multiprocess"):
            self.max_accept = 1

    def get_environ(self):
        """A copy of the server's environ: the start of each request's."""
        return self.environ_class(self.environ)

    def init_socket(self):
        StreamServer.init_socket(self)
        self.update_environ()

    def update_environ(self):
        """Fill in ``SERVER_NAME`` and ``SERVER_PORT`` from the bound address (called
        when the server starts, unless they were given)."""
        address = self.address
        if isinstance(address, tuple):
            if "SERVER_NAME" not in self.environ:
                try:
                    name = socket.getfqdn(address[0])
                except OSError:
                    name = str(address[0])
                self.environ["SERVER_NAME"] = name
            self.environ.setdefault("SERVER_PORT", str(address[1]))
        else:
            self.environ.setdefault("SERVER_NAME", "")
            self.environ.setdefault("SERVER_PORT", "")

    def handle(self, sock, address):
        """Serve the connection with a new ``handler_class``; returns when it is done."""
        handler = self.handler_class(sock, address, self)
        handler.handle()
