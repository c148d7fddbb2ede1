"""stolon.resolver.dns: a stub resolver that speaks DNS itself, over stolon's
cooperative sockets (no threads): stolon's counterpart of gevent's ``'ares'``
(c-ares) and ``'dnspython'`` resolvers, in pure Python.

A lookup answers, in this order:

1. numeric addresses, ``host=None`` and ``AI_NUMERICHOST``: the C library itself
   (``_socket``'s functions never wait on the network for these);
2. names in the hosts file (read again when it changes), and ``localhost``;
3. DNS: A and/or AAAA queries (both at once, on one socket, for ``AF_UNSPEC``) to
   the nameservers in order, over UDP, over TCP when a reply comes back truncated,
   following CNAME chains; PTR queries for reverse lookups.

Argument checking, service names, socket types and error values are the C
library's: the resolver lets ``_socket`` check the arguments with a numeric
placeholder address before it looks a name up.
"""
import random
import sys
from struct import Struct
from time import monotonic

import _socket
from _socket import (AF_INET, AF_INET6, AF_UNSPEC, AI_CANONNAME, AI_NUMERICHOST,
                     AI_NUMERICSERV, EAI_AGAIN, EAI_NONAME, NI_NAMEREQD, NI_NUMERICHOST,
                     SOCK_DGRAM, SOCK_STREAM, gaierror, herror, inet_pton)

from stolon._config import config
from stolon.hub import get_hub, sleep
from stolon.resolver._dns_conf import HostEntry, HostsFile, ResolvConf, parse_nameservers
from stolon.resolver._dns_wire import (RCODE_NOERROR, RCODE_NXDOMAIN, TYPE_A, TYPE_AAAA,
                                       TYPE_CNAME, TYPE_PTR, FormatError, decode_reply,
                                       encode_name, encode_query, reverse_name)
from stolon.resolver import quiet_lookup_errors
from stolon.resolver._fqdn import getfqdn as _getfqdn
from stolon.socket import socket

__all__ = ["Resolver"]

_getaddrinfo = _socket.getaddrinfo
_getnameinfo = _socket.getnameinfo
_gethostbyname = _socket.gethostbyname
_gethostbyname_ex = _socket.gethostbyname_ex
_gethostbyaddr = _socket.gethostbyaddr

# gai_strerror() and hstrerror() texts of the platforms stolon runs on
if sys.platform == "darwin":
    _NONAME_TEXT = "nodename nor servname provided, or not known"
    _AGAIN_TEXT = "temporary failure in name resolution"
else:
    _NONAME_TEXT = "Name or service not known"
    _AGAIN_TEXT = "Temporary failure in name resolution"
_HOST_NOT_FOUND = (1, "Unknown host")
_TRY_AGAIN = (2, "Host name lookup failure")

_MAX_CHAIN = 16          # CNAME hops followed for one name (c-ares' bound)
_UDP_BUFFER = 4096       # larger than any reply to a query without EDNS
_TCP_LENGTH = Struct("!H")
_ENDPOINT_CACHE_SIZE = 64
_IGNORED_BEFORE_YIELD = 8  # unmatched datagrams read in a row before letting others run
# names gethostbyname() answers without a lookup (the empty one: the wildcard address)
_SPECIAL_HOSTNAMES = frozenset(["", b"", "<broadcast>", b"<broadcast>"])
# RFC 6761: 'localhost' is the loopback; used when the hosts file does not say
_LOCALHOST = HostEntry("localhost", [])
_LOCALHOST.ipv4.append("127.0.0.1")
_LOCALHOST.ipv6.append("::1")

_new_id = random.SystemRandom().getrandbits   # query ids an off-path attacker cannot guess


class _TemporaryFailure(Exception):
    """No server gave a usable answer (all timed out, failed or refused)."""


def _hostname_bytes(value, function):
    # the stdlib's type check of the get-host-by functions' argument
    if isinstance(value, bytearray):
        return bytes(value)
    if not isinstance(value, (str, bytes)):
        raise TypeError("%s() argument 1 must be str, bytes or bytearray, not %s"
                        % (function, type(value).__name__))
    return value


def _covers(entry, want4, want6):
    # a hosts-file entry answers when it has an address of a wanted family; else the
    # C library goes on to DNS
    return entry is not None and (want4 and entry.ipv4 or want6 and entry.ipv6)


def _text(name):
    return name.decode("utf-8", "replace")


