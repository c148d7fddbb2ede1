"""stolon.resolver.dns: the cooperative stub resolver, against a fake DNS server.

The fake server runs in greenlets of the test's own hub, on 127.0.0.1 (UDP and TCP on
one ephemeral port), answering from a table; per name it can be told to misbehave.
Its replies are built here with struct, independently of the resolver's encoder.
Result shapes are compared with ``_socket``'s for the same numeric inputs.

gevent has no pure-Python DNS resolver of this shape (its 'ares' needs c-ares, its
'dnspython' needs dnspython and takes no nameserver list), so these tests are not
cross-checked against gevent.
"""
import gc
import os
import socket
import struct
import time
import warnings

import _socket
import pytest

import stolon
from stolon.pool import Group
from stolon.resolver import _dns_wire
from stolon.resolver._dns_conf import ResolvConf, parse_nameservers
from stolon.resolver.dns import Resolver
from stolon.socket import socket as green_socket

A, CNAME, PTR, AAAA = 1, 5, 12, 28
NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5
NONAME = (socket.EAI_NONAME, "Name or service not known")
AGAIN = (socket.EAI_AGAIN, "Temporary failure in name resolution")


def _fd_count():
    return len(os.listdir("/proc/self/fd"))


def _ipv6_first(ipv6, ipv4):
    # getaddrinfo(3) puts IPv6 first unless this host has no route to it (RFC 3484
    # rule 1: some CI containers have no IPv6 at all)
    probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        probe.connect(("::1", 9))
    except OSError:
        return ipv4 + ipv6
    finally:
        probe.close()
    return ipv6 + ipv4


# -- the fake server ----------------------------------------------------------------------

def _name(text):
    return b"".join(bytes([len(label)]) + label.encode() for label in text.split(".")) + b"\0"


def _rdata(rtype, value):
    if rtype == A:
        return socket.inet_pton(socket.AF_INET, value)
    if rtype == AAAA:
        return socket.inet_pton(socket.AF_INET6, value)
    return _name(value)


def _record(owner, rtype, value, owner_bytes=None):
    data = _rdata(rtype, value)
    return ((owner_bytes or _name(owner)) + struct.pack("!HHIH", rtype, 1, 60, len(data))
            + data)


def _parse_query(data):
    labels, pos = [], 12
    while data[pos]:
        labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
        pos += 1 + data[pos]
    qtype, = struct.unpack_from("!H", data, pos + 1)
    return struct.unpack_from("!H", data)[0], ".".join(labels).lower(), qtype


def _reply(query, rcode=NOERROR, records=b"", count=0, tc=False, id_=None, question=None):
    qid = struct.unpack_from("!H", query)[0] if id_ is None else id_
    flags = 0x8180 | (0x0200 if tc else 0) | rcode
    return (struct.pack("!HHHHHH", qid, flags, 1, count, 0, 0)
            + (query[12:] if question is None else question) + records)


