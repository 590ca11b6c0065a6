"""Host addresses: which binds are reachable only from this machine (stdlib only, so the
CLI can import it without loading a server)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``localhost`` or a
    loopback address); every other bind needs a key or token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