def _precedence(family, address):
    # RFC 3484's default policy table, the one glibc sorts with (gai.conf's default):
    # ::1 50, ::/0 40, 2002::/16 30, ::/96 20, IPv4 (::ffff:0:0/96) 10
    if family == AF_INET:
        return 10
    if address == "::1":
        return 50
    if address.startswith("2002:"):
        return 30
    packed = inet_pton(AF_INET6, address)
    if packed[:12] == bytes(12):
        return 20
    if packed[:12] == bytes(10) + b"\xff\xff":
        return 10
    return 40


def _usable(family, address):
    # RFC 3484 rule 1, as glibc checks it: a destination the host has no route to
    # (a UDP connect() fails; it sends nothing) goes last
    probe = _socket.socket(family, SOCK_DGRAM)
    try:
        probe.connect((address, 9))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _ordered(addresses):
    # addresses: (family, address) in IPv6-then-IPv4 order; sorted as getaddrinfo(3)
    # sorts results of both families (a stable sort: DNS order within a class)
    return sorted(addresses, key=lambda item: (not _usable(*item), -_precedence(*item)))


class Resolver:
    """``Resolver(hub=None, nameservers=None, resolv_conf='/etc/resolv.conf',
    hosts_file='/etc/hosts', timeout=None, tries=None)``: an asynchronous stub
    resolver with the stdlib's lookup functions.

    - ``nameservers``: None for ``stolon.config.resolver_nameservers``, else
      resolv.conf's; otherwise a list of ``(ip, port)``
      tuples or ``'ip'``, ``'ip:port'``, ``'[ipv6]:port'`` strings (a bare IPv6
      address means port 53), or one string of those separated by commas or spaces.
      Tried in this order (or rotated with resolv.conf's ``options rotate``).
    - ``resolv_conf``: where ``search``/``domain``, ``ndots``, ``timeout``,
      ``attempts`` and ``rotate`` come from (None: the C library's defaults).
    - ``hosts_file``: consulted before DNS (None: none; ``localhost`` still answers).
    - ``timeout``: seconds to wait for each server on each try (default:
      ``stolon.config.resolver_timeout``, else resolv.conf's, 5); ``tries``: rounds over the servers (default: resolv.conf's attempts, 2).

    ``hub`` is the hub whose error reports should leave out failed lookups; the
    lookups run on the calling greenlet's hub."""

    __slots__ = ("_conf", "_hosts", "_nameservers", "_timeout", "_tries", "_endpoints",
                 "_rotation")

    def __init__(self, hub=None, nameservers=None, resolv_conf="/etc/resolv.conf",
                 hosts_file="/etc/hosts", timeout=None, tries=None):
        if hub is None:
            hub = get_hub()
        quiet_lookup_errors(hub)
        if nameservers is None:
            nameservers = config.resolver_nameservers
        if timeout is None:
            timeout = config.resolver_timeout
        self._conf = ResolvConf(resolv_conf)
        self._hosts = HostsFile(hosts_file) if hosts_file is not None else None
        self._nameservers = None if nameservers is None else parse_nameservers(nameservers)
        self._timeout = None if timeout is None else float(timeout)
        self._tries = None if tries is None else max(int(tries), 1)
        self._endpoints = {}
        self._rotation = 0

    def __repr__(self):
        return "<%s.%s at 0x%x nameservers=%r>" % (
            type(self).__module__, type(self).__name__, id(self),
            self._nameservers or self._conf.nameservers)

    def close(self):
        """Nothing to release: every lookup closes its own sockets."""

    # -- the stdlib's functions -------------------------------------------------------

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        """``socket.getaddrinfo``: ``(family, type, proto, canonname, sockaddr)``
        tuples (plain integers, as ``_socket`` returns them).  ``AI_ADDRCONFIG``,
        ``AI_V4MAPPED`` and ``AI_ALL`` are accepted and have no effect on names."""
        if host is None or flags & AI_NUMERICHOST:
            return _getaddrinfo(host, port, family, type, proto, flags)
        try:
            # the C library answers numeric hosts, and checks every argument
            return _getaddrinfo(host, port, family, type, proto, flags | AI_NUMERICHOST)
        except gaierror as error:
            if error.errno != EAI_NONAME:
                raise
        name = host.encode("idna") if isinstance(host, str) else host
        if not name.strip(b"."):
            # the root is no host: the C library answers at once, asking no server
            raise gaierror(EAI_NONAME, _NONAME_TEXT)
        endpoints = self._endpoints_for(port, type, proto, flags)
        canonical, _aliases, ipv4, ipv6 = self._lookup(name, family)
        addresses = [(AF_INET6, address) for address in ipv6]
        addresses += [(AF_INET, address) for address in ipv4]
        if ipv4 and ipv6:
            addresses = _ordered(addresses)
        results = [(af, kind, protocol, "",
                    (address, port_) if af == AF_INET else (address, port_, 0, 0))
                   for af, address in addresses for kind, protocol, port_ in endpoints]
        if flags & AI_CANONNAME:
            results[0] = results[0][:3] + (canonical,) + results[0][4:]
        return results

    def gethostbyname(self, hostname):
        """``socket.gethostbyname``: the first IPv4 address of ``hostname``."""
        hostname = _hostname_bytes(hostname, "gethostbyname")
        if hostname in _SPECIAL_HOSTNAMES:
            return _gethostbyname(hostname)
        return self.getaddrinfo(hostname, None, AF_INET, SOCK_STREAM)[0][4][0]

    def gethostbyname_ex(self, hostname):
        """``socket.gethostbyname_ex``: ``(canonical name, aliases, IPv4 addresses)``
        (the aliases: the hosts file's other names, or the CNAMEs that led to the
        canonical name)."""
        hostname = _hostname_bytes(hostname, "gethostbyname_ex")
        if hostname in ("", b""):
            return _gethostbyname_ex(hostname)   # the stdlib's error, no lookup
        try:
            numeric = _getaddrinfo(hostname, None, AF_INET, SOCK_STREAM, 0, AI_NUMERICHOST)
        except gaierror as error:
            if error.errno != EAI_NONAME:
                raise
        else:
            text = hostname if isinstance(hostname, str) else hostname.decode("ascii")
            return text, [], [numeric[0][4][0]]
        name = hostname.encode("idna") if isinstance(hostname, str) else hostname
        canonical, aliases, ipv4, _ = self._lookup(name, AF_INET)
        return canonical, list(aliases), list(ipv4)

    def gethostbyaddr(self, ip_address):
        """``socket.gethostbyaddr``: ``(name, aliases, [address])`` for an address
        (a name is resolved first, as the stdlib does); ``herror(1, 'Unknown
        host')`` when the address has no name, ``herror(2, ...)`` when no server
        answered."""
        ip_address = _hostname_bytes(ip_address, "gethostbyaddr")
        if ip_address in ("", b""):
            return _gethostbyaddr(ip_address)   # the stdlib's wildcard error, no lookup
        family, _, _, _, sockaddr = self.getaddrinfo(ip_address, None, AF_UNSPEC,
                                                     SOCK_DGRAM)[0]
        address = sockaddr[0]
        try:
            found = self._reverse(inet_pton(family, address.partition("%")[0]))
        except _TemporaryFailure:
            raise herror(*_TRY_AGAIN) from None
        if found is None:
            raise herror(*_HOST_NOT_FOUND)
        return found[0], list(found[1]), [address]

    def getnameinfo(self, sockaddr, flags):
        """``socket.getnameinfo``: ``(host, service)``; the host's name from the
        hosts file or a PTR query, its numeric address when it has none (unless
        ``NI_NAMEREQD``).  ``NI_NOFQDN`` has no effect."""
        # the C library checks the arguments and names the service; no lookup
        host, service = _getnameinfo(sockaddr, (flags | NI_NUMERICHOST) & ~NI_NAMEREQD)
        if flags & NI_NUMERICHOST:
            return host, service
        address = host.partition("%")[0]
        try:
            found = self._reverse(inet_pton(AF_INET6 if ":" in address else AF_INET,
                                            address))
        except _TemporaryFailure:
            if flags & NI_NAMEREQD:
                raise gaierror(EAI_AGAIN, _AGAIN_TEXT) from None
            found = None
        if found is not None:
            return found[0], service
        if flags & NI_NAMEREQD:
            raise gaierror(EAI_NONAME, _NONAME_TEXT)
        return host, service

    def getfqdn(self, name=""):
        """``socket.getfqdn`` through this resolver's ``gethostbyaddr``."""
        return _getfqdn(self.gethostbyaddr, name)

    # -- names to addresses -----------------------------------------------------------

    def _endpoints_for(self, port, kind, protocol, flags):
        # (type, proto, port) triples the C library makes of a service: the same for
        # every address, so found once with a placeholder address and kept
        key = (port, kind, protocol, flags & AI_NUMERICSERV)
        endpoints = self._endpoints.get(key)
        if endpoints is None:
            endpoints = [(info[1], info[2], info[4][1]) for info in _getaddrinfo(
                "127.0.0.1", port, AF_INET, kind, protocol, AI_NUMERICHOST | key[3])]
            if len(self._endpoints) >= _ENDPOINT_CACHE_SIZE:
                self._endpoints.clear()
            self._endpoints[key] = endpoints
        return endpoints

    def _lookup(self, name, family):
        """``(canonical, aliases, ipv4, ipv6)`` of ``name`` (bytes) for ``family``,
        from the hosts file or DNS; gaierror when it has none."""
        want4 = family != AF_INET6
        want6 = family != AF_INET
        key = name.lower()
        entry = self._hosts.entry(key) if self._hosts is not None else None
        if not _covers(entry, want4, want6) and key == b"localhost":
            entry = _LOCALHOST
        if _covers(entry, want4, want6):
            return (entry.canonical, entry.aliases, entry.ipv4 if want4 else (),
                    entry.ipv6 if want6 else ())
        qtypes = ([TYPE_AAAA] if want6 else []) + ([TYPE_A] if want4 else [])
        canonical, aliases, found = self._search(name, qtypes)
        return (_text(canonical), [_text(alias) for alias in aliases],
                found.get(TYPE_A, ()), found.get(TYPE_AAAA, ()))

    def _candidates(self, name, conf):
        # res_search(3)'s order: the name as given first when it has at least ndots
        # dots, then with each search domain, then as given (if not yet); a trailing
        # dot means the name is absolute and is asked as is only
        if name.endswith(b"."):
            return [name[:-1]]
        as_given_first = name.count(b".") >= conf.ndots
        names = [name] if as_given_first else []
        names += [name + b"." + domain for domain in conf.search]
        if not as_given_first:
            names.append(name)
        return names

    def _search(self, name, qtypes):
        conf = self._conf
        conf.refresh()
        failed = False
        for candidate in self._candidates(name, conf):
            try:
                found = self._follow(candidate, qtypes, conf)
            except _TemporaryFailure:
                failed = True
                continue
            if found is not None:
                return found
        if failed:
            raise gaierror(EAI_AGAIN, _AGAIN_TEXT)
        raise gaierror(EAI_NONAME, _NONAME_TEXT)

    def _reverse(self, packed):
        """``(name, aliases)`` of a packed address from the hosts file or PTR
        records, or None; _TemporaryFailure when no server answered."""
        if self._hosts is not None:
            found = self._hosts.reverse(packed)
            if found is not None:
                return found
        conf = self._conf
        conf.refresh()
        found = self._follow(reverse_name(packed), [TYPE_PTR], conf)
        if found is None:
            return None
        names = [_text(ptr) for ptr in found[2][TYPE_PTR]]
        return names[0], names[1:]

    # -- DNS -------------------------------------------------------------------------

    def _follow(self, name, qtypes, conf):
        """``(canonical, aliases, {qtype: values})`` for ``name``, following CNAMEs
        (again with new queries when a server leaves a chain unfinished), or None
        when the name has no such records, is not a valid DNS name, or its chain
        loops or is too long."""
        aliases = []
        seen = {name.lower()}
        # bounded: each round either ends or adds names to ``seen``, which is capped
        while True:
            try:
                # the name asked first, or a CNAME target a reply made up (a wire
                # label may hold a '.', which no query can carry)
                encode_name(name)
            except ValueError:
                return None
            answers = [record for reply in self._ask(name, qtypes, conf).values()
                       for record in reply.answers]
            cnames = {owner: value for owner, rtype, value in answers if rtype == TYPE_CNAME}
            chained = False
            while name.lower() in cnames:
                aliases.append(name)
                name = cnames[name.lower()]
                if name.lower() in seen or len(seen) >= _MAX_CHAIN:
                    return None
                seen.add(name.lower())
                chained = True
            owner = name.lower()
            found = {}
            for record_owner, rtype, value in answers:
                if record_owner == owner and rtype in qtypes:
                    found.setdefault(rtype, []).append(value)
            if found:
                return name, aliases, found
            if not chained:
                return None

    def _servers(self, conf):
        servers = self._nameservers or conf.nameservers
        if conf.rotate and len(servers) > 1:
            # 'options rotate': each query starts at the next server
            start = self._rotation % len(servers)
            self._rotation += 1
            servers = servers[start:] + servers[:start]
        return servers

    def _ask(self, name, qtypes, conf):
        """The replies (NOERROR or NXDOMAIN) to ``qtypes`` queries for ``name``, by
        qtype: each server in turn, ``tries`` rounds; _TemporaryFailure when no
        query got one."""
        timeout = self._timeout if self._timeout is not None else conf.timeout
        tries = self._tries if self._tries is not None else conf.attempts
        servers = self._servers(conf)
        pending = list(qtypes)
        answered = {}
        for _ in range(tries):
            for server in servers:
                for qtype, reply in self._exchange(server, name, pending, timeout).items():
                    # SERVFAIL, REFUSED, NOTIMP...: this server cannot say; ask the next
                    if reply.rcode in (RCODE_NOERROR, RCODE_NXDOMAIN):
                        answered[qtype] = reply
                        pending.remove(qtype)
                if not pending:
                    return answered
        if answered:
            return answered
        raise _TemporaryFailure()

    def _exchange(self, server, name, qtypes, timeout):
        """Send one query per qtype to ``server`` on one UDP socket and wait up to
        ``timeout`` for the replies: ``{qtype: Reply}`` of those that came.  The
        socket is connected, so the kernel drops datagrams from any other address
        or port."""
        family = AF_INET6 if ":" in server[0] else AF_INET
        replies = {}
        with socket(family, SOCK_DGRAM) as sock:
            try:
                sock.connect(server)
                ids = {}
                for qtype in qtypes:
                    query_id = _new_id(16)
                    while query_id in ids:
                        query_id = _new_id(16)
                    ids[query_id] = qtype
                    sock.send(encode_query(query_id, name, qtype))
                self._collect(sock, server, name, ids, timeout, replies)
            except OSError:
                # unreachable, or an ICMP 'port unreachable' came back: no more
                # answers here (those that came count)
                pass
        return replies

    def _collect(self, sock, server, name, ids, timeout, replies):
        deadline = monotonic() + timeout
        ignored = 0
        while ids:
            remaining = deadline - monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                data = sock.recv(_UDP_BUFFER)
            except _socket.timeout:
                break
            reply = _matching(data, ids, name)
            if reply is None:
                # not an answer to what we asked: a spoof, or a late reply.  A
                # flood of them keeps the socket readable: let others run now
                # and then, or the hub would serve nobody until the deadline
                ignored += 1
                if ignored % _IGNORED_BEFORE_YIELD == 0:
                    sleep(0)
                continue
            qtype = ids.pop(reply.id)
            if reply.truncated:
                reply = self._exchange_tcp(server, name, qtype, timeout)
                if reply is None:
                    continue
            replies[qtype] = reply

    def _exchange_tcp(self, server, name, qtype, timeout):
        # RFC 1035 4.2.2: the same query, length-prefixed, on a new connection; None
        # when the server cannot be reached or its reply does not match
        query_id = _new_id(16)
        query = encode_query(query_id, name, qtype)
        family = AF_INET6 if ":" in server[0] else AF_INET
        # one deadline for the whole exchange: a server trickling its reply a
        # byte at a time must not hold the lookup for a timeout per byte
        deadline = monotonic() + timeout
        with socket(family, SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(server)
                sock.sendall(_TCP_LENGTH.pack(len(query)) + query)
                size, = _TCP_LENGTH.unpack(_recv_exactly(sock, 2, deadline))
                data = _recv_exactly(sock, size, deadline)
            except OSError:
                return None
        reply = _matching(data, {query_id: qtype}, name)
        return None if reply is None or reply.truncated else reply


def _recv_exactly(sock, size, deadline):
    chunks = []
    while size:
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise _socket.timeout("timed out")
        sock.settimeout(remaining)
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionResetError("the DNS server closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _matching(data, ids, name):
    # the reply if it answers one of our queries (its id, and the question echoed),
    # else None: anything else is ignored, never trusted
    try:
        reply = decode_reply(data)
    except FormatError:
        return None
    if ids.get(reply.id) != reply.qtype or reply.qname != name.lower():
        return None
    return reply
