"""Which IP addresses outbound requests that users steer may reach: the IANA special-purpose
ranges, for the address guard in ``socialflow.core.netguard``.

Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries, the IPv4 and IPv6
multicast registries, and the IPv6 address space registry (only ``2000::/3`` is allocated as
global unicast). Every special-purpose range is refused, including the few the registries mark
globally reachable (AS112, AMT, PCP and TURN anycast): no model server or object store lives
there, and refusing costs nothing. IPv6 forms that carry an IPv4 address the operating system
or the network translates (IPv4-mapped, IPv4-compatible, the NAT64 well-known prefix) are
judged by the IPv4 address they carry; tunnelling prefixes (6to4, Teredo) and local-use NAT64
are refused whole, since where they lead depends on relays outside our view.
"""

from __future__ import annotations

import ipaddress

__all__ = ["IPAddress", "embedded_ipv4", "forbidden_reason", "is_public_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _table(*rows: tuple[str, str]) -> tuple[tuple[_Net, str], ...]:
    return tuple((ipaddress.ip_network(net), what) for net, what in rows)


_IPV4 = _table(
    ("0.0.0.0/8", "'this network' (RFC 791)"),
    ("10.0.0.0/8", "private-use (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link-local, where cloud metadata services answer (RFC 3927)"),
    ("172.16.0.0/12", "private-use (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
    ("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
    ("192.52.193.0/24", "AMT (RFC 7450)"),
    ("192.88.99.0/24", "6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private-use (RFC 1918)"),
    ("192.175.48.0/24", "AS112 direct delegation (RFC 7534)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved, with limited broadcast 255.255.255.255 (RFC 1112, RFC 919)"),
)

# first match wins: more specific ranges come before the ranges holding them
_IPV6 = _table(
    ("::/128", "unspecified (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy prefix (RFC 9780)"),
    ("2001::/32", "Teredo tunnelling (RFC 4380)"),
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2002::/16", "6to4 tunnelling (RFC 3056)"),
    ("2620:4f:8000::/48", "AS112 direct delegation (RFC 7534)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "SRv6 SIDs (RFC 9602)"),
    ("fc00::/7", "unique-local, private-use (RFC 4193)"),
    ("fe80::/10", "link-local (RFC 4291)"),
    ("fec0::/10", "site-local, deprecated (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
)

# IPv6 forms whose last 32 bits are an IPv4 address the packet really goes to
_EMBEDDING = _table(
    ("::ffff:0:0/96", "IPv4-mapped (::ffff:0:0/96, RFC 4291)"),
    ("::/96", "IPv4-compatible (::/96, RFC 4291)"),
    ("64:ff9b::/96", "NAT64 well-known prefix (64:ff9b::/96, RFC 6052)"),
)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def embedded_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and the form it takes, if it is one.

    Args:
        ip: Any address.

    Returns:
        ``(IPv4 address, form)`` for IPv4-mapped, IPv4-compatible and NAT64 (64:ff9b::/96)
        addresses; None for any other address, and for ``::`` and ``::1``.
    """
    if isinstance(ip, ipaddress.IPv4Address) or int(ip) <= 1:
        return None
    for net, form in _EMBEDDING:
        if ip in net:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), form
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be reached, or None when it is a public unicast address.

    Args:
        ip: The address a host name resolved to, or a literal address.

    Returns:
        The range and what it is for (``loopback (127.0.0.0/8, RFC 1122)``), naming the IPv4
        address an IPv6 form carries; None for a public address.
    """
    embedded = embedded_ipv4(ip)
    if embedded is not None:
        inner, form = embedded
        reason = forbidden_reason(inner)
        return None if reason is None else f"the {form} form of {inner}, {reason}"
    table = _IPV4 if isinstance(ip, ipaddress.IPv4Address) else _IPV6
    for net, what in table:
        if ip in net:
            return f"{_what(what)} ({net}{_rfc(what)})"
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST:
        return "not global unicast (outside 2000::/3, RFC 4291)"
    return None


def _what(description: str) -> str:
    return description.rsplit(" (", 1)[0]


def _rfc(description: str) -> str:
    return ", " + description.rsplit(" (", 1)[1].rstrip(")")


def is_public_address(ip: IPAddress) -> bool:
    """Whether ``ip`` is a public unicast address, outside every special-purpose range."""
    return forbidden_reason(ip) is None
