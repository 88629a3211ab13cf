"""Visitors without storage (the <noscript> pixel, server events without an id): a keyed hash of the
user agent, the truncated IP and the site that rotates daily, so nobody can be followed across days
and the raw IP is never stored."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import date

ANONYMOUS_PREFIX = "anon-"


def truncate_ip(ip: str | None) -> str:
    """The network part only: IPv4 /24, IPv6 /48; junk becomes ''."""
    if not ip:
        return ""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def anonymous_visitor(secret_key: str, site_id: int, day: date, user_agent: str, ip: str | None) -> str:
    """A visitor key that is stable for one UTC day for the same browser and network, then changes."""
    message = f"{day.isoformat()}|{site_id}|{truncate_ip(ip)}|{user_agent}".encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
    return ANONYMOUS_PREFIX + digest[:32]
