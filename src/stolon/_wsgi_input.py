"""The request body reader of stolon.pywsgi (``wsgi.input``).

``Input`` reads at most ``Content-Length`` bytes, or decodes ``Transfer-Encoding:
chunked`` (RFC 7230 section 4.1: chunk sizes, extensions and trailers are checked and
skipped; trailers are not given to the application).  The first read answers an
``Expect: 100-continue`` request with ``100 Continue``.  What cannot be parsed raises
``_InvalidClientInput``, which the handler turns into a 400 and a closed connection,
because the stream can no longer be trusted to be at a request boundary.
"""
import string
import sys

__all__ = ["Input", "MAX_REQUEST_LINE"]

#: The longest request line, header line, chunk extension or trailer line accepted.
MAX_REQUEST_LINE = 8192

_CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"

# A chunk size is at most 16 hex digits (64 bits): more is a hostile client.
_MAX_CHUNK_SIZE_DIGITS = 16
# The longest chunk-size line read: digits, ';', extensions, CRLF.
_CHUNK_SIZE_LINE_LIMIT = _MAX_CHUNK_SIZE_DIGITS + 1 + MAX_REQUEST_LINE + 2
_HEX_DIGITS = frozenset(string.hexdigits.encode("ascii"))
# RFC 7230 "tchar": what a trailer's field name may be made of.
_TOKEN_CHARS = frozenset(("!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters).encode("ascii"))

# How much of the body ``_discard`` reads per call.
_DISCARD_SIZE = 16384


class _InvalidClientInput(IOError):
    """The client sent a body that cannot be parsed (the result is a 400)."""


class Input:
    """``wsgi.input``: a file-like reader of one request's body.

    ``rfile`` is the connection's buffered reader, ``content_length`` the request's
    Content-Length (None if absent), ``socket`` the connection when the client expects
    ``100 Continue`` (else None), ``chunked_input`` true for a chunked body.
    """

    __slots__ = ("rfile", "content_length", "socket", "position", "chunked_input",
                 "chunk_length", "_chunked_input_error", "send_100_continue_enabled")

    def __init__(self, rfile, content_length, socket=None, chunked_input=False):
        self.rfile = rfile
        self.content_length = content_length
        self.socket = socket
        self.position = 0
        self.chunked_input = chunked_input
        # -1: before the first chunk; 0: after the last one
        self.chunk_length = -1
        self._chunked_input_error = False
        self.send_100_continue_enabled = True

    # -- the file API ---------------------------------------------------------------

    def read(self, length=None):
        """Up to ``length`` bytes of the body (all that is left if None or negative)."""
        if length is not None and length < 0:
            length = None
        if self.chunked_input:
            return self._chunked_read(length)
        return self._do_read(length)

    def readline(self, size=None):
        """One line of the body, at most ``size`` bytes long."""
        if size is not None and size < 0:
            size = None
        if self.chunked_input:
            return self._chunked_read(size, True)
        return self._do_read(size, use_readline=True)

    def readlines(self, hint=None):
        """All the lines left (``hint`` is ignored, as PEP 3333 allows)."""
        return list(self)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    next = __next__

    # -- the body after the application -----------------------------------------------

    def _discard(self):
        # Read what the application left of the body, so the next request on the
        # connection starts where it should.  Not after a parse error: the stream's
        # position is unknown and the connection is being closed anyway.
        if self._chunked_input_error:
            return
        if self.chunked_input or self.position < (self.content_length or 0):
            # the client asked whether to send the body; nobody wants it
            self.send_100_continue_enabled = False
            read = self.read
            while read(_DISCARD_SIZE):
                pass
            self.send_100_continue_enabled = True

    def _send_100_continue(self):
        if self.send_100_continue_enabled and self.socket is not None:
            self.socket.sendall(_CONTINUE_RESPONSE)
            self.socket = None

    # -- Content-Length bodies --------------------------------------------------------

    def _do_read(self, length=None, use_readline=False):
        content_length = self.content_length
        if content_length is None:
            # neither Content-Length nor chunked: the request has no body
            return b""
        self._send_100_continue()
        left = content_length - self.position
        if length is None or length > left:
            length = left
        if not length:
            return b""
        if use_readline:
            # BufferedReader.readline takes a C ssize_t
            data = self.rfile.readline(min(length, sys.maxsize))
        else:
            data = self.rfile.read(length)
        self.position += len(data)
        if len(data) < length and not (use_readline and data.endswith(b"\n")):
            raise IOError("unexpected end of file while reading request at position %s" % (self.position,))
        return data

    # -- chunked bodies ---------------------------------------------------------------

    def _chunked_read(self, length=None, use_readline=False):
        self._send_100_continue()
        if length == 0:
            return b""
        rfile = self.rfile
        reader = rfile.readline if use_readline else rfile.read
        pieces = []
        while self.chunk_length != 0:
            wanted = self.chunk_length - self.position
            if length is not None and length < wanted:
                wanted = length
            if wanted <= 0:
                # at a chunk boundary: the next size line (and trailers after the last)
                self.chunk_length = self._read_chunk_length(rfile)
                self.position = 0
                continue
            data = reader(wanted)
            if not data:
                self.chunk_length = 0
                self._chunked_input_error = True
                raise IOError("unexpected end of file while parsing chunked data")
            pieces.append(data)
            self.position += len(data)
            if self.position == self.chunk_length:
                self._read_crlf(rfile)
            if length is not None:
                length -= len(data)
                if length == 0:
                    break
            if use_readline and data[-1] == 10:     # b"\n"
                break
        return b"".join(pieces)

    def _fail(self, *args):
        self._chunked_input_error = True
        raise _InvalidClientInput(*args)

    def _read_crlf(self, rfile):
        ending = rfile.read(2)
        if ending != b"\r\n":
            self._fail("Line didn't end in CRLF: %r" % (ending,))

    def _read_chunk_length(self, rfile):
        # chunk-size [ ";" chunk-ext ] CRLF: the size is 1 to 16 hex digits, the
        # extensions (ignored) shorter than MAX_REQUEST_LINE
        line = rfile.readline(_CHUNK_SIZE_LINE_LIMIT)
        if not line.endswith(b"\r\n"):
            if line.endswith(b"\n"):
                self._fail("Line didn't end in CRLF: %r" % (line,))
            if len(line) < _CHUNK_SIZE_LINE_LIMIT:
                self._fail("EOF before chunk end reached")
            self._fail("Chunk-size too large." if b";" not in line else "Too large chunk extension")
        size, _, extension = line[:-2].partition(b";")
        if not size or not _HEX_DIGITS.issuperset(size) or len(size) > _MAX_CHUNK_SIZE_DIGITS:
            self._refuse_chunk_size(size)
        if len(extension) >= MAX_REQUEST_LINE:
            self._fail("Too large chunk extension")
        result = int(size, 16)
        if result == 0:
            # the last chunk: trailers (checked, then dropped) up to an empty line
            while self._read_trailer(rfile):
                pass
        return result

    def _refuse_chunk_size(self, size):
        # The error for the first byte that makes ``size`` wrong, as a reader going
        # byte by byte would see it: a byte that is not a hex digit, or one digit too many.
        bad = next((i for i, byte in enumerate(size) if byte not in _HEX_DIGITS), len(size))
        if bad > _MAX_CHUNK_SIZE_DIGITS:
            self._fail("Chunk-size too large.")
        self._fail("Non-hex data", size[bad:bad + 1])

    def _read_trailer(self, rfile):
        # One trailer line; False for the empty line that ends the body.
        # (shorter than MAX_REQUEST_LINE, like an extension)
        line = rfile.readline(MAX_REQUEST_LINE + 1)
        if line == b"\r\n":
            return False
        if not line.endswith(b"\r\n"):
            if line.endswith(b"\n"):
                self._fail("Line didn't end in CRLF: %r" % (line,))
            if len(line) < MAX_REQUEST_LINE + 1:
                self._fail("EOF before chunk end reached")
            self._fail("Too large chunk trailer")
        name = line[:-2]
        # a ':' ends the field name unless it comes first
        colon = name.find(b":", 1)
        if colon > 0:
            name = name[:colon]
        if not _TOKEN_CHARS.issuperset(name):
            bad = next(c for c in name if c not in _TOKEN_CHARS)
            self._fail("Invalid token character: %r" % (bytes((bad,)),))
        return True
