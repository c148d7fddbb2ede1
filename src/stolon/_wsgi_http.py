"""HTTP pieces of stolon.pywsgi: dates, the request headers' parser, the canned
error responses and the request parse error."""
import re
import time
from http import client as _http_client
from io import BytesIO

__all__ = ["format_date_time", "headers_factory"]

_WEEKDAYNAME = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHNAME = (None, "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The canned error responses: status, headers and body for the application path...
_INTERNAL_ERROR_BODY = b"Internal Server Error"
_BAD_REQUEST_BODY = ""
_ERRORS = {
    500: ("500 Internal Server Error",
          (("Content-Type", "text/plain"), ("Connection", "close"),
           ("Content-Length", str(len(_INTERNAL_ERROR_BODY)))),
          _INTERNAL_ERROR_BODY),
    400: ("400 Bad Request",
          (("Content-Type", "text/plain"), ("Connection", "close"),
           ("Content-Length", str(len(_BAD_REQUEST_BODY)))),
          _BAD_REQUEST_BODY),
}
# ...and whole responses for requests that never reached it.
_REQUEST_TOO_LONG_RESPONSE = b"HTTP/1.1 414 Request URI Too Long\r\nConnection: close\r\nContent-length: 0\r\n\r\n"
_BAD_REQUEST_RESPONSE = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-length: 0\r\n\r\n"

_NO_BODY_CODES = (304, 204)

# http.client's limits on request headers
_MAX_HEADER_LINE = _http_client._MAXLINE
_MAX_HEADERS = _http_client._MAXHEADERS
_HEADERS_END = (b"\r\n", b"\n", b"")


def format_date_time(timestamp):
    """The HTTP date (RFC 7231 IMF-fixdate, as bytes) for a Unix ``timestamp``."""
    year, month, day, hh, mm, ss, wd, _yd, _dst = time.gmtime(timestamp)
    return ("%s, %02d %3s %4d %02d:%02d:%02d GMT" % (
        _WEEKDAYNAME[wd], day, _MONTHNAME[month], year, hh, mm, ss)).encode("latin-1")


# The Date header changes once a second: format it once a second.
_date_cache = [-1, b""]


def _current_date():
    now = time.time()
    second = int(now)
    if second != _date_cache[0]:
        _date_cache[1] = format_date_time(second)
        _date_cache[0] = second
    return _date_cache[1]


class _InvalidClientRequest(ValueError):
    """A request line or headers that cannot be parsed (a 400).  The one argument is
    the complete message for the error log."""

    def __init__(self, message):
        ValueError.__init__(self, message)
        self.formatted_message = message


class _RequestHeaders(_http_client.HTTPMessage):
    # The request's headers: http.client's message, plus the mimetools.Message names
    # WSGIHandler and the code written for it (gunicorn) use.  ``status`` is '' or
    # the reason the headers could not be read.

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.status = ""

    def getheader(self, name, default=None):
        return self.get(name, default)

    @property
    def headers(self):
        """The header lines, as ``'Name: value\\r\\n'`` strings."""
        for key, value in self._headers:
            yield "%s: %s\r\n" % (key, value)

    @property
    def typeheader(self):
        return self.get("content-type")


# A header line the email parser would read as plain ``name: value`` (a name of
# printable characters but ':', no continuation, no stray CR): such lines are stored
# directly; any other block goes through http.client's full parser.
_SIMPLE_HEADER = re.compile(r"([\041-\071\073-\176]+):([^\r]*)\r?\n\Z")


def headers_factory(fp, *args):
    """Read header lines from ``fp`` up to the empty line, as http.client does (lines
    up to 64 KiB, at most 100 of them); too long a line gives an empty message whose
    ``status`` says so."""
    lines = []
    readline = fp.readline
    while True:
        line = readline(_MAX_HEADER_LINE + 1)
        if len(line) > _MAX_HEADER_LINE:
            message = _RequestHeaders()
            message.status = "Line too long"
            return message
        # counted with the empty line that ends them, as http.client does
        lines.append(line)
        if len(lines) > _MAX_HEADERS:
            raise _http_client.HTTPException("got more than %d headers" % _MAX_HEADERS)
        if line in _HEADERS_END:
            break
    message = _RequestHeaders()
    set_raw = message.set_raw
    match = _SIMPLE_HEADER.match
    for line in lines[:-1]:
        simple = match(line.decode("iso-8859-1"))
        if simple is None:
            # continuations, malformed lines: the email parser's rules, exactly
            return _http_client.parse_headers(BytesIO(b"".join(lines)), _class=_RequestHeaders)
        name, value = simple.groups()
        set_raw(name, value.lstrip(" \t"))
    return message
