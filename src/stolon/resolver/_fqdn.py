"""stolon.resolver._fqdn: ``socket.getfqdn`` over any resolver's ``gethostbyaddr``."""
from _socket import gethostname

__all__ = ["getfqdn"]


def getfqdn(gethostbyaddr, name=""):
    """``socket.getfqdn``: the first dotted name among the host's name and aliases
    that ``gethostbyaddr`` reports, else its name; ``name`` itself if the lookup
    fails.  An empty name, ``'0.0.0.0'`` and ``'::'`` mean this host."""
    name = name.strip()
    if not name or name in ("0.0.0.0", "::"):
        name = gethostname()
    try:
        hostname, aliases, _ = gethostbyaddr(name)
    except OSError:
        return name
    for candidate in [hostname] + aliases:
        if "." in candidate:
            return candidate
    return hostname