class FakeDNS:
    """A DNS server answering from ``zone`` ({name: {qtype: [values]}, CNAME: target});
    ``behaviour[name]`` makes it misbehave for that name; ``queries`` logs
    ``(transport, name, qtype)``; ``chase`` bounds the CNAMEs it follows itself;
    ``tcp_delay`` holds back its TCP answers, ``tcp_trickle`` sends them a byte
    at a time, that many seconds apart."""

    def __init__(self, host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.zone = {}
        self.behaviour = {}
        self.queries = []
        self.events = []        # ("query" | "answer", name, qtype), UDP, in order
        self.chase = 40
        self.tcp_delay = 0
        self.tcp_trickle = 0
        self.connections = []
        self.group = Group()
        for _ in range(20):
            self.udp = green_socket(family, socket.SOCK_DGRAM)
            self.udp.bind((host, 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = green_socket(family, socket.SOCK_STREAM)
            try:
                self.tcp.bind((host, self.port))
                break
            except OSError:   # that port is taken for TCP: try another
                self.udp.close()
                self.tcp.close()
        self.tcp.listen(16)
        self.address = (host, self.port)
        self.group.spawn(self._serve_udp)
        self.group.spawn(self._serve_tcp)

    def close(self):
        self.group.kill()
        self.udp.close()
        self.tcp.close()

    def add(self, name, rtype, *values):
        self.zone.setdefault(name, {}).setdefault(rtype, []).extend(values)

    def answer(self, query):
        """(rcode, records bytes, count) for a query, following CNAMEs like a
        recursive server, at most ``chase`` of them."""
        _, name, qtype = _parse_query(query)
        records, count = b"", 0
        for _ in range(self.chase):
            target = self.zone.get(name, {}).get(CNAME)
            if target is None or qtype == CNAME:
                break
            records += _record(name, CNAME, target[0])
            count += 1
            name = target[0]
        else:
            return NOERROR, records, count
        if name not in self.zone:
            return NXDOMAIN, records, count
        for value in self.zone[name].get(qtype, ()):
            records += _record(name, qtype, value)
            count += 1
        return NOERROR, records, count

    def _serve_udp(self):
        while True:
            data, peer = self.udp.recvfrom(512)
            self.group.spawn(self._answer_udp, data, peer)

    def _answer_udp(self, query, peer):
        _, name, qtype = _parse_query(query)
        self.queries.append(("udp", name, qtype))
        self.events.append(("query", name, qtype))
        mode = self.behaviour.get(name)

        def send(data):
            self.events.append(("answer", name, qtype))
            self.udp.sendto(data, peer)
        if mode == "drop":
            return
        if isinstance(mode, float):
            stolon.sleep(mode)
        elif mode in ("servfail", "refused"):
            return send(_reply(query, SERVFAIL if mode == "servfail" else REFUSED))
        elif mode == "truncate":
            return send(_reply(query, tc=True))
        elif mode == "wrong_id":
            send(_reply(query, NOERROR, _record(name, A, "6.6.6.6"), 1,
                        id_=struct.unpack_from("!H", query)[0] ^ 1))
        elif mode == "wrong_question":
            send(_reply(query, NOERROR, _record("evil.test", A, "6.6.6.6"), 1,
                        question=_name("evil.test") + query[-4:]))
        elif mode == "wrong_port":
            with green_socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                other.sendto(_reply(query, NOERROR, _record(name, A, "6.6.6.6"), 1), peer)
        elif mode in _MALFORMED:
            send(_MALFORMED[mode](query))
        elif mode == "only_malformed":
            return send(_MALFORMED["self_pointer"](query))
        elif mode == "dotted_cname":
            # a CNAME target with a '.' inside a label: legal on the wire, no
            # query can ask for it
            target = b"\x02x.\x07example\x00"
            record = _name(name) + struct.pack("!HHIH", CNAME, 1, 60, len(target)) + target
            return send(_reply(query, NOERROR, record, 1))
        rcode, records, count = self.answer(query)
        send(_reply(query, rcode, records, count))

    def _serve_tcp(self):
        while True:
            conn, _ = self.tcp.accept()
            self.connections.append(conn)
            self.group.spawn(self._answer_tcp, conn)

    def _answer_tcp(self, conn):
        with conn:
            size, = struct.unpack("!H", conn.recv(2))
            query = b""
            while len(query) < size:
                query += conn.recv(size - len(query))
            _, name, qtype = _parse_query(query)
            self.queries.append(("tcp", name, qtype))
            stolon.sleep(self.tcp_delay)
            rcode, records, count = self.answer(query)
            data = _reply(query, rcode, records, count)
            data = struct.pack("!H", len(data)) + data
            if not self.tcp_trickle:
                return conn.sendall(data)
            for i in range(len(data)):
                conn.sendall(data[i:i + 1])
                stolon.sleep(self.tcp_trickle)


def _self_pointer(query):
    # an answer whose owner name is a pointer to itself
    at = len(query)
    return _reply(query, NOERROR, _record("x", A, "6.6.6.6",
                                          owner_bytes=struct.pack("!H", 0xC000 | at)), 1)


def _pointer_out_of_bounds(query):
    return _reply(query, NOERROR, _record("x", A, "6.6.6.6", owner_bytes=b"\xc3\xff"), 1)


def _pointer_loop_pair(query):
    # two names pointing at each other: a -> b -> a
    at = len(query)
    return _reply(query, NOERROR, struct.pack("!H", 0xC000 | (at + 2))
                  + struct.pack("!H", 0xC000 | at) + b"\0\x01\0\x01\0\0\0\x3c\0\x04" + bytes(4), 1)


_MALFORMED = {"self_pointer": _self_pointer, "pointer_out_of_bounds": _pointer_out_of_bounds,
              "pointer_loop": _pointer_loop_pair,
              "short": lambda query: query[:7], "bad_rdlength": lambda query: _reply(
                  query, NOERROR, _name("x") + struct.pack("!HHIH", A, 1, 60, 400), 1)}


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture
def server():
    fake = FakeDNS()
    yield fake
    fake.close()


@pytest.fixture
def files(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example.test\n")
    return hosts, conf


@pytest.fixture
def resolver(server, files):
    hosts, conf = files
    return Resolver(nameservers=[server.address], resolv_conf=str(conf),
                    hosts_file=str(hosts), timeout=0.2, tries=1)


@pytest.fixture
def patient(server, files):
    """A resolver for tests that delay replies without testing timeouts: a pause
    of a loaded machine must not turn a delayed reply into EAI_AGAIN."""
    hosts, conf = files
    return Resolver(nameservers=[server.address], resolv_conf=str(conf),
                    hosts_file=str(hosts), timeout=5, tries=1)


def _raises(exc_type, function, *args):
    with pytest.raises(exc_type) as info:
        function(*args)
    return info.value.args


# -- A, AAAA and result shapes ------------------------------------------------------------

def test_a_record_result_shapes_match_the_c_library(server, resolver):
    server.add("host.test", A, "10.0.0.1")
    assert resolver.gethostbyname("host.test") == "10.0.0.1"
    assert resolver.gethostbyname_ex("host.test") == ("host.test", [], ["10.0.0.1"])
    for args in [(80,), ("80",), (None,), ("http", socket.AF_INET, socket.SOCK_STREAM),
                 (53, socket.AF_INET, 0, socket.IPPROTO_UDP), (b"80", socket.AF_INET)]:
        assert resolver.getaddrinfo("host.test", *args) == _socket.getaddrinfo("10.0.0.1", *args)
    # the socktype/proto expansion of type 0: STREAM/6, DGRAM/17, RAW/0
    assert [info[1:3] for info in resolver.getaddrinfo("host.test", 80)] == [(1, 6), (2, 17),
                                                                               (3, 0)]


def test_unspec_asks_a_and_aaaa_at_once_and_puts_ipv6_first(server, patient):
    resolver = patient
    server.add("both.test", A, "127.0.0.2")
    server.add("both.test", AAAA, "::1")
    server.behaviour["both.test"] = 0.1
    infos = resolver.getaddrinfo("both.test", 80, 0, socket.SOCK_STREAM)
    # one wait for both, not two: both queries came before the first answer
    assert [event[0] for event in server.events][:2] == ["query", "query"]
    assert infos == _ipv6_first([(socket.AF_INET6, 1, 6, "", ("::1", 80, 0, 0))],
                                [(socket.AF_INET, 1, 6, "", ("127.0.0.2", 80))])
    assert sorted(server.queries) == [("udp", "both.test", A), ("udp", "both.test", AAAA)]
    assert resolver.getaddrinfo("both.test", 80, socket.AF_INET6, socket.SOCK_STREAM) == [
        (socket.AF_INET6, 1, 6, "", ("::1", 80, 0, 0))]


def test_canonname_only_on_the_first_result(server, resolver):
    server.add("host.test", A, "10.0.0.1", "10.0.0.2")
    infos = resolver.getaddrinfo("host.test", 80, socket.AF_INET, 0, 0, socket.AI_CANONNAME)
    assert [info[3] for info in infos] == ["host.test"] + [""] * 5
    assert [info[4][0] for info in infos[::3]] == ["10.0.0.1", "10.0.0.2"]


# -- errors -------------------------------------------------------------------------------

def test_nxdomain_and_no_data_are_eai_noname(server, resolver):
    server.add("v4only.test", A, "10.0.0.1")
    assert _raises(socket.gaierror, resolver.getaddrinfo, "missing.test", 80) == NONAME
    assert _raises(socket.gaierror, resolver.getaddrinfo, "v4only.test", 80,
                   socket.AF_INET6) == NONAME
    assert _raises(socket.gaierror, resolver.gethostbyname, "missing.test") == NONAME
    assert _raises(socket.gaierror, resolver.gethostbyname_ex, "missing.test") == NONAME


@pytest.mark.parametrize("mode", ["servfail", "refused", "drop"])
def test_failed_servers_give_eai_again(server, resolver, mode):
    server.behaviour["bad.test"] = mode
    server.behaviour["bad.test.example.test"] = mode
    assert _raises(socket.gaierror, resolver.getaddrinfo, "bad.test", 80) == AGAIN
    # one try (A and AAAA) per search candidate: the name, then with the search
    # domain
    assert [query[1] for query in server.queries] == (["bad.test"] * 2
                                                      + ["bad.test.example.test"] * 2)


def test_nameservers_are_tried_in_order(server, files):
    other = FakeDNS()
    try:
        other.add("host.test", A, "10.0.0.9")
        server.behaviour["host.test"] = "servfail"
        hosts, conf = files
        resolver = Resolver(nameservers=[server.address, "127.0.0.1:%d" % other.port],
                            resolv_conf=str(conf), hosts_file=str(hosts), timeout=0.2, tries=1)
        assert resolver.gethostbyname("host.test") == "10.0.0.9"
        assert server.queries == [("udp", "host.test", A)]
        assert other.queries == [("udp", "host.test", A)]
    finally:
        other.close()


def test_silent_server_is_tried_again_each_round(server, files):
    hosts, conf = files
    server.behaviour["slow.test"] = "drop"
    resolver = Resolver(nameservers=[server.address], resolv_conf=str(conf),
                        hosts_file=str(hosts), timeout=0.05, tries=3)
    assert _raises(socket.gaierror, resolver.gethostbyname, "slow.test") == AGAIN
    assert server.queries.count(("udp", "slow.test", A)) == 3


def test_closed_port_fails_over_without_waiting(server, files):
    hosts, conf = files
    with green_socket(socket.AF_INET, socket.SOCK_DGRAM) as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()
    server.add("host.test", A, "10.0.0.1")
    resolver = Resolver(nameservers=[dead, server.address], resolv_conf=str(conf),
                        hosts_file=str(hosts), timeout=5, tries=1)
    start = time.monotonic()
    assert resolver.gethostbyname("host.test") == "10.0.0.1"
    assert time.monotonic() - start < 1


def test_argument_errors_are_the_stdlib_ones(resolver):
    for function in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        message = _raises(TypeError, getattr(resolver, function), 1)
        assert message == _raises(TypeError, getattr(_socket, function), 1)
    assert (_raises(TypeError, resolver.getaddrinfo, 1, 80)
            == _raises(TypeError, _socket.getaddrinfo, 1, 80))
    long_label = "a" * 64 + ".test"
    assert (_raises(UnicodeError, resolver.getaddrinfo, long_label, 80)
            == _raises(UnicodeError, _socket.getaddrinfo, long_label, 80))
    for args in [("host.test", "no-such-service"), ("host.test", 80, 99),
                 ("host.test", 80, 0, 99), ("host.test", "http", 0, 0, 0, socket.AI_NUMERICSERV),
                 ("host.test", 1.5)]:
        expected = pytest.raises(OSError, _socket.getaddrinfo, "127.0.0.1", *args[1:])
        got = pytest.raises(OSError, resolver.getaddrinfo, *args)
        assert (type(got.value), got.value.args) == (type(expected.value), expected.value.args)


def test_numeric_inputs_match_the_c_library(resolver, server):
    cases = [("127.0.0.1", 80), ("::1", "http"), (None, 80), ("127.1", 80, 0, 0, 0,
                                                             socket.AI_CANONNAME),
             (b"10.1.2.3", None, socket.AF_INET, socket.SOCK_DGRAM), (None, 0, 0, 0, 0,
                                                                      socket.AI_PASSIVE)]
    for args in cases:
        assert resolver.getaddrinfo(*args) == _socket.getaddrinfo(*args)
    assert (_raises(socket.gaierror, resolver.getaddrinfo, "127.0.0.1", 80, socket.AF_INET6)
            == _raises(socket.gaierror, _socket.getaddrinfo, "127.0.0.1", 80, socket.AF_INET6))
    assert resolver.gethostbyname("10.1.2.3") == "10.1.2.3"
    assert resolver.gethostbyname("") == _socket.gethostbyname("")
    assert resolver.gethostbyname_ex("10.1.2.3") == _socket.gethostbyname_ex("10.1.2.3")
    assert server.queries == []


# -- replies that must not be believed ----------------------------------------------------

@pytest.mark.parametrize("mode", ["wrong_id", "wrong_question", "wrong_port", "self_pointer",
                                  "pointer_out_of_bounds", "pointer_loop", "short",
                                  "bad_rdlength"])
def test_bad_replies_are_ignored_and_the_real_one_taken(server, resolver, mode):
    server.add("host.test", A, "10.0.0.1")
    server.behaviour["host.test"] = mode
    assert resolver.gethostbyname_ex("host.test") == ("host.test", [], ["10.0.0.1"])


def test_only_malformed_replies_time_out(server, resolver):
    server.behaviour["host.test"] = "only_malformed"
    assert _raises(socket.gaierror, resolver.gethostbyname, "host.test") == AGAIN


def test_name_decoding_bounds():
    header = bytes(12)
    with pytest.raises(_dns_wire.FormatError):      # pointer to itself
        _dns_wire.read_name(header + b"\xc0\x0c", 12)
    with pytest.raises(_dns_wire.FormatError):      # forward pointer
        _dns_wire.read_name(header + b"\xc0\x0e\x01a\x00", 12)
    with pytest.raises(_dns_wire.FormatError):      # label past the end
        _dns_wire.read_name(header + b"\x05ab", 12)
    with pytest.raises(_dns_wire.FormatError):      # longer than 255 octets
        _dns_wire.read_name(header + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63
                            + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x00", 12)
    with pytest.raises(_dns_wire.FormatError):      # reserved label type 0x40
        _dns_wire.read_name(header + b"\x41a\x00", 12)
    data = header + b"\x03www\x07example\x00" + b"\x03cdn\xc0\x10"
    assert _dns_wire.read_name(data, 25) == (b"cdn.example", 31)
    assert _dns_wire.read_name(data, 12) == (b"www.example", 25)
    for bad in (b"", bytes(11), bytes(12), b"\0\0\x80\0\0\x02" + bytes(6)):
        with pytest.raises(_dns_wire.FormatError):
            _dns_wire.decode_reply(bad)


# -- TCP, CNAME, PTR ----------------------------------------------------------------------

def test_truncated_reply_is_asked_again_over_tcp(server, resolver):
    server.add("big.test", A, *["10.0.1.%d" % i for i in range(1, 41)])
    server.behaviour["big.test"] = "truncate"
    addresses = resolver.gethostbyname_ex("big.test")[2]
    assert addresses == ["10.0.1.%d" % i for i in range(1, 41)]
    assert server.queries == [("udp", "big.test", A), ("tcp", "big.test", A)]


def test_cname_chain_gives_canonical_name_and_aliases(server, resolver):
    server.add("www.test", CNAME, "cdn.test")
    server.add("cdn.test", CNAME, "edge.test")
    server.add("edge.test", A, "10.0.0.7")
    assert resolver.gethostbyname_ex("www.test") == ("edge.test", ["www.test", "cdn.test"],
                                                     ["10.0.0.7"])
    infos = resolver.getaddrinfo("www.test", 80, socket.AF_INET, socket.SOCK_STREAM, 0,
                                 socket.AI_CANONNAME)
    assert infos == [(socket.AF_INET, 1, 6, "edge.test", ("10.0.0.7", 80))]


def test_cname_chain_left_unfinished_is_queried_on(server, resolver):
    server.chase = 1
    server.add("a.test", CNAME, "b.test")
    server.add("b.test", CNAME, "c.test")
    server.add("c.test", A, "10.0.0.3")
    assert resolver.gethostbyname_ex("a.test") == ("c.test", ["a.test", "b.test"], ["10.0.0.3"])
    assert [query[1] for query in server.queries] == ["a.test", "b.test", "c.test"]


def test_cname_loops_and_long_chains_end(server, resolver):
    server.add("loop1.test", CNAME, "loop2.test")
    server.add("loop2.test", CNAME, "loop1.test")
    for i in range(30):
        server.add("c%d.test" % i, CNAME, "c%d.test" % (i + 1))
    server.add("c30.test", A, "10.0.0.1")
    assert _raises(socket.gaierror, resolver.gethostbyname, "loop1.test") == NONAME
    assert _raises(socket.gaierror, resolver.gethostbyname, "c0.test") == NONAME
    server.chase = 1   # the resolver asks again along the chain: still bounded
    del server.queries[:]
    assert _raises(socket.gaierror, resolver.gethostbyname, "c0.test") == NONAME
    assert len(server.queries) <= 17


def test_reverse_lookups(server, resolver):
    server.add("4.3.2.10.in-addr.arpa", PTR, "host.test", "alias.test")
    v6 = "2001:db8::1"
    v6_ptr = ".".join(socket.inet_pton(socket.AF_INET6, v6).hex()[::-1]) + ".ip6.arpa"
    server.add(v6_ptr, PTR, "six.test")
    assert resolver.gethostbyaddr("10.2.3.4") == ("host.test", ["alias.test"], ["10.2.3.4"])
    assert resolver.gethostbyaddr(v6) == ("six.test", [], [v6])
    assert _raises(socket.herror, resolver.gethostbyaddr, "10.9.9.9") == (1, "Unknown host")
    assert resolver.getnameinfo(("10.2.3.4", 80), 0) == ("host.test", "http")
    assert resolver.getnameinfo(("10.2.3.4", 53), socket.NI_DGRAM) == ("host.test", "domain")
    assert resolver.getnameinfo(("10.9.9.9", 80), 0) == ("10.9.9.9", "http")
    assert _raises(socket.gaierror, resolver.getnameinfo, ("10.9.9.9", 80),
                   socket.NI_NAMEREQD) == NONAME
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    assert resolver.getnameinfo(("10.2.3.4", 80), flags) == ("10.2.3.4", "80")
    for bad in [(("10.2.3.4", 80, 0, 0), 0), (["10.2.3.4", 80], 0), (("host.test", 80), 0)]:
        expected = pytest.raises((OSError, TypeError), _socket.getnameinfo, *bad)
        got = pytest.raises((OSError, TypeError), resolver.getnameinfo, *bad)
        assert (type(got.value), got.value.args) == (type(expected.value), expected.value.args)


def test_reverse_lookup_with_no_server_answering(server, resolver):
    server.behaviour["4.3.2.10.in-addr.arpa"] = "drop"
    assert _raises(socket.herror, resolver.gethostbyaddr, "10.2.3.4") == (
        2, "Host name lookup failure")
    assert resolver.getnameinfo(("10.2.3.4", 80), 0) == ("10.2.3.4", "http")


# -- the hosts file and localhost ---------------------------------------------------------

def test_hosts_file_answers_without_queries_and_is_reread(server, resolver, files):
    hosts, _ = files
    hosts.write_text("10.0.0.5 Web.Local web alias\n::1 web\n10.0.0.6 web\n")
    assert resolver.gethostbyname_ex("WEB") == ("Web.Local", ["web", "alias"],
                                                ["10.0.0.5", "10.0.0.6"])
    assert resolver.gethostbyaddr("10.0.0.5") == ("Web.Local", ["web", "alias"], ["10.0.0.5"])
    assert resolver.getnameinfo(("10.0.0.6", 80), 0) == ("web", "http")
    infos = resolver.getaddrinfo("web", 80, 0, socket.SOCK_STREAM)
    assert infos == _ipv6_first([(socket.AF_INET6, 1, 6, "", ("::1", 80, 0, 0))],
                                [(socket.AF_INET, 1, 6, "", ("10.0.0.5", 80)),
                                 (socket.AF_INET, 1, 6, "", ("10.0.0.6", 80))])
    infos = resolver.getaddrinfo("web", 80, 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
    assert [info[3] for info in infos] == ["Web.Local", "", ""]
    hosts.write_text("10.0.0.8 web\n")
    os.utime(hosts, (1, 1))   # a new mtime even where timestamps are coarse
    assert resolver.gethostbyname("web") == "10.0.0.8"
    assert server.queries == []


def test_localhost_matches_the_c_library_and_needs_no_hosts_entry(server, resolver, files):
    # the system's hosts file, as the C library reads it (it may list ::1 too)
    system = Resolver(nameservers=[server.address], resolv_conf=None, timeout=0.2, tries=1)
    for args in [("localhost", 80), ("localhost", None, socket.AF_INET, socket.SOCK_DGRAM),
                 ("LOCALHOST", 80, 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)]:
        assert system.getaddrinfo(*args) == _socket.getaddrinfo(*args)
    hosts, _ = files
    hosts.write_text("")
    # RFC 6761: the loopback, IPv6 first as getaddrinfo(3) sorts it, without a query
    assert [info[4][0] for info in resolver.getaddrinfo("localhost", 80, 0, 1)] == _ipv6_first(
        ["::1"], ["127.0.0.1"])
    assert resolver.gethostbyname("localhost") == "127.0.0.1"
    assert server.queries == []


# -- resolv.conf and the nameservers argument ---------------------------------------------

def test_resolv_conf_defaults_and_options(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\n")
    parsed = ResolvConf(str(conf))
    assert (parsed.nameservers, parsed.ndots, parsed.timeout, parsed.attempts,
            parsed.rotate) == ([("127.0.0.1", 53)], 1, 5.0, 2, False)
    conf.write_text("nameserver 10.0.0.1\nnameserver ::1\nnameserver bogus\n"
                    "nameserver 10.0.0.2\nnameserver 10.0.0.3\n; x\ndomain one.test\n"
                    "search two.test three.test.\noptions ndots:3 timeout:0 attempts:9 rotate"
                    " ndots:x\n")
    parsed = ResolvConf(str(conf))
    assert parsed.nameservers == [("10.0.0.1", 53), ("::1", 53), ("10.0.0.2", 53)]
    assert parsed.search == [b"two.test", b"three.test"]
    assert (parsed.ndots, parsed.timeout, parsed.attempts, parsed.rotate) == (3, 1.0, 5, True)
    assert ResolvConf(str(tmp_path / "missing")).nameservers == [("127.0.0.1", 53)]


def test_search_list_and_ndots(server, files):
    hosts, conf = files
    conf.write_text("search corp.test\noptions ndots:2 timeout:1 attempts:1\n")
    server.add("web.corp.test", A, "10.0.0.1")
    server.add("a.b", A, "10.0.0.2")
    server.add("a.b.corp.test", A, "10.0.0.3")
    resolver = Resolver(nameservers=[server.address], resolv_conf=str(conf),
                        hosts_file=str(hosts))
    assert resolver.gethostbyname("web") == "10.0.0.1"
    assert resolver.gethostbyname("a.b") == "10.0.0.3"       # fewer than ndots dots
    assert resolver.gethostbyname("a.b.") == "10.0.0.2"      # absolute
    del server.queries[:]
    assert _raises(socket.gaierror, resolver.gethostbyname, "x.y.z") == NONAME
    assert [query[1] for query in server.queries] == ["x.y.z", "x.y.z.corp.test"]


def test_rotate_starts_each_query_at_the_next_server(server, files):
    other = FakeDNS()
    try:
        hosts, conf = files
        conf.write_text("options rotate\n")
        for fake in (server, other):
            fake.add("host.test", A, "10.0.0.1")
        resolver = Resolver(nameservers=[server.address, other.address],
                            resolv_conf=str(conf), hosts_file=str(hosts), timeout=0.2)
        for _ in range(4):
            resolver.gethostbyname("host.test")
        assert len(server.queries) == len(other.queries) == 2
    finally:
        other.close()


def test_nameservers_argument():
    assert parse_nameservers([("127.0.0.1", 5353), "10.0.0.1", "10.0.0.2:54", "[::1]:55",
                              "::1", "[fe80::1%lo]"]) == [
        ("127.0.0.1", 5353), ("10.0.0.1", 53), ("10.0.0.2", 54), ("::1", 55), ("::1", 53),
        ("fe80::1%lo", 53)]
    assert parse_nameservers("10.0.0.1:54, 10.0.0.2") == [("10.0.0.1", 54), ("10.0.0.2", 53)]
    for bad in (["dns.test"], ["10.0.0.1:0"], ["10.0.0.1:x"], [], ["1.2.3.4:70000"]):
        with pytest.raises(ValueError):
            parse_nameservers(bad)


def test_ipv6_nameserver(files):
    try:
        fake = FakeDNS("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        fake.add("host.test", AAAA, "2001:db8::5")
        hosts, conf = files
        resolver = Resolver(nameservers="[::1]:%d" % fake.port, resolv_conf=str(conf),
                            hosts_file=str(hosts), timeout=0.2, tries=1)
        assert resolver.getaddrinfo("host.test", 80, socket.AF_INET6, socket.SOCK_STREAM) == [
            (socket.AF_INET6, 1, 6, "", ("2001:db8::5", 80, 0, 0))]
    finally:
        fake.close()


# -- cooperation --------------------------------------------------------------------------

def test_hundred_parallel_lookups_take_about_one_round_trip(server, patient):
    resolver = patient
    for i in range(100):
        server.add("h%d.test" % i, A, "10.1.0.%d" % (i % 250))
        server.behaviour["h%d.test" % i] = 0.1
    start = time.monotonic()
    lookups = [stolon.spawn(resolver.gethostbyname, "h%d.test" % i) for i in range(100)]
    stolon.joinall(lookups, raise_error=True)
    assert time.monotonic() - start < 0.6
    assert [lookup.value for lookup in lookups] == ["10.1.0.%d" % i for i in range(100)]


def test_other_greenlets_run_while_a_lookup_waits(server, patient):
    resolver = patient
    server.add("slow.test", A, "10.0.0.1")
    server.behaviour["slow.test"] = 0.15
    ticks = []

    def ticker():
        for _ in range(100):
            ticks.append(time.monotonic())
            stolon.sleep(0.01)

    running = stolon.spawn(ticker)
    try:
        assert resolver.gethostbyname("slow.test") == "10.0.0.1"
    finally:
        running.kill()
    assert len(ticks) >= 5


def test_killing_a_lookup_leaks_no_descriptor(server, resolver):
    server.behaviour["slow.test"] = "drop"
    server.behaviour["big.test"] = "truncate"
    server.add("big.test", A, "10.0.0.1")
    server.tcp_delay = 5
    stolon.sleep(0.01)
    before = _fd_count()
    # a socket left to the garbage collector would be closed too, but with a warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        lookups = [stolon.spawn(resolver.getaddrinfo, "slow.test", 80) for _ in range(5)]
        stolon.sleep(0.02)
        stolon.killall(lookups)
        assert _fd_count() == before
        # killed between the UDP reply and the TCP one
        tcp_lookup = stolon.spawn(resolver.gethostbyname, "big.test")
        for _ in range(200):
            if ("tcp", "big.test", A) in server.queries:
                break
            stolon.sleep(0.001)
        assert not tcp_lookup.ready()
        tcp_lookup.kill()
        server.group.kill()   # its connection handler, sleeping on the answer, too
        for conn in server.connections:
            conn.close()
        gc.collect()
    assert _fd_count() == before
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_lookup_under_a_timeout(server, resolver):
    server.behaviour["slow.test"] = "drop"
    before = _fd_count()
    with pytest.raises(stolon.Timeout):
        with stolon.Timeout(0.05):
            resolver.gethostbyname("slow.test")
    assert _fd_count() == before


def test_close_and_hub_not_error(resolver):
    resolver.close()
    assert socket.gaierror in stolon.get_hub().NOT_ERROR
    assert "nameservers=[('127.0.0.1'," in repr(resolver)


def test_hub_resolver_from_the_config(server, files, monkeypatch):
    # GEVENT_RESOLVER=dns with resolver_nameservers/resolver_timeout: the hub's
    # resolver asks that server, and stolon.socket's functions go through it
    from stolon import config
    from stolon.hub import get_hub
    saved = {name: dict(setting.__dict__) for name, setting in config.settings.items()}
    hub = get_hub()
    monkeypatch.setattr(hub, "_resolver", None)
    try:
        config.resolver = "ares"
        config.resolver_nameservers = "%s:%d" % server.address
        config.resolver_timeout = "0.25"
        resolver = hub.resolver
        assert isinstance(resolver, Resolver)
        assert resolver._nameservers == [server.address] and resolver._timeout == 0.25
        server.add("configured.test", A, "10.0.0.9")
        assert stolon.socket.gethostbyname("configured.test") == "10.0.0.9"
        assert server.queries[-1][1:] == ("configured.test", A)
    finally:
        for name, setting in config.settings.items():
            setting.__dict__.clear()
            setting.__dict__.update(saved[name])


def test_resolv_conf_search_domain_that_is_no_dns_name_is_skipped(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("search %s.test good.test\n" % ("x" * 70))
    assert ResolvConf(str(conf)).search == [b"good.test"]


def test_cname_to_a_name_no_query_can_carry_is_no_such_name(server, resolver):
    server.behaviour["victim.test"] = "dotted_cname"
    assert _raises(socket.gaierror, resolver.getaddrinfo, "victim.test", 80) == NONAME
    assert _raises(socket.gaierror, resolver.gethostbyname, "victim.test") == NONAME


def test_tcp_reply_trickled_byte_by_byte_is_bounded_by_one_timeout(server, resolver):
    # the timeout bounds the whole TCP exchange, not each recv
    server.add("big.test", A, "10.0.0.7")
    server.behaviour["big.test"] = "truncate"
    server.tcp_trickle = 0.02           # ~45 bytes: ~0.9 s in all, the timeout is 0.2 s
    start = time.monotonic()
    assert _raises(socket.gaierror, resolver.gethostbyname, "big.test") == AGAIN
    assert time.monotonic() - start < 0.8


def test_the_root_name_is_no_host_and_asks_nobody(server, resolver):
    for host in ("", b""):
        assert _raises(socket.gaierror, resolver.getaddrinfo, host, 80) == NONAME
    assert server.queries == []
