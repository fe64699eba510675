"""Which ``Host`` headers the page answers: a guard against DNS rebinding.

A page on another site can point its own name at this box's address (DNS
rebinding) and then read the page as if it were that site; the browser still sends
the attacker's name in ``Host``. The page therefore answers only:

- an address (``192.168.1.20``, ``[fe80::1]``): an address cannot be rebound;
- ``localhost`` and names under ``.localhost``;
- this box's host name, and ``NAME.local`` (mDNS);
- ``web.host`` when it is a name;
- the names listed in ``web.allowed_hosts``.

A request without ``Host`` (HTTP/1.0 tools) is answered: browsers always send one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable


def host_name(header: str) -> str:
    """The name or address of a ``Host`` header, without port, brackets or final dot."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else ""
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".")


def is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostRule:
    """The names this page may be reached by (see the module's docstring)."""

    def __init__(self, configured_host: str, extra_names: Iterable[str] = (),
                 box_name: str | None = None) -> None:
        box = (box_name if box_name is not None else socket.gethostname()).lower()
        names = {"localhost", configured_host.lower(), *(n.lower() for n in extra_names)}
        if box:
            short = box.split(".")[0]
            names |= {box, short, f"{short}.local"}
        self.names = frozenset(n for n in names if n)

    def allows(self, header: str | None) -> bool:
        if header is None:
            return True
        name = host_name(header)
        if not name:
            return False
        return name in self.names or name.endswith(".localhost") or is_address(name)
