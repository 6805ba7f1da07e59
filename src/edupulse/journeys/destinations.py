"""Where webhooks and robots may send. A destination whose address (after DNS resolution) is private,
loopback, link-local or otherwise not public is refused unless an admin allowed its host name or a range
that holds the address (the server-wide EDUPULSE_JOURNEYS__ALLOWED_HOSTS plus the project's own list)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DestinationRefused(ValueError):
    """The destination may not be reached; the reason says why and what an admin can allow."""


def parse_allowed(entries: Iterable[str]) -> tuple[frozenset[str], tuple[Network, ...]]:
    """Host names (lower case) and CIDR ranges of an allow list; ValueError names a bad entry."""
    names, networks = set(), []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            if not all(part and len(part) < 64 for part in entry.rstrip(".").split(".")) or " " in entry:
                raise ValueError(f"{entry!r} is neither a host name nor a CIDR range") from None
            names.add(entry.lower().rstrip("."))
    return frozenset(names), tuple(networks)


def _public(address: Address) -> bool:
    return address.is_global and not address.is_multicast


def check(url: str, allowed: Iterable[str], resolve: bool = True) -> None:
    """Raise DestinationRefused unless `url` may be reached."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"{url!r} is not an http(s) URL with a host")
    host = parts.hostname.lower().rstrip(".")
    names, networks = parse_allowed(allowed)
    if host in names:
        return
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    elif not resolve:
        return
    else:
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise DestinationRefused(f"host {host!r} cannot be resolved: {exc}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if _public(address) or any(address in n for n in networks if n.version == address.version):
            continue
        raise DestinationRefused(f"host {host!r} resolves to {address}, which is not a public address; an admin can "
                                 "allow it in the project's journey settings or EDUPULSE_JOURNEYS__ALLOWED_HOSTS")
