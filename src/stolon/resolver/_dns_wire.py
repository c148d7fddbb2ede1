"""stolon.resolver._dns_wire: DNS messages on the wire (RFC 1035 section 4), as much
of them as a stub resolver needs: one question per query, and the answer section of
a reply.

Names are ``bytes`` without the trailing dot (``b'www.example.com'``).  A reply that
breaks the format raises ``FormatError``: the resolver drops it and keeps waiting,
exactly as for a reply it did not ask for.
"""
from _socket import AF_INET, AF_INET6, inet_ntop
from struct import Struct

__all__ = ["FormatError", "Reply", "encode_name", "encode_query", "read_name", "decode_reply",
           "reverse_name",
           "TYPE_A", "TYPE_AAAA", "TYPE_CNAME", "TYPE_PTR",
           "RCODE_NOERROR", "RCODE_NXDOMAIN"]

TYPE_A = 1
TYPE_CNAME = 5
TYPE_PTR = 12
TYPE_AAAA = 28
_CLASS_IN = 1

RCODE_NOERROR = 0
RCODE_NXDOMAIN = 3

_FLAG_QR = 0x8000  # set in replies
_FLAG_TC = 0x0200  # the reply was cut to fit a datagram
_FLAG_RD = 0x0100  # ask the server to recurse for us
_MASK_OPCODE = 0x7800
_MASK_RCODE = 0x000F

_HEADER = Struct("!HHHHHH")
_QUESTION_TAIL = Struct("!HH")
_RR_TAIL = Struct("!HHIH")
_MAX_NAME = 255   # octets of a name on the wire, length bytes included
_MAX_LABEL = 63
_ADDRESS_SIZES = {TYPE_A: 4, TYPE_AAAA: 16}


class FormatError(ValueError):
    """A message that does not follow the wire format."""


class Reply:
    """A decoded reply: its ``id``, ``rcode``, ``truncated`` flag, the question it
    echoes (``qname`` lower-cased, ``qtype``), and ``answers``: ``(owner, rtype,
    value)`` tuples, the owner lower-cased, the value an address string (A, AAAA)
    or a name (CNAME, PTR); records of other types and classes are left out.  A
    truncated reply's answers are not read (the resolver asks again over TCP)."""

    __slots__ = ("id", "rcode", "truncated", "qname", "qtype", "answers")

    def __init__(self, id_, rcode, truncated, qname, qtype, answers):
        self.id = id_
        self.rcode = rcode
        self.truncated = truncated
        self.qname = qname
        self.qtype = qtype
        self.answers = answers


def encode_name(name):
    """``name`` as length-prefixed labels; ValueError if a label is empty or too long,
    or the whole name too long (no server could answer it)."""
    if not name:
        return b"\x00"
    out = bytearray()
    for label in name.split(b"."):
        if not 0 < len(label) <= _MAX_LABEL:
            raise ValueError("bad DNS label in %r" % (name,))
        out.append(len(label))
        out += label
    out.append(0)
    if len(out) > _MAX_NAME:
        raise ValueError("DNS name too long: %r" % (name,))
    return bytes(out)


def encode_query(query_id, name, qtype):
    """A recursive query for ``name``/``qtype`` in class IN (ValueError for a name
    that cannot be encoded)."""
    return (_HEADER.pack(query_id, _FLAG_RD, 1, 0, 0, 0) + encode_name(name)
            + _QUESTION_TAIL.pack(qtype, _CLASS_IN))


def read_name(data, offset):
    """Decode the name at ``offset``: ``(name, offset just past it)``.

    Compression pointers (RFC 1035 4.1.4) must each point before the start of the
    labels read so far, so every jump goes strictly backwards and a loop of pointers
    cannot exist; the name's length is bounded too.  Anything else is a FormatError.
    """
    labels = []
    size = 1
    end = None        # where the name ends in the message: after its first pointer
    floor = offset    # a pointer must jump below every label read so far
    pos = offset
    while True:
        if pos >= len(data):
            raise FormatError("name runs past the message")
        length = data[pos]
        if length == 0:
            break
        if length >= 0xC0:
            if pos + 1 >= len(data):
                raise FormatError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= floor:
                raise FormatError("compression pointer does not point backwards")
            if end is None:
                end = pos + 2
            pos = floor = target
            continue
        if length > _MAX_LABEL:
            raise FormatError("reserved label type")
        size += length + 1
        if size > _MAX_NAME or pos + 1 + length > len(data):
            raise FormatError("name too long or past the message")
        labels.append(data[pos + 1:pos + 1 + length])
        pos += 1 + length
    return b".".join(labels), (pos + 1 if end is None else end)


def _read_rdata(data, rtype, start, rdlength):
    # the value of one record of a type the resolver uses
    if rtype in _ADDRESS_SIZES:
        if rdlength != _ADDRESS_SIZES[rtype]:
            raise FormatError("address of the wrong size")
        return inet_ntop(AF_INET if rtype == TYPE_A else AF_INET6, data[start:start + rdlength])
    name, end = read_name(data, start)
    if end > start + rdlength:
        raise FormatError("name runs past its record")
    return name


def _read_answers(data, pos, count):
    answers = []
    for _ in range(count):
        owner, pos = read_name(data, pos)
        if pos + _RR_TAIL.size > len(data):
            raise FormatError("record header past the message")
        rtype, rclass, _ttl, rdlength = _RR_TAIL.unpack_from(data, pos)
        pos += _RR_TAIL.size
        if pos + rdlength > len(data):
            raise FormatError("record data past the message")
        if rclass == _CLASS_IN and (rtype in _ADDRESS_SIZES or rtype in (TYPE_CNAME, TYPE_PTR)):
            answers.append((owner.lower(), rtype, _read_rdata(data, rtype, pos, rdlength)))
        pos += rdlength
    return answers


def decode_reply(data):
    """The ``Reply`` in ``data``; FormatError if ``data`` is not a well-formed
    reply to a standard query with one question."""
    if len(data) < _HEADER.size:
        raise FormatError("shorter than a header")
    id_, flags, qdcount, ancount, _nscount, _arcount = _HEADER.unpack_from(data)
    if not flags & _FLAG_QR or flags & _MASK_OPCODE or qdcount != 1:
        raise FormatError("not a reply to a standard query")
    qname, pos = read_name(data, _HEADER.size)
    if pos + _QUESTION_TAIL.size > len(data):
        raise FormatError("question past the message")
    qtype, qclass = _QUESTION_TAIL.unpack_from(data, pos)
    if qclass != _CLASS_IN:
        raise FormatError("question of another class")
    truncated = bool(flags & _FLAG_TC)
    answers = () if truncated else _read_answers(data, pos + _QUESTION_TAIL.size, ancount)
    return Reply(id_, flags & _MASK_RCODE, truncated, qname.lower(), qtype, answers)


def reverse_name(packed):
    """The PTR name of a packed IPv4 or IPv6 address (``in-addr.arpa``/``ip6.arpa``)."""
    if len(packed) == 4:
        return b".".join(b"%d" % octet for octet in reversed(packed)) + b".in-addr.arpa"
    nibbles = packed.hex()[::-1]
    return ".".join(nibbles).encode("ascii") + b".ip6.arpa"
