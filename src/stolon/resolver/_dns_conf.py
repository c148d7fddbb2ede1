"""stolon.resolver._dns_conf: the system files a stub resolver reads -- resolv.conf(5)
and hosts(5) -- and the nameserver addresses it accepts.

Both files are read again when their modification time changes (as the C library
does since glibc 2.26), checked with one ``stat`` per lookup.  A missing or
unreadable file counts as empty.
"""
import os
from _socket import AF_INET, AF_INET6, gethostname, inet_ntop, inet_pton

__all__ = ["ResolvConf", "HostsFile", "parse_nameservers", "DNS_PORT"]

DNS_PORT = 53
# the C library's limits: resolv.h's MAXNS, RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY
_MAX_NAMESERVERS = 3
_MAX_NDOTS = 15
_MAX_TIMEOUT = 30
_MAX_ATTEMPTS = 5


def parse_address(text):
    """``(family, packed, normal text)`` of an IP literal, or None.  Strict
    (``inet_pton``), as resolv.conf and hosts(5) are read by the C library."""
    for family in (AF_INET, AF_INET6):
        try:
            packed = inet_pton(family, text)
        except (OSError, ValueError):
            continue
        return family, packed, inet_ntop(family, packed)
    return None


def _nameserver(entry):
    # one entry of the nameservers argument -> (host, port)
    if isinstance(entry, tuple):
        host, port = entry
    elif entry.startswith("["):                       # '[v6]' or '[v6]:port'
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest or DNS_PORT
    elif entry.count(":") == 1:                       # 'v4:port'
        host, port = entry.split(":")
    else:                                             # 'v4' or a bare 'v6'
        host, port = entry, DNS_PORT
    port = int(port)
    if (not isinstance(host, str) or parse_address(host.partition("%")[0]) is None
            or not 0 < port < 65536):
        raise ValueError("not a nameserver address: %r" % (entry,))
    return host, port


def parse_nameservers(value):
    """The ``nameservers`` argument as a list of ``(ip, port)``: a list of ``(ip,
    port)`` tuples or strings ``'ip'``, ``'ip:port'``, ``'[ipv6]:port'`` (a bare
    IPv6 address means port 53), or one string of them separated by commas or
    spaces.  ValueError for anything that is not an IP address and port."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    servers = [_nameserver(entry) for entry in value]
    if not servers:
        raise ValueError("no nameservers given")
    return servers


class _WatchedFile:
    """A file parsed again whenever its modification time changes."""

    __slots__ = ("path", "_mtime")

    def __init__(self, path):
        self.path = path
        self._mtime = -1.0

    def refresh(self):
        """Parse the file if it changed since the last call (a missing file parses
        as empty once)."""
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        text = ""
        if mtime is not None:
            try:
                with open(self.path, "rb") as file:
                    text = file.read().decode("utf-8", "replace")
            except OSError:
                pass
        self.parse(text)

    def parse(self, text):
        raise NotImplementedError


def _search_domain(domain):
    # a search domain as bytes; None for one that cannot be a DNS name (the C
    # library skips what it cannot use rather than failing every lookup)
    try:
        return domain.strip(".").encode("idna")
    except UnicodeError:
        return None


class ResolvConf(_WatchedFile):
    """resolv.conf(5): ``nameservers`` (``(ip, port)``, at most 3; 127.0.0.1 when the
    file names none), ``search`` (domains as bytes: the last ``search`` or
    ``domain`` line, else the domain of this host's name), and the options
    ``ndots`` (1), ``timeout`` (5 s), ``attempts`` (2) and ``rotate`` -- the C
    library's defaults and limits.  ``path=None`` means no file: defaults only."""

    __slots__ = ("nameservers", "search", "ndots", "timeout", "attempts", "rotate")

    def __init__(self, path):
        _WatchedFile.__init__(self, path)
        if path is None:
            self.parse("")
        else:
            self.refresh()

    def refresh(self):
        if self.path is not None:
            _WatchedFile.refresh(self)

    def parse(self, text):
        nameservers, search = [], None
        self.ndots, self.timeout, self.attempts, self.rotate = 1, 5.0, 2, False
        for line in text.splitlines():
            words = line.split()
            if not words or words[0][0] in "#;":
                continue
            keyword, args = words[0], words[1:]
            if keyword == "nameserver" and args and len(nameservers) < _MAX_NAMESERVERS:
                if parse_address(args[0].partition("%")[0]) is not None:
                    nameservers.append((args[0], DNS_PORT))
            elif keyword == "domain" and args:
                search = args[:1]
            elif keyword == "search" and args:
                search = args
            elif keyword == "options":
                self._parse_options(args)
        # no nameserver line: the C library asks the local host
        self.nameservers = nameservers or [("127.0.0.1", DNS_PORT)]
        if search is None:
            search = [gethostname().partition(".")[2]]
        self.search = [encoded for encoded in map(_search_domain, search) if encoded]

    def _parse_options(self, options):
        for option in options:
            name, _, value = option.partition(":")
            if name == "rotate":
                self.rotate = True
            elif name in ("ndots", "timeout", "attempts") and value.isdigit():
                number = int(value)
                if name == "ndots":
                    self.ndots = min(number, _MAX_NDOTS)
                elif name == "timeout":
                    self.timeout = float(min(max(number, 1), _MAX_TIMEOUT))
                else:
                    self.attempts = min(max(number, 1), _MAX_ATTEMPTS)


class HostEntry:
    """What hosts(5) says about one name: the ``canonical`` name and ``aliases`` of
    its first line, and its IPv4 and IPv6 addresses from every line, in file order
    (the C library's ``multi on``)."""

    __slots__ = ("canonical", "aliases", "ipv4", "ipv6")

    def __init__(self, canonical, aliases):
        self.canonical = canonical
        self.aliases = aliases
        self.ipv4 = []
        self.ipv6 = []


class HostsFile(_WatchedFile):
    """hosts(5): ``entry(name)`` finds a name (bytes, any case; a trailing dot is
    part of the name, as in the C library), ``reverse(packed)`` an address's
    ``(canonical, aliases)`` from its first line."""

    __slots__ = ("_names", "_addresses")

    def __init__(self, path):
        _WatchedFile.__init__(self, path)
        self._names = {}
        self._addresses = {}

    def entry(self, name):
        """The ``HostEntry`` of ``name`` (lower-case bytes), or None."""
        self.refresh()
        return self._names.get(name)

    def reverse(self, packed):
        """``(canonical, aliases)`` of the first line with this address, or None."""
        self.refresh()
        return self._addresses.get(packed)

    def parse(self, text):
        names, addresses = {}, {}
        for line in text.splitlines():
            words = line.partition("#")[0].split()
            if len(words) < 2:
                continue
            address = parse_address(words[0])
            if address is None:
                continue
            family, packed, normal = address
            canonical, aliases = words[1], words[2:]
            addresses.setdefault(packed, (canonical, aliases))
            for name in words[1:]:
                key = name.lower().encode("utf-8", "replace")
                entry = names.get(key)
                if entry is None:
                    entry = names[key] = HostEntry(canonical, [word for word in words[1:]
                                                               if word != canonical])
                (entry.ipv4 if family == AF_INET else entry.ipv6).append(normal)
        self._names, self._addresses = names, addresses
